package resgraph.graph;

import com.google.protobuf.ByteString;
import jakarta.inject.Singleton;
import java.util.function.Function;
import resgraph.v1.Circuit;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportResponse;

/** Export: a finalized job's circuit as a file, in one of the formats of {@link ExportFormat}. */
@Singleton
public final class Exports {

  private record Format(String filename, String contentType, Function<Circuit, byte[]> render) {}

  private final Circuits circuits;
  private final Jobs jobs;

  public Exports(Circuits circuits, Jobs jobs) {
    this.circuits = circuits;
    this.jobs = jobs;
  }

  public ExportResponse export(String jobId, ExportFormat format) {
    Format f = switch (format) {
      case EXPORT_FORMAT_JSON -> new Format("graph.json", "application/json", GraphJsonExport::render);
      case EXPORT_FORMAT_DOT -> new Format("graph.dot", "text/vnd.graphviz", DotExport::render);
      case EXPORT_FORMAT_NEURONPEDIA -> new Format("neuronpedia.json", "application/json", NeuronpediaExport::render);
      case EXPORT_FORMAT_UNSPECIFIED, UNRECOGNIZED ->
          throw GraphException.badRequest("format must be EXPORT_FORMAT_JSON, EXPORT_FORMAT_DOT or EXPORT_FORMAT_NEURONPEDIA");
    };
    if (!jobs.find(jobId).finalized()) {
      throw new GraphException(GraphException.Kind.NOT_READY, "job " + jobId + " has no circuit yet: it is not finalized");
    }
    // only graph.json carries the raw edges, which can be hundreds of thousands
    Circuit circuit = circuits.read(jobId, format == ExportFormat.EXPORT_FORMAT_JSON);
    return ExportResponse.newBuilder()
        .setContent(ByteString.copyFrom(f.render().apply(circuit)))
        .setContentType(f.contentType())
        .setFilename(f.filename())
        .build();
  }
}
