package resgraph.worker.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.platform.Backoff;
import resgraph.platform.grpc.GrpcStatuses;

/** The worker's error strategy, its pure parts: what is retried, how long it waits, what a dead letter says. */
class ErrorStrategyTest {

  private static final Backoff POLICY = new Backoff(Duration.ofMillis(500), Duration.ofSeconds(15), Duration.ofMinutes(10));

  @Test
  void backoffDoublesFromHalfASecondToFifteen() {
    List<Long> ms = IntStream.rangeClosed(1, 8).mapToObj(n -> POLICY.delay(n).toMillis()).toList();
    assertEquals(List.of(500L, 1000L, 2000L, 4000L, 8000L, 15000L, 15000L, 15000L), ms);
    assertEquals(Duration.ofSeconds(15), POLICY.delay(10_000), "no overflow however long it keeps failing");
  }

  @Test
  void retriesStopOnceTheNextWaitWouldPassTheRetryTime() {
    assertTrue(POLICY.allows(Duration.ofMinutes(9), Duration.ofSeconds(15)));
    assertTrue(POLICY.allows(Duration.ofSeconds(585), Duration.ofSeconds(15)));
    assertFalse(POLICY.allows(Duration.ofSeconds(586), Duration.ofSeconds(15)));
    assertFalse(new Backoff(Duration.ofMillis(500), Duration.ofSeconds(15), Duration.ZERO).allows(Duration.ZERO, Duration.ofMillis(500)));
  }

  @Test
  void onlyAnUnreachableOrBusyModelServerIsRetried() {
    for (Status.Code c : List.of(Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED, Status.Code.RESOURCE_EXHAUSTED, Status.Code.ABORTED)) {
      assertTrue(GrpcStatuses.kind(c).isTransient(), c.name());
    }
    for (Status.Code c : List.of(Status.Code.INVALID_ARGUMENT, Status.Code.NOT_FOUND, Status.Code.FAILED_PRECONDITION,
        Status.Code.INTERNAL, Status.Code.UNKNOWN, Status.Code.CANCELLED, Status.Code.UNIMPLEMENTED)) {
      assertFalse(GrpcStatuses.kind(c).isTransient(), c.name());
    }
  }

  @Test
  void nonsenseSettingsAreRefused() {
    assertThrows(IllegalArgumentException.class, () -> new Backoff(Duration.ZERO, Duration.ofSeconds(1), Duration.ofMinutes(1)));
    assertThrows(IllegalArgumentException.class, () -> new Backoff(Duration.ofSeconds(2), Duration.ofSeconds(1), Duration.ofMinutes(1)));
    assertThrows(IllegalArgumentException.class, () -> new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(1), Duration.ofMinutes(-1)));
  }

  @Test
  void reasonsNameTheStatusAndTheModelServersMessage() {
    assertEquals("model server: INVALID_ARGUMENT: layer 9 is outside 0..4",
        GrpcStatuses.reason("model server", Status.INVALID_ARGUMENT.withDescription("layer 9 is outside 0..4")));
    assertEquals("model server: UNAVAILABLE: io exception (Connection refused)",
        GrpcStatuses.reason("model server", Status.UNAVAILABLE.withDescription("io exception").withCause(new IOException("Connection refused"))));
  }
}
