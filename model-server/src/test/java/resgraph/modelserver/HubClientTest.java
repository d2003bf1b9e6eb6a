package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import resgraph.platform.ResgraphException;
import resgraph.platform.ResgraphException.Kind;

/** HubClient against an in-process HTTP server laid out like the hub. */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class HubClientTest {

  private static final String REPO = "org/model";

  /** One recorded request: its path and Authorization header (null if absent). */
  record Seen(String path, String authorization) {}

  interface Route {
    void answer(HttpExchange exchange) throws IOException;
  }

  @TempDir Path cache;

  private HttpServer server;
  private ExecutorService serverThreads;
  private URI base;
  private final Map<String, Route> routes = new ConcurrentHashMap<>();
  private final List<Seen> seen = new CopyOnWriteArrayList<>();
  private final List<long[]> updates = new CopyOnWriteArrayList<>();

  @BeforeEach
  void startServer() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext(
        "/",
        exchange -> {
          try (exchange) {
            String path = exchange.getRequestURI().getPath();
            seen.add(new Seen(path, exchange.getRequestHeaders().getFirst("Authorization")));
            routes.getOrDefault(path, HubClientTest::notFound).answer(exchange);
          } catch (IOException e) {
            // The truncating route closes the connection on purpose.
          }
        });
    serverThreads = Executors.newCachedThreadPool();
    server.setExecutor(serverThreads);
    server.start();
    base = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
  }

  @AfterEach
  void stopServer() {
    server.stop(0);
    serverThreads.shutdownNow();
  }

  // --- routes -------------------------------------------------------------------------------

  private static String hubPath(String repo, String path) {
    return "/" + repo + "/resolve/main/" + path;
  }

  private static Route file(byte[] bytes) {
    return exchange -> {
      exchange.sendResponseHeaders(200, bytes.length == 0 ? -1 : bytes.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    };
  }

  private static void notFound(HttpExchange exchange) throws IOException {
    exchange.sendResponseHeaders(404, -1);
  }

  private static Route status(int code) {
    return exchange -> exchange.sendResponseHeaders(code, -1);
  }

  /** Announces {@code declared} bytes, writes only {@code bytes}, then drops the connection. */
  private static Route truncated(byte[] bytes, long declared) {
    return exchange -> {
      exchange.sendResponseHeaders(200, declared);
      OutputStream out = exchange.getResponseBody();
      out.write(bytes);
      out.flush();
      exchange.close(); // fewer bytes than announced: the server closes the connection
    };
  }

  private static Route redirect(String location) {
    return exchange -> {
      exchange.getResponseHeaders().set("Location", location);
      exchange.sendResponseHeaders(302, -1);
    };
  }

  // --- helpers ------------------------------------------------------------------------------

  private HubClient client(String token) {
    HubClient.Progress recorder = (url, done, total) -> updates.add(new long[] {done, total});
    return new HubClient(base, cache, token, recorder);
  }

  private static byte[] randomBytes(int n, long seed) {
    byte[] bytes = new byte[n];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  private long requestsFor(String path) {
    return seen.stream().filter(s -> s.path().equals(path)).count();
  }

  private List<Path> partFiles() throws IOException {
    try (Stream<Path> files = Files.walk(cache)) {
      return files.filter(p -> p.getFileName().toString().endsWith(".part")).toList();
    }
  }

  // --- tests --------------------------------------------------------------------------------

  @Test
  void downloadsOnceThenServesFromCache() throws IOException {
    byte[] bytes = randomBytes(300_000, 1);
    routes.put(hubPath(REPO, "model.safetensors"), file(bytes));
    HubClient hub = client(null);

    Path first = hub.fetch(REPO, "model.safetensors");
    assertEquals(cache.resolve("hub/org/model/model.safetensors").toAbsolutePath(), first);
    assertArrayEquals(bytes, Files.readAllBytes(first));
    assertEquals(1, requestsFor(hubPath(REPO, "model.safetensors")));

    Path second = hub.fetch(REPO, "model.safetensors");
    assertEquals(first, second);
    assertEquals(1, seen.size(), "the second fetch must not ask the hub");
    // A new client on the same cache finds it too.
    assertEquals(first, client(null).fetch(REPO, "model.safetensors"));
    assertEquals(1, seen.size());
  }

  @Test
  void nestedPath() throws IOException {
    String path = "blocks.0.hook_resid_pre/cfg.json";
    byte[] bytes = "{\"d_in\": 768}".getBytes(StandardCharsets.UTF_8);
    routes.put(hubPath("jbloom/GPT2-Small-SAEs-Reformatted", path), file(bytes));

    Path got = client(null).fetch("jbloom/GPT2-Small-SAEs-Reformatted", path);

    assertEquals(
        cache.resolve("hub/jbloom/GPT2-Small-SAEs-Reformatted/" + path).toAbsolutePath(), got);
    assertArrayEquals(bytes, Files.readAllBytes(got));
  }

  @Test
  void followsRedirects() throws IOException {
    byte[] bytes = randomBytes(10_000, 2);
    routes.put(hubPath(REPO, "config.json"), redirect("/cdn/abc123"));
    routes.put("/cdn/abc123", file(bytes));

    Path got = client(null).fetch(REPO, "config.json");

    assertArrayEquals(bytes, Files.readAllBytes(got));
    assertEquals(1, requestsFor("/cdn/abc123"));
  }

  @Test
  void missingFile() {
    HubClient hub = client(null);

    ResgraphException e = assertThrows(ResgraphException.class, () -> hub.fetch(REPO, "nope.json"));
    assertEquals(Kind.NOT_FOUND, e.kind());
    assertTrue(e.getMessage().contains(base + hubPath(REPO, "nope.json")), e.getMessage());
    assertTrue(e.getMessage().contains("404"), e.getMessage());

    assertEquals(
        Optional.empty(), hub.fetchIfExists(REPO, "blocks.12.hook_resid_pre/cfg.json"));
    assertFalse(Files.exists(cache.resolve("hub/org/model/nope.json")));
  }

  @Test
  void truncatedDownloadLeavesNothingAndCanBeRetried() throws IOException {
    String path = "model.safetensors";
    byte[] bytes = randomBytes(200_000, 3);
    routes.put(hubPath(REPO, path), truncated(Arrays.copyOf(bytes, 70_000), 200_000));
    HubClient hub = client(null);

    ResgraphException e = assertThrows(ResgraphException.class, () -> hub.fetch(REPO, path));
    assertEquals(Kind.UNAVAILABLE, e.kind());
    assertTrue(e.getMessage().contains(base + hubPath(REPO, path)), e.getMessage());
    assertTrue(e.getMessage().contains("200000"), e.getMessage());
    // The client may see fewer bytes than the server wrote, never more.
    long received = updates.get(updates.size() - 1)[0];
    assertTrue(received <= 70_000, "received " + received);
    assertTrue(e.getMessage().contains("after " + received + " of"), e.getMessage());
    Path target = cache.resolve("hub/org/model/" + path);
    assertFalse(Files.exists(target));
    assertEquals(List.of(), partFiles());

    routes.put(hubPath(REPO, path), file(bytes)); // the hub recovers
    Path got = hub.fetch(REPO, path);
    assertArrayEquals(bytes, Files.readAllBytes(got));
    assertEquals(List.of(), partFiles());
  }

  @Test
  void unreachableHub() throws IOException {
    int closedPort;
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      closedPort = socket.getLocalPort();
    }
    URI nowhere = URI.create("http://127.0.0.1:" + closedPort);
    HubClient hub = new HubClient(nowhere, cache, null, (url, done, total) -> {});

    ResgraphException e = assertThrows(ResgraphException.class, () -> hub.fetch(REPO, "config.json"));
    assertEquals(Kind.UNAVAILABLE, e.kind());
    assertTrue(e.getMessage().contains("cannot reach " + nowhere), e.getMessage());
  }

  @Test
  void refusedAndFailingAnswers() {
    routes.put(hubPath(REPO, "gated.json"), status(401));
    routes.put(hubPath(REPO, "broken.json"), status(500));
    HubClient hub = client(null);

    ResgraphException gated =
        assertThrows(ResgraphException.class, () -> hub.fetchIfExists(REPO, "gated.json"));
    assertEquals(Kind.UNAVAILABLE, gated.kind());
    assertTrue(gated.getMessage().contains("HF_TOKEN"), gated.getMessage());

    ResgraphException broken =
        assertThrows(ResgraphException.class, () -> hub.fetch(REPO, "broken.json"));
    assertEquals(Kind.UNAVAILABLE, broken.kind());
    assertTrue(broken.getMessage().contains("500"), broken.getMessage());
    assertTrue(broken.getMessage().contains(base + hubPath(REPO, "broken.json")));
  }

  @Test
  void rejectsNamesThatLeaveTheCache() {
    HubClient hub = client(null);
    List<String[]> bad =
        List.of(
            new String[] {"../etc", "passwd"},
            new String[] {"/etc", "passwd"},
            new String[] {"org\\model", "config.json"},
            new String[] {"org//model", "config.json"},
            new String[] {"org/model", "a/../../../x"},
            new String[] {"org/model", "/etc/passwd"},
            new String[] {"org/model", "dir/"},
            new String[] {"org/model", ""});
    for (String[] b : bad) {
      ResgraphException e = assertThrows(ResgraphException.class, () -> hub.fetch(b[0], b[1]));
      assertEquals(Kind.BAD_REQUEST, e.kind(), e.getMessage());
      String named = b[0].equals("org/model") ? b[1] : b[0];
      if (!named.isEmpty()) assertTrue(e.getMessage().contains(named), e.getMessage());
    }
    assertEquals(List.of(), seen, "nothing bad may reach the hub");
  }

  @Test
  void reportsProgressToTheLastByte() {
    byte[] bytes = randomBytes(1_000_000, 4);
    routes.put(hubPath(REPO, "model.safetensors"), file(bytes));

    client(null).fetch(REPO, "model.safetensors");

    assertFalse(updates.isEmpty());
    long[] last = updates.get(updates.size() - 1);
    assertArrayEquals(new long[] {1_000_000, 1_000_000}, last);
    for (int i = 1; i < updates.size(); i++) {
      assertTrue(updates.get(i)[0] >= updates.get(i - 1)[0], "progress never goes back");
    }
  }

  @Test
  void loggingProgressAcceptsAWholeDownload() {
    HubClient.Progress log = HubClient.logging();
    log.update("http://hub/x", 0, 290_000_000);
    log.update("http://hub/x", 120_300_000, 290_000_000);
    log.update("http://hub/x", 290_000_000, 290_000_000);
    log.update("http://hub/y", 5, -1);
  }

  @Test
  void sendsTheTokenOnlyWhenGiven() {
    routes.put(hubPath(REPO, "a.json"), file(new byte[] {1}));
    routes.put(hubPath(REPO, "b.json"), file(new byte[] {2}));

    client("hf_secret").fetch(REPO, "a.json");
    client(null).fetch(REPO, "b.json");

    assertEquals(new Seen(hubPath(REPO, "a.json"), "Bearer hf_secret"), seen.get(0));
    assertNull(seen.get(1).authorization());
  }

  @Test
  void keepsTheTokenOnTheHubsOwnHost() {
    // "localhost" is the same server under another host name, standing in for the hub's CDN
    String cdn = "http://localhost:" + base.getPort() + "/cdn/signed";
    routes.put(hubPath(REPO, "model.safetensors"), redirect(cdn));
    routes.put("/cdn/signed", file(new byte[] {7}));
    routes.put(hubPath(REPO, "moved.json"), redirect("/cdn/same-host"));
    routes.put("/cdn/same-host", file(new byte[] {8}));

    client("hf_secret").fetch(REPO, "model.safetensors");
    client("hf_secret").fetch(REPO, "moved.json");

    assertEquals(new Seen(hubPath(REPO, "model.safetensors"), "Bearer hf_secret"), seen.get(0));
    assertEquals(new Seen("/cdn/signed", null), seen.get(1));
    assertEquals(new Seen("/cdn/same-host", "Bearer hf_secret"), seen.get(3));
  }

  @Test
  void concurrentFetchesShareOneDownload() throws Exception {
    byte[] bytes = randomBytes(2_000_000, 5);
    routes.put(hubPath(REPO, "model.safetensors"), file(bytes));
    HubClient hub = client(null);
    int threads = 4;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Path>> results = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        results.add(
            pool.submit(
                () -> {
                  start.await(10, TimeUnit.SECONDS);
                  return hub.fetch(REPO, "model.safetensors");
                }));
      }
      for (Future<Path> result : results) {
        assertArrayEquals(bytes, Files.readAllBytes(result.get(20, TimeUnit.SECONDS)));
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(1, requestsFor(hubPath(REPO, "model.safetensors")));
  }
}
