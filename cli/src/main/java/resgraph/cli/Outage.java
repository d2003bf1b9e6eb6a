package resgraph.cli;

import io.grpc.Channel;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.Iterator;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Waiting out a service that went away: a restarted orchestrator takes its jobs up again from
 * Kafka, a restarted graph service serves the same stores, so a command following a job retries
 * what failed as UNAVAILABLE, with growing pauses, for as long as its patience lasts. (Kafka,
 * Neo4j or the model server going away shows up here only as a job that waits: the services retry
 * them.)
 */
final class Outage {

  /** How long a command waits for a service to come back before it gives up. */
  static final Duration PATIENCE = Duration.ofMinutes(3);

  private final String service;
  private final Channel channel;
  private long since; // nanoTime of the outage's first failure; 0 while the service answers
  private long pauseMillis;

  /** {@code channel}: the one the calls go through, asked to reconnect before each try. */
  Outage(String service, Channel channel) {
    this.service = service;
    this.channel = channel;
  }

  /** The service answered: the next failure starts a new outage. */
  void over() {
    since = 0;
  }

  /**
   * After a failed call: waits before the next try and returns, or rethrows {@code e} when it is
   * not the service being away or the outage has lasted past {@link #PATIENCE}.
   */
  void await(StatusRuntimeException e) {
    if (e.getStatus().getCode() != Status.Code.UNAVAILABLE) throw e;
    long now = System.nanoTime();
    if (since == 0) {
      since = now;
      pauseMillis = 250;
      System.err.println("\nresgraph: lost the " + service + " (" + e.getStatus().getDescription() + "); waiting up to "
          + PATIENCE.toSeconds() + " s for it to come back");
    } else if (Duration.ofNanos(now - since).compareTo(PATIENCE) > 0) {
      throw e;
    }
    try {
      Thread.sleep(pauseMillis);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
      throw e;
    }
    pauseMillis = Math.min(5_000, pauseMillis * 2);
    // the channel reconnects on a backoff of its own, growing to two minutes: a service back meanwhile would wait for it
    if (channel instanceof ManagedChannel managed) managed.resetConnectBackoff();
  }

  /** Follows a stream to its end, opening it again while the service is away; each message goes to {@code each}. */
  <T> void follow(Supplier<Iterator<T>> open, Consumer<T> each) {
    while (true) {
      try {
        for (Iterator<T> it = open.get(); it.hasNext(); ) {
          T message = it.next();
          over();
          each.accept(message);
        }
        return;
      } catch (StatusRuntimeException e) {
        await(e);
      }
    }
  }

  /** A unary call, tried again while the service is away. */
  <T> T call(Supplier<T> rpc) {
    while (true) {
      try {
        T answer = rpc.get();
        over();
        return answer;
      } catch (StatusRuntimeException e) {
        await(e);
      }
    }
  }
}
