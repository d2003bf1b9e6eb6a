package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.testkit.Await;

/**
 * A cluster {@code ./resgraph up} started keeps itself up: its supervisor starts a component
 * killed from outside again on the same port, {@code status} says which and when, a component that
 * cannot start is tried again after growing pauses (and the cluster is not counted as running
 * meanwhile), and {@code down} stops the supervisor and everything it started.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SupervisedClusterTest {

  @TempDir static Path dir;
  private static Path state;

  @BeforeAll
  static void up() throws IOException {
    PipelineCluster.writeModel(dir.resolve("m"));
    state = dir.resolve("cluster");
    Cli.Run r = Cli.resgraph("up", "--dir", state.toString(), "--model", dir.resolve("m/model").toString(),
        "--saes", dir.resolve("m/saes").toString(), "--workers", "1");
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("supervisor: pid "), r.out());
  }

  @AfterAll
  static void down() {
    // after a failure midway: leave nothing running
    LocalCluster.find(state).ifPresent(LocalCluster::stop);
  }

  @Test
  @Order(1)
  void aComponentKilledFromOutsideComesBackOnItsPortAndStatusSaysSo() throws Exception {
    JsonNode graph = component(status(), "graph-service");
    assertEquals(0, graph.get("restarts").asInt());
    Instant killed = Instant.now();
    ProcessHandle.of(graph.get("pid").asLong()).orElseThrow().destroyForcibly();

    JsonNode back = Await.until("the graph service started again", Duration.ofMinutes(2), SupervisedClusterTest::status, s -> {
      assertTrue(s.get("running").asBoolean(), "the cluster is running while the supervisor brings a component back: " + s);
      JsonNode g = component(s, "graph-service");
      return g.get("restarts").asInt() == 1 && g.get("state").asText().equals("running");
    });
    JsonNode again = component(back, "graph-service");
    assertNotEquals(graph.get("pid").asLong(), again.get("pid").asLong());
    assertEquals(graph.get("port").asInt(), again.get("port").asInt(), "the same port");
    assertFalse(Instant.parse(again.get("restarted_at").asText()).isBefore(killed), again.toString());
    LocalCluster cluster = LocalCluster.find(state).orElseThrow();
    ManagedChannel channel = GrpcChannels.open(cluster.endpoints().graphService(), ClusterDir.credentials(cluster));
    try {
      assertEquals(ServingStatus.SERVING, HealthGrpc.newBlockingStub(channel).withDeadlineAfter(1, TimeUnit.MINUTES)
          .check(HealthCheckRequest.getDefaultInstance()).getStatus());
    } finally {
      GrpcChannels.close(channel);
    }
    Cli.Run text = Cli.resgraph("status", "--dir", state.toString());
    assertEquals(0, text.code(), text.err());
    assertTrue(text.out().lines().anyMatch(l -> l.contains("graph-service") && l.contains("running; restarted 1 time, last at ")), text.out());
    assertTrue(Files.readString(state.resolve("logs/supervisor.log")).contains("graph-service is back"), "the supervisor logs it");
  }

  @Test
  @Order(2)
  void aComponentThatCannotStartIsTriedAgainAfterGrowingPausesAndComesBackOnceItCan() throws Exception {
    // Neo4j cannot start without its password file: it exits at once, as a component broken at start does
    Path password = state.resolve("neo4j-password"), aside = state.resolve("neo4j-password.aside");
    Files.move(password, aside);
    Instant firstFailure, fourthFailure;
    try {
      ProcessHandle.of(component(status(), "neo4j").get("pid").asLong()).orElseThrow().destroyForcibly();
      JsonNode failing = Await.until("a failed start", Duration.ofMinutes(2), SupervisedClusterTest::status, s -> failedStarts(s) >= 1);
      firstFailure = Instant.now();
      assertFalse(failing.get("running").asBoolean(), "not running while a component cannot start: " + failing);
      Cli.Run text = Cli.resgraph("status", "--dir", state.toString());
      assertEquals(1, text.code(), "status fails while a component cannot start");
      assertTrue(text.out().lines().anyMatch(l -> l.contains("neo4j") && l.contains("failed starts in a row")), text.out());
      Await.until("four failed starts", Duration.ofMinutes(2), SupervisedClusterTest::status, s -> failedStarts(s) >= 4);
      fourthFailure = Instant.now();
    } finally {
      Files.move(aside, password);
    }
    // pauses of 1, 2 and 4 s came between them (a supervisor that spun would start it again as soon as it ended)
    assertTrue(Duration.between(firstFailure, fourthFailure).toMillis() >= 7_000, Duration.between(firstFailure, fourthFailure).toString());
    assertTrue(Files.readString(state.resolve("logs/supervisor.log")).contains("starting it again in 4 s (3 short lives in a row)"));

    JsonNode back = Await.until("Neo4j started again", Duration.ofMinutes(3), SupervisedClusterTest::status,
        s -> failedStarts(s) == 0 && component(s, "neo4j").get("state").asText().equals("running"));
    assertTrue(back.get("running").asBoolean(), back.toString());
    assertEquals(1, component(back, "neo4j").get("restarts").asInt(), "one restart, after the failed starts");
    Cli.Run cypher = Cli.resgraph("cypher", "--dir", state.toString(), "--json", "RETURN 1 AS one");
    assertEquals(0, cypher.code(), "the graph service reads Neo4j again, with the password it had: " + cypher.err());
  }

  @Test
  @Order(3)
  void downStopsTheSupervisorAndEveryProcessItStarted() throws Exception {
    JsonNode s = status();
    List<Long> pids = new ArrayList<>(List.of(s.get("supervisor").get("pid").asLong()));
    s.get("components").forEach(c -> pids.add(c.get("pid").asLong()));
    Cli.Run r = Cli.resgraph("down", "--dir", state.toString());
    assertEquals(0, r.code(), r.err());
    for (long pid : pids) assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false), "pid " + pid + " still runs");
    assertFalse(Files.exists(state.resolve("cluster.json")));
  }

  private static JsonNode status() {
    Cli.Run r = Cli.resgraph("status", "--dir", state.toString(), "--json");
    try {
      return PipelineCluster.JSON.readTree(r.out());
    } catch (IOException e) {
      throw new UncheckedIOException(r.out() + r.err(), e);
    }
  }

  private static int failedStarts(JsonNode status) {
    return component(status, "neo4j").get("failed_starts").asInt();
  }

  private static JsonNode component(JsonNode status, String name) {
    for (JsonNode c : status.get("components")) if (c.get("name").asText().equals(name)) return c;
    throw new AssertionError("no " + name + " in " + status);
  }
}
