package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.micronaut.context.ApplicationContext;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.Shapes;
import resgraph.v1.DescribeRequest;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;

/**
 * The pair a model server loads at start: until it is resident the health service says
 * NOT_SERVING, for the server and for ModelService by name, while every other request is answered;
 * a pair that cannot be loaded leaves the server answering, with the reason in each reply.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class PreloadTest {

  @TempDir Path cache;
  private ApplicationContext server;
  private ManagedChannel channel;
  private HttpServer hub;

  @AfterEach
  void stop() throws InterruptedException {
    if (channel != null) channel.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    if (server != null) server.close();
    if (hub != null) hub.stop(0);
  }

  private void start(String model, String saes, String hubUrl) throws IOException {
    int port = ModelServerTest.freePort();
    Map<String, Object> props = new LinkedHashMap<>();
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", "127.0.0.1");
    // plaintext on loopback: what these tests check is the model, not the transport (PipelineTest and SecurityTest check that)
    props.put("resgraph.security.enabled", false);
    props.put("resgraph.cache-dir", cache.toString());
    props.put("resgraph.hub.url", hubUrl);
    props.put("resgraph.model-server.preload-model", model);
    props.put("resgraph.model-server.preload-saes", saes);
    server = ModelServer.start(props);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  private ServingStatus health(String service) {
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
        .check(HealthCheckRequest.newBuilder().setService(service).build()).getStatus();
  }

  /** Polls until the health service says {@code status} for both names, or fails at the deadline. */
  private void awaitHealth(ServingStatus status) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (health("") != status || health(ModelServiceGrpc.SERVICE_NAME) != status) {
      assertTrue(System.nanoTime() < deadline, "health never became " + status);
      TimeUnit.MILLISECONDS.sleep(50);
    }
  }

  @Test
  void notServingUntilThePreloadedPairIsResident() throws Exception {
    Path shape = Shapes.dir(Shapes.THREE_HEADS);
    CountDownLatch release = new CountDownLatch(1);
    hub = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    hub.createContext("/", exchange -> {
      try (exchange) {
        String file = exchange.getRequestURI().getPath().replaceFirst(".*/resolve/main/", "");
        if (!file.equals("config.json") && !file.equals("model.safetensors")) {
          exchange.sendResponseHeaders(404, -1);
          return;
        }
        release.await(); // the download hangs until the test has looked at the health service
        byte[] body = Files.readAllBytes(shape.resolve("model").resolve(file));
        exchange.sendResponseHeaders(200, body.length);
        exchange.getResponseBody().write(body);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    hub.setExecutor(java.util.concurrent.Executors.newCachedThreadPool());
    hub.start();
    start("acme/slow-gpt2", shape.resolve("saes").toString(), "http://127.0.0.1:" + hub.getAddress().getPort());

    assertEquals(ServingStatus.NOT_SERVING, health(""));
    assertEquals(ServingStatus.NOT_SERVING, health(ModelServiceGrpc.SERVICE_NAME));
    // another pair is served meanwhile
    ModelRef local = ModelServerTest.ref(shape.resolve("model"), shape.resolve("saes"));
    assertEquals(2, ModelServiceGrpc.newBlockingStub(channel).describe(DescribeRequest.newBuilder().setRef(local).build()).getNLayer());
    release.countDown();
    awaitHealth(ServingStatus.SERVING);
  }

  @Test
  void aPairThatCannotLoadLeavesTheServerAnsweringWithTheReason() throws Exception {
    Path shape = Shapes.dir(Shapes.THREE_HEADS);
    Path missing = cache.resolve("no-such-model");
    start(missing.toString(), shape.resolve("saes").toString(), "http://127.0.0.1:" + ModelServerTest.freePort());
    ModelRef broken = ModelServerTest.ref(missing, shape.resolve("saes"));
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
        () -> ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
            .describe(DescribeRequest.newBuilder().setRef(broken).build()));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(missing.toString()), e.getStatus().getDescription());
    assertEquals(ServingStatus.NOT_SERVING, health(ModelServiceGrpc.SERVICE_NAME));
  }
}
