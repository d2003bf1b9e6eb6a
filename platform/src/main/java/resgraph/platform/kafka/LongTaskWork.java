package resgraph.platform.kafka;

import com.google.protobuf.MessageLite;
import java.time.Duration;
import java.util.Collection;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.TopicListener.Received;

/**
 * {@link TopicListener}'s long-task work: one record at a time, its task run (and retried) on a
 * thread of its own while every assigned partition is paused and the listener's thread goes on
 * polling (which returns nothing) about five times a second; then its result settled, and only
 * then its offset committed.
 */
final class LongTaskWork<V extends MessageLite, R> implements TopicListener.Work {

  private static final Logger LOG = LoggerFactory.getLogger(TopicListener.class);
  private static final Duration BUSY_POLL = Duration.ofMillis(200);

  /**
   * One record at a time: a task takes up to seconds, and a member that fetched many would sit on
   * them while others idle. Cooperative rebalancing, so a member joining or leaving moves only the
   * partitions that change owner and the others keep their task in hand.
   */
  static final Map<String, Object> SETTINGS = Map.of(
      ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1,
      ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());

  /** What the attempts at a task came to: a result, or a reason to give the record up. */
  private record Attempted<R>(R result, String givenUp, int attempts) {}

  /** The task being run, its record, and when it was taken. */
  private record InHand<V, R>(Received<V> record, Future<Attempted<R>> outcome, long started) {}

  private final TopicListener<V> listener;
  private final TopicListener.LongTask<V, R> task;
  private final ExecutorService taskThread;
  /** Touched only by the listener's thread (rebalance callbacks run inside its poll). */
  private InHand<V, R> inHand;

  LongTaskWork(TopicListener<V> listener, TopicListener.LongTask<V, R> task, String taskThread) {
    this.listener = listener;
    this.task = task;
    this.taskThread = Executors.newSingleThreadExecutor(r -> new Thread(r, taskThread));
  }

  @Override
  public void loop() throws InterruptedException {
    while (listener.running()) {
      InHand<V, R> running = inHand;
      // with a task in hand every partition is paused: the poll only keeps this member in the group
      ConsumerRecords<String, byte[]> records = listener.consumer.poll(running == null ? listener.idlePoll : Duration.ZERO);
      if (running != null) {
        if (inHand == null) listener.consumer.resume(listener.consumer.paused()); // abandoned in that poll's rebalance
        else if (awaitDone(running.outcome(), BUSY_POLL)) finish(running);
      }
      // only a poll with nothing in hand (or a partition gained just after abandoning it) returns a record
      for (ConsumerRecord<String, byte[]> r : records) take(listener.read(r));
    }
  }

  /** Starts running a record's task, or gives up a record that holds none. */
  private void take(Received<V> r) throws InterruptedException {
    if (r.value() == null) {
      settle(r, () -> listener.errors.unreadable().giveUp(r.raw(), null, r.problem(), 0));
      return;
    }
    inHand = new InHand<>(r, taskThread.submit(() -> attempts(r)), System.nanoTime());
    listener.consumer.pause(listener.consumer.assignment());
  }

  /**
   * The task's attempts, on the task's thread: a transient failure is tried again after the
   * strategy's backoff, until the next wait would pass its retry time; an interrupt abandons it.
   */
  private Attempted<R> attempts(Received<V> r) throws Exception {
    Backoff retry = listener.errors.retry();
    long start = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      try {
        return new Attempted<>(task.run(r.key(), r.value()), null, attempt);
      } catch (ResgraphException e) {
        if (!e.kind().isTransient()) return new Attempted<>(null, e.getMessage(), attempt);
        Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
        Duration wait = retry.delay(attempt);
        if (!retry.allows(elapsed, wait)) {
          return new Attempted<>(null, String.format(Locale.ROOT, "%s (still failing after %d attempts in %.1f s)",
              e.getMessage(), attempt, elapsed.toMillis() / 1000.0), attempt);
        }
        LOG.warn("{}: {}; retrying in {} ms (attempt {})", r.key(), e.getMessage(), wait.toMillis(), attempt);
        Thread.sleep(wait.toMillis()); // the task's own thread: an interrupt (the record moved) ends the wait
      }
    }
  }

  private void finish(InHand<V, R> running) throws InterruptedException {
    inHand = null;
    Attempted<R> a;
    try {
      a = running.outcome().get();
    } catch (ExecutionException e) {
      throw new IllegalStateException("running " + running.record().key() + " failed", e.getCause());
    }
    Received<V> r = running.record();
    Duration took = Duration.ofNanos(System.nanoTime() - running.started());
    settle(r, a.givenUp() != null
        ? () -> listener.errors.refused().giveUp(r.raw(), r.value(), a.givenUp(), a.attempts())
        : () -> task.settle(r.raw(), r.value(), a.result(), a.attempts(), took));
    listener.consumer.resume(listener.consumer.paused());
  }

  /** A step that makes a record's outcome durable. */
  private interface Durable {
    void run() throws Exception;
  }

  /** Makes the outcome durable, then commits the record; if it cannot be made durable in time, rewinds so the task runs again. */
  private void settle(Received<V> r, Durable outcome) throws InterruptedException {
    try {
      outcome.run();
    } catch (RetriableException e) {
      LOG.warn("{}: its outcome could not be published ({}); it will run again", r.key(), e.toString());
      listener.consumer.seek(r.partition(), r.raw().offset());
      return;
    } catch (InterruptedException | RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("settling " + r.key() + " failed", e);
    }
    listener.commit(Map.of(r.partition(), new OffsetAndMetadata(r.raw().offset() + 1)));
  }

  /** Whether the future settled within {@code wait}. */
  private static boolean awaitDone(Future<?> f, Duration wait) throws InterruptedException {
    try {
      f.get(wait.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException notYet) {
      return false;
    } catch (ExecutionException | CancellationException settled) {
      // finish() reads it
    }
    return true;
  }

  @Override
  public void closed() {
    if (inHand != null) {
      inHand.outcome().cancel(true);
      LOG.info("{}: abandoned at shutdown, uncommitted: another member of {} will run it", inHand.record().key(), listener.group);
    }
    taskThread.shutdownNow();
  }

  @Override
  public Optional<ConsumerRebalanceListener> rebalance() {
    return Optional.of(new ConsumerRebalanceListener() {
      @Override
      public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
        abandonIfIn(partitions, "moved to another member");
      }

      @Override
      public void onPartitionsLost(Collection<TopicPartition> partitions) {
        abandonIfIn(partitions, "was lost (this member dropped out of the group)");
      }

      /** One task at a time: a partition gained while one runs waits until it is done. */
      @Override
      public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
        if (inHand != null) listener.consumer.pause(partitions);
      }
    });
  }

  /** Its new owner runs the task from the committed offset; this member may no longer commit it. */
  private void abandonIfIn(Collection<TopicPartition> partitions, String why) {
    if (inHand == null || !partitions.contains(inHand.record().partition())) return;
    inHand.outcome().cancel(true);
    LOG.info("{}: abandoned, its partition {}", inHand.record().key(), why);
    // the loop resumes the other partitions after the poll: resumed now, they could hand this
    // poll a record the loop is not looking for
    inHand = null;
  }
}
