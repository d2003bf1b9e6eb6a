package resgraph.testkit;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.function.Supplier;

/**
 * The one way tests wait for what happens elsewhere (another thread, the broker, Neo4j): probe
 * until a condition holds or a deadline passes. Nothing waits a fixed time hoping it was enough;
 * the pause between probes is only how often to look.
 */
public final class Await {

  private static final Duration PROBE_EVERY = Duration.ofMillis(50);

  private Await() {}

  /** Probes until {@code done} holds and returns what was seen; fails with the last value seen at the deadline. */
  public static <T> T until(String what, Duration timeout, Supplier<T> probe, Predicate<T> done) {
    Instant deadline = Instant.now().plus(timeout);
    T last = probe.get();
    while (!done.test(last)) {
      if (Instant.now().isAfter(deadline)) fail("no " + what + " within " + timeout.toSeconds() + " s; last seen: " + last);
      LockSupport.parkNanos(PROBE_EVERY.toNanos());
      last = probe.get();
    }
    return last;
  }

  /** Probes until the condition holds; fails naming {@code what} at the deadline. */
  public static void until(String what, Duration timeout, BooleanSupplier condition) {
    until(what, timeout, condition::getAsBoolean, Boolean::booleanValue);
  }

  /** Probes the condition throughout {@code window}; fails naming {@code what} the first time it does not hold. */
  public static void holdsFor(String what, Duration window, BooleanSupplier condition) {
    Instant end = Instant.now().plus(window);
    while (Instant.now().isBefore(end)) {
      if (!condition.getAsBoolean()) fail("not so throughout " + window.toSeconds() + " s: " + what);
      LockSupport.parkNanos(PROBE_EVERY.toNanos());
    }
  }
}
