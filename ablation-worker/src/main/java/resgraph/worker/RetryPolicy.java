package resgraph.worker;

import io.grpc.Status;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Set;

/**
 * Which failed Ablate calls are tried again, and when.
 *
 * <p>A model server that is down, restarting or busy answers UNAVAILABLE, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED or ABORTED: that passes, so the call is retried after {@code initial}, then
 * after twice as long each time up to {@code max}, until the next wait would take the task past
 * {@code retryFor} since its first attempt. Every other status (INVALID_ARGUMENT, NOT_FOUND,
 * FAILED_PRECONDITION, INTERNAL, ...) says the task itself is bad: asking again would get the same
 * answer, so the task is given up at once.
 *
 * <p>No jitter: a worker has one call in flight, so a restarting model server sees at most one
 * retry per worker per step.
 */
public record RetryPolicy(Duration initial, Duration max, Duration retryFor) {

  private static final Set<Status.Code> TRANSIENT = EnumSet.of(
      Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED, Status.Code.RESOURCE_EXHAUSTED, Status.Code.ABORTED);

  public RetryPolicy {
    if (initial.isNegative() || initial.isZero()) throw new IllegalArgumentException("the first backoff must be positive, not " + initial);
    if (max.compareTo(initial) < 0) throw new IllegalArgumentException("the longest backoff " + max + " is below the first " + initial);
    if (retryFor.isNegative()) throw new IllegalArgumentException("the retry time must not be negative, not " + retryFor);
  }

  public static boolean isTransient(Status.Code code) {
    return TRANSIENT.contains(code);
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
    return elapsed.plus(delay).compareTo(retryFor) <= 0;
  }
}
