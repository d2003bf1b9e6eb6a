package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.micronaut.context.ApplicationContext;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.Shapes;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * The model server loading a pair by hub repository id, from a local HTTP server in the Hugging
 * Face layout ({@code /{repo}/resolve/main/{path}}) that serves a generated model: the downloads
 * land in the cache once, and a missing repository or a cut-off download is refused clearly and
 * leaves nothing half-written behind.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class HubModelTest {

  private static final String MODEL_REPO = "acme/tiny-gpt2";
  private static final String SAES_REPO = "acme/tiny-saes";
  private static final String PROMPT = "When Mary and John went to the store, John gave a drink to";
  private static final long DEADLINE_SECONDS = 60;
  private static final Pattern TREE = Pattern.compile("/api/models/(.+)/tree/main");
  private static final ModelRef HUB_REF = ModelRef.newBuilder().setModel(MODEL_REPO).setSaes(SAES_REPO).build();

  @TempDir Path cache;

  private Path shape;
  /** URL path -> the local file it serves; anything else is a 404. */
  private final Map<String, Path> served = new LinkedHashMap<>();
  /** The path of every request, in order. */
  private final List<String> requests = new CopyOnWriteArrayList<>();
  /** While true, model.safetensors announces all its bytes and sends only a third of them. */
  private volatile boolean truncating;

  private HttpServer hub;
  private ExecutorService hubThreads;
  private String base;

  private ApplicationContext server;
  private ManagedChannel channel;

  @BeforeEach
  void startHub() throws IOException {
    shape = Shapes.dir(Shapes.THREE_HEADS);
    served.put(hubPath(MODEL_REPO, "config.json"), shape.resolve("model/config.json"));
    served.put(hubPath(MODEL_REPO, "model.safetensors"), shape.resolve("model/model.safetensors"));
    for (int l = 0; l < Shapes.THREE_HEADS.spec().n_layer(); l++) {
      String folder = "blocks." + l + ".hook_resid_pre/";
      served.put(hubPath(SAES_REPO, folder + "cfg.json"), shape.resolve("saes/" + folder + "cfg.json"));
      served.put(hubPath(SAES_REPO, folder + "sae_weights.safetensors"),
          shape.resolve("saes/" + folder + "sae_weights.safetensors"));
    }
    hub = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    hub.createContext("/", exchange -> {
      try (exchange) {
        answer(exchange);
      } catch (IOException e) {
        // the truncating answer drops the connection on purpose
      }
    });
    hubThreads = Executors.newCachedThreadPool();
    hub.setExecutor(hubThreads);
    hub.start();
    base = "http://127.0.0.1:" + hub.getAddress().getPort();
  }

  private void answer(HttpExchange exchange) throws IOException {
    String path = exchange.getRequestURI().getPath();
    requests.add(path);
    Matcher tree = TREE.matcher(path);
    if (tree.matches()) {
      listFiles(exchange, tree.group(1));
      return;
    }
    Path file = served.get(path);
    if (file == null) {
      exchange.sendResponseHeaders(404, -1);
      return;
    }
    long size = Files.size(file);
    exchange.sendResponseHeaders(200, size);
    OutputStream out = exchange.getResponseBody();
    try (InputStream in = Files.newInputStream(file)) {
      if (truncating && path.endsWith("/model.safetensors")) {
        out.write(in.readNBytes((int) (size / 3)));
        out.flush();
        exchange.close(); // fewer bytes than announced: the connection closes early
        return;
      }
      in.transferTo(out);
    }
    out.close();
  }

  /** The hub's tree API: every file the repository serves, as {"type": "file", "path": ...}; 404 for none. */
  private void listFiles(HttpExchange exchange, String repo) throws IOException {
    String prefix = "/" + repo + "/resolve/main/";
    List<String> entries = served.keySet().stream().filter(p -> p.startsWith(prefix))
        .map(p -> "{\"type\":\"file\",\"path\":\"" + p.substring(prefix.length()) + "\"}").toList();
    if (entries.isEmpty()) {
      exchange.sendResponseHeaders(404, -1);
      return;
    }
    byte[] body = ("[" + String.join(",", entries) + "]").getBytes(java.nio.charset.StandardCharsets.UTF_8);
    exchange.sendResponseHeaders(200, body.length);
    exchange.getResponseBody().write(body);
  }

  @AfterEach
  void stopAll() throws InterruptedException {
    stopServer();
    hub.stop(0);
    hubThreads.shutdownNow();
  }

  // ---- helpers ----------------------------------------------------------------------------

  private static String hubPath(String repo, String path) {
    return "/" + repo + "/resolve/main/" + path;
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** A model server on {@link #cache} that downloads from the local hub. */
  private void startServer() throws IOException {
    int port = freePort();
    Map<String, Object> props = new LinkedHashMap<>();
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", "127.0.0.1");
    // plaintext on loopback: what these tests check is the model, not the transport (PipelineTest and SecurityTest check that)
    props.put("resgraph.security.enabled", false);
    props.put("resgraph.cache-dir", cache.toString());
    props.put("resgraph.hub.url", base);
    server = ModelServer.start(props);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  private void stopServer() throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow();
      channel.awaitTermination(10, TimeUnit.SECONDS);
      channel = null;
    }
    if (server != null) {
      server.close();
      server = null;
    }
  }

  private ModelServiceGrpc.ModelServiceBlockingStub stub() {
    return ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  private DescribeResponse describe(ModelRef ref) {
    return stub().describe(DescribeRequest.newBuilder().setRef(ref).build());
  }

  private List<Integer> tokens(ModelRef ref) {
    return stub().tokenize(TokenizeRequest.newBuilder().setRef(ref).setText(PROMPT).build()).getTokensList();
  }

  private AblateResponse ablate(ModelRef ref, List<Integer> tokens) {
    return stub().ablate(AblateRequest.newBuilder().setRef(ref).addAllTokens(tokens).setLayer(0).build());
  }

  private TraceResponse trace(ModelRef ref, List<Integer> tokens) {
    return stub().trace(TraceRequest.newBuilder().setRef(ref).addAllTokens(tokens).build());
  }

  private ModelRef localRef() {
    return ModelRef.newBuilder().setModel(shape.resolve("model").toString()).setSaes(shape.resolve("saes").toString())
        .build();
  }

  /** The describe response without the names and paths, which differ between sources by design. */
  private static DescribeResponse shapeOf(DescribeResponse d) {
    return d.toBuilder().clearModel().clearModelPath().clearSaes().clearSaesPath().build();
  }

  private Path cached(String repo, String path) {
    return cache.resolve("hub").resolve(repo).resolve(path);
  }

  private List<Path> partFiles() throws IOException {
    try (Stream<Path> files = Files.walk(cache)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".part")).toList();
    }
  }

  private long requestsFor(String path) {
    return requests.stream().filter(path::equals).count();
  }

  private StatusRuntimeException refused(Status.Code code, Runnable call, String... named) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
    String description = e.getStatus().getDescription();
    assertEquals(code, e.getStatus().getCode(), "status of: " + description);
    assertTrue(description != null, "no description with " + code);
    for (String n : named) assertTrue(description.contains(n), "\"" + description + "\" should name " + n);
    return e;
  }

  // ---- tests --------------------------------------------------------------------------------

  @Test
  void hubPairAnswersAsTheSameFilesFromFoldersAndIsDownloadedOnce() throws Exception {
    startServer();
    DescribeResponse fromHub = describe(HUB_REF);
    assertEquals(MODEL_REPO, fromHub.getModel());
    assertEquals(SAES_REPO, fromHub.getSaes());
    assertEquals(cache.resolve("hub/acme/tiny-gpt2").toAbsolutePath().normalize().toString(), fromHub.getModelPath());
    assertEquals(cache.resolve("hub/acme/tiny-saes").toAbsolutePath().normalize().toString(), fromHub.getSaesPath());
    assertEquals(shapeOf(describe(localRef())), shapeOf(fromHub));

    // every file was fetched once, into cache/hub/{repo}/{path}, byte for byte
    for (Map.Entry<String, Path> e : served.entrySet()) {
      assertEquals(1, requestsFor(e.getKey()), e.getKey() + " requested " + requests);
      String[] parts = e.getKey().substring(1).split("/resolve/main/", 2);
      Path copy = cached(parts[0], parts[1]);
      assertTrue(Files.isRegularFile(copy), copy + " should be in the cache");
      assertEquals(-1, Files.mismatch(e.getValue(), copy), copy + " differs from what the hub served");
    }
    assertEquals(List.of(), partFiles());
    assertEquals(1, requestsFor("/api/models/" + SAES_REPO + "/tree/main"), "the SAE repository is listed once");
    assertEquals(served.size() + 1, requests.size(), "nothing but the list and the served files was asked for: " + requests);

    List<Integer> tokens = tokens(HUB_REF);
    assertEquals(tokens, tokens(localRef()));
    AblateResponse ablated = ablate(HUB_REF, tokens);
    assertTrue(ablated.getEffectsList().stream().anyMatch(e -> e.getDownstreamCount() > 0), "nothing moved");
    assertEquals(ablate(localRef(), tokens), ablated, "the hub copy and the folder answer alike");
    TraceResponse traced = trace(HUB_REF, tokens);
    assertEquals(trace(localRef(), tokens), traced);

    // a second server on the same cache finds everything there and asks the hub for nothing
    stopServer();
    requests.clear();
    startServer();
    assertEquals(fromHub, describe(HUB_REF));
    assertEquals(ablated, ablate(HUB_REF, tokens));
    assertEquals(List.of(), requests, "the second server must not ask the hub");
  }

  @Test
  void missingRepositoryIsNotFoundNamingTheUrl() throws Exception {
    startServer();
    ModelRef missingModel = ModelRef.newBuilder().setModel("acme/no-such-model").setSaes(SAES_REPO).build();
    refused(Status.Code.NOT_FOUND, () -> describe(missingModel),
        base + hubPath("acme/no-such-model", "config.json"), "404");

    ModelRef missingSaes = ModelRef.newBuilder().setModel(MODEL_REPO).setSaes("acme/no-such-saes").build();
    refused(Status.Code.NOT_FOUND, () -> describe(missingSaes), "acme/no-such-saes", "404");
    // the missing repository's file list was asked for once, and nothing else of it
    assertEquals(1, requestsFor("/api/models/acme/no-such-saes/tree/main"));
    assertEquals(1, requests.stream().filter(r -> r.contains("no-such-saes")).count());
    assertFalse(Files.exists(cache.resolve("hub/acme/no-such-model")), "nothing cached for a 404");

    // the server goes on serving the repositories that exist
    assertEquals(Shapes.THREE_HEADS.spec().n_layer(), describe(HUB_REF).getNLayer());
  }

  @Test
  void truncatedDownloadIsUnavailableLeavesNothingAndCanBeRetried() throws Exception {
    startServer();
    Path weights = shape.resolve("model/model.safetensors");
    long size = Files.size(weights);
    String url = base + hubPath(MODEL_REPO, "model.safetensors");
    truncating = true;

    StatusRuntimeException e = refused(Status.Code.UNAVAILABLE, () -> describe(HUB_REF), url, "of " + size + " bytes");
    Matcher m = Pattern.compile("stopped after (\\d+) of").matcher(e.getStatus().getDescription());
    assertTrue(m.find(), e.getStatus().getDescription());
    long received = Long.parseLong(m.group(1));
    assertTrue(received <= size / 3, "received " + received + " of the " + size / 3 + " bytes sent");
    assertFalse(Files.exists(cached(MODEL_REPO, "model.safetensors")), "a cut-off download must not be cached");
    assertEquals(List.of(), partFiles());

    truncating = false; // the hub recovers
    DescribeResponse d = describe(HUB_REF);
    assertEquals(Shapes.THREE_HEADS.spec().n_embd(), d.getDModel());
    assertEquals(-1, Files.mismatch(weights, cached(MODEL_REPO, "model.safetensors")));
    assertEquals(List.of(), partFiles());
    assertEquals(2, requestsFor(hubPath(MODEL_REPO, "model.safetensors")), "one cut off, one whole");
    assertEquals(1, requestsFor(hubPath(MODEL_REPO, "config.json")), "config.json was complete the first time");
  }
}
