package resgraph.platform;

import java.time.Duration;

/**
 * When to try again what failed, and until when: after the n-th failure wait {@code initial}
 * doubled n-1 times, at most {@code max}; stop once the next wait would end past {@code retryFor}
 * since the first attempt ({@link #FOREVER} never stops).
 *
 * <p>No jitter: each resgraph process retries one thing at a time, so a service coming back sees
 * at most one retry per process per step.
 */
public record Backoff(Duration initial, Duration max, Duration retryFor) {

  /** A retry time that never runs out. */
  public static final Duration FOREVER = Duration.ofSeconds(Long.MAX_VALUE);

  public Backoff {
    if (initial.isNegative() || initial.isZero()) throw new IllegalArgumentException("the first backoff must be positive, not " + initial);
    if (max.compareTo(initial) < 0) throw new IllegalArgumentException("the longest backoff " + max + " is below the first " + initial);
    if (retryFor.isNegative()) throw new IllegalArgumentException("the retry time must not be negative, not " + retryFor);
  }

  /** Retries without end, from {@code initial} doubling to {@code max}. */
  public static Backoff forever(Duration initial, Duration max) {
    return new Backoff(initial, max, FOREVER);
  }

  /** The wait after the n-th failed attempt (n from 1): initial * 2^(n-1), at most max. */
  public Duration delay(int attempt) {
    if (attempt < 1) throw new IllegalArgumentException("attempts count from 1, not " + attempt);
    // past 2^20 the doubling has long reached any sensible max; capping the exponent avoids overflow
    Duration d = initial.multipliedBy(1L << Math.min(attempt - 1, 20));
    return d.compareTo(max) > 0 ? max : d;
  }

  /** Whether one more attempt, after waiting {@code delay}, still starts within {@code retryFor}. */
  public boolean allows(Duration elapsed, Duration delay) {
    return retryFor.equals(FOREVER) || elapsed.plus(delay).compareTo(retryFor) <= 0;
  }
}
