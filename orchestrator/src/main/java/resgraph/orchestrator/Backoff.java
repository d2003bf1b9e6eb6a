package resgraph.orchestrator;

import java.time.Duration;

/** How long to wait before retrying what failed: 1 s, doubling to at most 30 s. */
record Backoff(Duration delay) {

  private static final Duration FIRST = Duration.ofSeconds(1);
  private static final Duration MAX = Duration.ofSeconds(30);

  static Backoff first() {
    return new Backoff(FIRST);
  }

  Backoff next() {
    Duration doubled = delay.multipliedBy(2);
    return new Backoff(doubled.compareTo(MAX) > 0 ? MAX : doubled);
  }
}
