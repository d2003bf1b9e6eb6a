package resgraph.graph.http;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.ListValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micronaut.context.annotation.Context;
import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.graph.CypherQuery;
import resgraph.graph.Exports;
import resgraph.graph.GraphComparison;
import resgraph.graph.GraphConfig;
import resgraph.graph.JobNodes;
import resgraph.graph.Neo4jFactory;
import resgraph.graph.StoredCircuits;
import resgraph.graph.StoredJob;
import resgraph.platform.ResgraphException;
import resgraph.platform.grpc.SecurityConfig;
import resgraph.platform.http.HttpStatuses;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportResponse;
import resgraph.v1.Job;
import resgraph.v1.Phase;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;
import resgraph.viewer.CircuitPage;
import resgraph.viewer.SitePages;

/**
 * The circuit browser over HTTP, on {@code resgraph.http.port} ({@link GraphConfig}): {@code /jobs} lists the stored jobs, {@code /jobs/{id}} shows one in the viewer,
 * {@code /jobs/{id}/graph.json} (and the other exports) downloads it, {@code /compare?a=&b=}
 * compares two graphs of one prompt as the gRPC Compare does, {@code /cypher} is a box for
 * read-only Cypher, which {@code POST /api/cypher} runs exactly as the gRPC Query does. Every page
 * is behind the cluster's token ({@link BrowserLogin}).
 *
 * <p>It is the JDK's own HTTP server: a handful of pages need no second web stack next to gRPC's.
 */
@Context
public final class CircuitBrowser {

  private static final Logger LOG = LoggerFactory.getLogger(CircuitBrowser.class);

  private final JobNodes jobs;
  private final StoredCircuits circuits;
  private final Exports exports;
  private final CypherQuery query;
  private final GraphComparison comparison;
  private final GraphConfig config;
  private final BrowserLogin login;
  private final ExecutorService threads = Executors.newFixedThreadPool(4, r -> {
    Thread t = new Thread(r, "viewer-http");
    t.setDaemon(true);
    return t;
  });
  private HttpServer server;

  CircuitBrowser(JobNodes jobs, StoredCircuits circuits, Exports exports, CypherQuery query, GraphComparison comparison,
      GraphConfig config, SecurityConfig security) {
    this.jobs = jobs;
    this.circuits = circuits;
    this.exports = exports;
    this.query = query;
    this.comparison = comparison;
    this.config = config;
    this.login = new BrowserLogin(security);
  }

