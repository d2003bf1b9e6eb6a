package resgraph.graph;

import com.google.protobuf.ByteString;
import jakarta.inject.Singleton;
import java.util.function.Function;
import resgraph.v1.Circuit;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportResponse;
import resgraph.viewer.CircuitDot;
import resgraph.viewer.CircuitPage;

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

  private static byte[] utf8(String s) {
    return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  public ExportResponse export(String jobId, ExportFormat format) {
    Format f = switch (format) {
      case EXPORT_FORMAT_JSON -> new Format("graph.json", "application/json", GraphJsonExport::render);
      case EXPORT_FORMAT_DOT -> new Format("graph.dot", "text/vnd.graphviz", c -> utf8(CircuitDot.of(c, true)));
      case EXPORT_FORMAT_NEURONPEDIA -> new Format("neuronpedia.json", "application/json", NeuronpediaExport::render);
      case EXPORT_FORMAT_HTML -> new Format("graph.html", "text/html; charset=utf-8", c -> utf8(CircuitPage.html(c, null)));
      case EXPORT_FORMAT_UNSPECIFIED, UNRECOGNIZED -> throw GraphException.badRequest(
          "format must be EXPORT_FORMAT_JSON, EXPORT_FORMAT_DOT, EXPORT_FORMAT_NEURONPEDIA or EXPORT_FORMAT_HTML");
    };
    if (!jobs.find(jobId).finalized()) {
      throw new GraphException(GraphException.Kind.NOT_READY, "job " + jobId + " has no circuit yet: it is not finalized");
    }
    // graph.json carries every raw edge, which can be hundreds of thousands; graph.html those at the circuit
    Circuit circuit = circuits.read(jobId, format == ExportFormat.EXPORT_FORMAT_JSON || format == ExportFormat.EXPORT_FORMAT_HTML);
    return ExportResponse.newBuilder()
        .setContent(ByteString.copyFrom(f.render().apply(circuit)))
        .setContentType(f.contentType())
        .setFilename(f.filename())
        .build();
  }
}
