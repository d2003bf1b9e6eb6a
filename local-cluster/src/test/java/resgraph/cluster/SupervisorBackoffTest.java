package resgraph.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** How long the supervisor waits before starting again a component that keeps ending soon after it starts. */
class SupervisorBackoffTest {

  @Test
  void aFirstEndIsRestartedAtOnceAndShortLivesInARowWaitDoublingPausesUpToAMinute() {
    List<Long> seconds = IntStream.rangeClosed(0, 9).mapToObj(streak -> Supervisor.backoff(streak).toSeconds()).toList();
    assertEquals(List.of(0L, 1L, 2L, 4L, 8L, 16L, 32L, 60L, 60L, 60L), seconds);
    assertEquals(Duration.ofMinutes(1), Supervisor.backoff(Integer.MAX_VALUE), "no overflow however long it keeps failing");
  }
}
