package resgraph.graph;

import com.google.protobuf.ByteString;
import jakarta.inject.Singleton;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import resgraph.platform.ResgraphException;
import resgraph.v1.Circuit;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportResponse;
import resgraph.viewer.CircuitDot;
import resgraph.viewer.CircuitPage;

/** Export: a finalized job's circuit as a file, in one of the formats of {@link ExportFormat}. */
@Singleton
public final class Exports {

  /**
   * A format's file; {@code incidentEdges}: whether it lists the raw edges into and out of the
   * circuit's nodes (of a job's raw edges, which can be millions).
   */
  private record Format(String filename, String contentType, boolean incidentEdges, Function<Circuit, byte[]> render) {}

  /** Every format, in the order a list of downloads shows them. */
  private static final Map<ExportFormat, Format> FORMATS = new LinkedHashMap<>();

  static {
    // every raw edge, streamed from the edge files: see export
    FORMATS.put(ExportFormat.EXPORT_FORMAT_JSON, new Format("graph.json", "application/json", false, null));
    FORMATS.put(ExportFormat.EXPORT_FORMAT_DOT, new Format("graph.dot", "text/vnd.graphviz", false,
        c -> utf8(CircuitDot.of(c, true))));
    FORMATS.put(ExportFormat.EXPORT_FORMAT_NEURONPEDIA, new Format("neuronpedia.json", "application/json", false,
        NeuronpediaExport::render));
    // the viewer lists each node's raw edges in and out
    FORMATS.put(ExportFormat.EXPORT_FORMAT_HTML, new Format("graph.html", "text/html; charset=utf-8", true,
        c -> utf8(CircuitPage.html(c, null))));
    // read from the edge files by the instance: see export
    FORMATS.put(ExportFormat.EXPORT_FORMAT_PARQUET, new Format("raw_edges.parquet", "application/vnd.apache.parquet", false, null));
  }

  private final StoredCircuits circuits;
  private final JobNodes jobs;
  private final EdgeFiles files;

  Exports(StoredCircuits circuits, JobNodes jobs, EdgeFiles files) {
    this.circuits = circuits;
    this.jobs = jobs;
    this.files = files;
  }

  /** The files a job can be exported as, e.g. "graph.json". */
  public static List<String> filenames() {
    return FORMATS.values().stream().map(Format::filename).toList();
  }

  /** The format whose file is {@code filename}, if any. */
  public static Optional<ExportFormat> byFilename(String filename) {
    return FORMATS.entrySet().stream().filter(e -> e.getValue().filename().equals(filename)).map(Map.Entry::getKey).findFirst();
  }

  public ExportResponse export(String jobId, ExportFormat format) {
    Format f = FORMATS.get(format);
    if (f == null) {
      throw ResgraphException.badRequest(
          "format must be EXPORT_FORMAT_JSON, EXPORT_FORMAT_DOT, EXPORT_FORMAT_NEURONPEDIA, EXPORT_FORMAT_HTML or EXPORT_FORMAT_PARQUET");
    }
    if (!jobs.stored(jobId).finalized()) {
      throw new ResgraphException(ResgraphException.Kind.NOT_READY, "job " + jobId + " has no circuit yet: it is not finalized");
    }
    ByteString content = switch (format) {
      case EXPORT_FORMAT_PARQUET -> ByteString.copyFrom(files.parquet(jobId, SiteChain.of(jobs.recorded(jobId))));
      case EXPORT_FORMAT_JSON -> graphJson(jobId);
      default -> ByteString.copyFrom(f.render().apply(f.incidentEdges() ? circuits.readForPage(jobId) : circuits.read(jobId, false)));
    };
    return ExportResponse.newBuilder()
        .setContent(content)
        .setContentType(f.contentType())
        .setFilename(f.filename())
        .build();
  }

  private ByteString graphJson(String jobId) {
    Circuit circuit = circuits.read(jobId, false);
    SiteChain chain = SiteChain.of(circuit.getJob());
    List<RawEdge> raw = new ArrayList<>(circuits.rawEdges(jobId, chain));
    raw.sort(CircuitPruner.ORDER);
    return GraphJsonExport.render(circuit, raw, chain);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