  @PostConstruct
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress(config.httpHost(), config.httpPort()), 0);
    server.createContext("/", this::handle);
    server.setExecutor(threads);
    server.start();
    LOG.info("circuit viewer at http://{}:{}/jobs", config.httpHost(), server.getAddress().getPort());
  }

  /** The port it listens on (the configured one, or the one picked for port 0). */
  public int port() {
    return server.getAddress().getPort();
  }

  @PreDestroy
  void stop() {
    server.stop(0);
    threads.shutdownNow();
  }

  private void handle(HttpExchange x) throws IOException {
    String path = x.getRequestURI().getPath();
    boolean api = path.startsWith("/api/");
    try {
      if (login.admit(x)) route(x, path);
    } catch (RuntimeException e) {
      ResgraphException known = e instanceof ResgraphException r ? r : Neo4jFactory.unreachable(e);
      if (known != null) {
        problem(x, api, HttpStatuses.code(known.kind()), known.getMessage());
      } else {
        LOG.error("{} {} failed", x.getRequestMethod(), path, e);
        problem(x, api, 500, "graph service error: " + e);
      }
    } finally {
      x.close();
    }
  }

  private void route(HttpExchange x, String path) throws IOException {
    String method = x.getRequestMethod();
    if (path.equals("/api/cypher")) {
      if (!method.equals("POST")) throw ResgraphException.badRequest("POST a JSON object {\"cypher\", \"parameters\", \"limit\"} here");
      send(x, 200, "application/json", cypher(new String(x.getRequestBody().readAllBytes(), StandardCharsets.UTF_8)));
      return;
    }
    if (!method.equals("GET") && !method.equals("HEAD")) throw ResgraphException.badRequest(method + " is not served here");
    List<String> parts = List.of(path.replaceAll("^/+|/+$", "").split("/+"));
    Optional<ExportFormat> download = parts.size() == 3 && parts.get(0).equals("jobs")
        ? Exports.byFilename(parts.get(2)) : Optional.empty();
    if (path.equals("/")) {
      x.getResponseHeaders().set("Location", "/jobs");
      x.sendResponseHeaders(302, -1);
    } else if (parts.equals(List.of("jobs"))) {
      html(x, SitePages.jobs(jobs.list().stream().map(this::row).toList(), Exports.filenames()));
    } else if (parts.equals(List.of("compare"))) {
      html(x, compare(parameters(x)));
    } else if (parts.equals(List.of("cypher"))) {
      html(x, SitePages.cypher(jobs.list().stream().filter(StoredJob::finalized).map(StoredJob::id).findFirst().orElse(null)));
    } else if (parts.size() == 2 && parts.get(0).equals("jobs")) {
      StoredJob job = jobs.stored(parts.get(1));
      if (job.finalized()) html(x, CircuitPage.html(circuits.readForPage(job.id()),
          new CircuitPage.Links("/jobs", "/cypher", "/compare?a=" + job.id())));
      else html(x, noCircuitYet(jobs.recorded(job.id())));
    } else if (download.isPresent()) {
      ExportResponse r = exports.export(parts.get(1), download.get());
      x.getResponseHeaders().set("Content-Disposition", "inline; filename=\"" + r.getFilename() + "\"");
      send(x, 200, r.getContentType(), r.getContent().toByteArray());
    } else {
      throw ResgraphException.notFound("nothing at " + path + ": see /jobs, /compare and /cypher");
    }
  }

  /** {@code /compare?a=JOB&b=JOB}: the form, and the two jobs' comparison once both are picked. */
  private String compare(Map<String, String> parameters) {
    List<StoredJob> finished = jobs.list().stream().filter(StoredJob::finalized).toList();
    StoredJob a = parameters.containsKey("a") ? jobs.stored(parameters.get("a")) : null;
    StoredJob b = parameters.containsKey("b") ? jobs.stored(parameters.get("b")) : null;
    Comparison c = a == null || b == null ? null
        : comparison.compare(CompareRequest.newBuilder().setJobA(a.id()).setJobB(b.id()).build());
    return ComparisonPage.html(finished, a, b, c);
  }

  /** The query string's parameters, decoded; a name given twice keeps its last value. */
  private static Map<String, String> parameters(HttpExchange x) {
    String query = x.getRequestURI().getRawQuery();
    Map<String, String> out = new HashMap<>();
    if (query == null) return out;
    for (String pair : query.split("&")) {
      int eq = pair.indexOf('=');
      if (eq > 0) out.put(decode(pair.substring(0, eq)), decode(pair.substring(eq + 1)));
    }
    return out;
  }

  private static String decode(String s) {
    return URLDecoder.decode(s, StandardCharsets.UTF_8);
  }

  private SitePages.JobRow row(StoredJob j) {
    return new SitePages.JobRow(j.id(), j.prompt(), j.model(), j.saes(), j.method(), j.created() == null ? "" : j.created().truncatedTo(ChronoUnit.SECONDS).toString(),
        j.finalized(), phaseName(jobs.phase(j.id())), j.circuitNodes(), j.circuitEdges(), j.rawEdges());
  }

  /** The page of a job that has no circuit: why, from the phase the orchestrator records. */
  private static String noCircuitYet(Job job) {
    String id = job.getId();
    return switch (job.getPhase()) {
      case PHASE_FAILED -> SitePages.notice("job " + id + " failed", "It has no circuit: " + job.getError());
      case PHASE_CANCELLED -> SitePages.notice("job " + id + " was cancelled", "It was cancelled before its circuit was made.");
      case PHASE_FINALIZING, PHASE_DONE -> SitePages.notice("job " + id + " is not finalized yet",
          "Every task's effects are stored; its circuit is being pruned and annotated, and appears here in a moment.");
      default -> SitePages.notice("job " + id + " is not finalized yet",
          "Its ablations are still running; its circuit appears here once every task's effects are stored.");
    };
  }

  /** "running", "failed", ...; "not recorded" for a job the orchestrator has no record of. */
  private static String phaseName(Phase phase) {
    return phase == Phase.PHASE_UNSPECIFIED ? "not recorded" : phase.name().substring("PHASE_".length()).toLowerCase(Locale.ROOT);
  }

  /**
   * Runs {"cypher", "parameters", "limit", "timeout_ms"} through {@link CypherQuery} and answers
   * {"columns", "rows", "limit"}, values in the JSON shapes of {@code CypherValues.toProto}.
   */
  private byte[] cypher(String body) {
    Struct.Builder request = Struct.newBuilder();
    try {
      JsonFormat.parser().merge(body, request);
    } catch (InvalidProtocolBufferException e) {
      throw ResgraphException.badRequest("the request is not a JSON object: " + e.getMessage());
    }
    Struct r = request.build();
    Value params = r.getFieldsOrDefault("parameters", Value.newBuilder().setStructValue(Struct.getDefaultInstance()).build());
    if (!params.hasStructValue()) throw ResgraphException.badRequest("parameters must be a JSON object");
    QueryRequest q = QueryRequest.newBuilder()
        .setCypher(r.getFieldsOrDefault("cypher", Value.getDefaultInstance()).getStringValue())
        .setParameters(params.getStructValue())
        .setLimit(whole(r, "limit"))
        .setTimeoutMs(whole(r, "timeout_ms"))
        .build();
    List<QueryRow> rows = new ArrayList<>();
    query.run(q, (row, deadline) -> rows.add(row));
    ListValue.Builder values = ListValue.newBuilder();
    rows.stream().skip(1).forEach(row -> values.addValues(Value.newBuilder().setListValue(
        ListValue.newBuilder().addAllValues(row.getValuesList()))));
    ListValue.Builder columns = ListValue.newBuilder();
    rows.get(0).getColumnsList().forEach(c -> columns.addValues(Value.newBuilder().setStringValue(c)));
    Struct answer = Struct.newBuilder()
        .putFields("columns", Value.newBuilder().setListValue(columns).build())
        .putFields("rows", Value.newBuilder().setListValue(values).build())
        .putFields("limit", Value.newBuilder().setNumberValue(q.getLimit() == 0 ? CypherQuery.DEFAULT_LIMIT : q.getLimit()).build())
        .build();
    return json(answer);
  }

  private static int whole(Struct s, String field) {
    double v = s.getFieldsOrDefault(field, Value.newBuilder().setNumberValue(0).build()).getNumberValue();
    if (v != Math.rint(v) || Math.abs(v) > Integer.MAX_VALUE) throw ResgraphException.badRequest(field + " must be a whole number, not " + v);
    return (int) v;
  }

  private static byte[] json(Struct s) {
    try {
      return JsonFormat.printer().omittingInsignificantWhitespace().print(s).getBytes(StandardCharsets.UTF_8);
    } catch (InvalidProtocolBufferException e) {
      throw new UncheckedIOException(new IOException(e));
    }
  }

  private static void problem(HttpExchange x, boolean api, int code, String message) throws IOException {
    if (api) {
      send(x, code, "application/json", json(Struct.newBuilder()
          .putFields("error", Value.newBuilder().setStringValue(message).build()).build()));
    } else {
      send(x, code, "text/html; charset=utf-8", SitePages.notice(code == 404 ? "not found" : "error " + code, message)
          .getBytes(StandardCharsets.UTF_8));
    }
  }

  private static void html(HttpExchange x, String page) throws IOException {
    send(x, 200, "text/html; charset=utf-8", page.getBytes(StandardCharsets.UTF_8));
  }

  private static void send(HttpExchange x, int code, String contentType, byte[] body) throws IOException {
    x.getResponseHeaders().set("Content-Type", contentType);
    boolean head = x.getRequestMethod().equals("HEAD");
    x.sendResponseHeaders(code, head ? -1 : body.length);
    if (!head) x.getResponseBody().write(body);
  }
}
