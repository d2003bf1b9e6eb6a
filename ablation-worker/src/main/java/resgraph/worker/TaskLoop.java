package resgraph.worker;

import com.google.protobuf.InvalidProtocolBufferException;
import io.micronaut.context.annotation.Value;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.errors.RetriableException;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.Topics;
import resgraph.v1.AblationTask;

/**
 * The consumer loop of group {@value #GROUP} over resgraph.tasks, on a thread of its own: one
 * task at a time, run by {@link TaskRunner} on a second thread, its outcome published by
 * {@link Publisher}, and only then its offset committed. {@link AblationWorker} describes the
 * guarantees and the error strategy.
 *
 * <p>While a task runs, every assigned partition is paused and this thread keeps polling (which
 * returns nothing) about five times a second. So the worker stays in the group however long a
 * task takes, its retries included, and answers a rebalance or a stop within a fraction of a
 * second; the alternative, running the task on this thread within a bounded retry time, would hold
 * up every rebalance of the group, and so every worker joining it, for as long as that bound.
 */
@Singleton
final class TaskLoop {

  static final String GROUP = "resgraph-workers";

  private static final Logger LOG = LoggerFactory.getLogger(TaskLoop.class);
  private static final Duration IDLE_POLL = Duration.ofMillis(500);
  private static final Duration BUSY_POLL = Duration.ofMillis(200);
  /** How much of an unreadable record's value its dead letter shows. */
  private static final int RAW_BYTES_SHOWN = 512;

  /**
   * One record at a time: a task takes up to seconds, and a worker that fetched many would sit on
   * them while other workers idle. A short session so that a killed worker's partitions move to
   * another within about 6 s. Polling never stops, so the poll interval only has to cover a
   * publish that waits out the producer's delivery timeout (2 minutes) and a commit. Cooperative
   * rebalancing, so a worker joining or leaving moves only the partitions that change owner and
   * the others keep their task in hand.
   */
  private static final Map<String, Object> CONSUMER = Map.of(
      ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 1,
      ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6_000,
      ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 2_000,
      ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 300_000,
      ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());

  /** The task being run, its record, and when it was taken. */
  private record InHand(ConsumerRecord<String, byte[]> record, AblationTask task, Future<Outcome> outcome, long started) {}

  private final String bootstrap;
  private final int replicationFactor;
  private final TaskRunner runner;
  private final Publisher publisher;
  private final JobPhases phases;
  private final KafkaConsumer<String, byte[]> consumer;
  private final ExecutorService ablations;
  private final Thread thread;
  private final CompletableFuture<Optional<Throwable>> ended = new CompletableFuture<>();
  private volatile boolean running = true;
  /** Touched only by the loop's thread (rebalance callbacks run inside its poll). */
  private InHand inHand;

  TaskLoop(
      @Value("${kafka.bootstrap.servers}") String bootstrap,
      @Value("${resgraph.worker.name:ablation-worker}") String name,
      @Value("${resgraph.kafka.replication-factor:1}") int replicationFactor,
      TaskRunner runner,
      Publisher publisher,
      JobPhases phases) {
    this.bootstrap = bootstrap;
    this.replicationFactor = replicationFactor;
    this.runner = runner;
    this.publisher = publisher;
    this.phases = phases;
    Map<String, Object> settings = new HashMap<>(CONSUMER);
    settings.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
    // raw bytes: a value that is not an AblationTask must reach the dead-letter topic, not stop the loop
    this.consumer = Clients.consumer(bootstrap, GROUP, new ByteArrayDeserializer(), settings);
    this.ablations = Executors.newSingleThreadExecutor(r -> new Thread(r, "ablate-" + name));
    this.thread = new Thread(this::run, "tasks-" + name);
  }

  /** Makes sure the topics exist, starts reading job phases, then starts the loop. */
  void start() {
    try (Admin admin = Clients.admin(bootstrap)) {
      Topics.ensure(admin, replicationFactor);
    }
    phases.start();
    thread.start();
  }

  /** Waits until the loop ends: empty when it was stopped, else the error that ended it. */
  Optional<Throwable> awaitEnd() {
    return ended.join();
  }

  /** Stops polling, abandons (uncommitted) a task still running, and leaves the group. */
  @PreDestroy
  void stop() throws InterruptedException {
    running = false;
    if (thread.getState() == Thread.State.NEW) {
      consumer.close();
      ablations.shutdownNow();
      ended.complete(Optional.empty());
      return;
    }
    if (thread.isAlive()) {
      consumer.wakeup();
      thread.join();
    }
  }

  private void run() {
    Throwable failure = null;
    try {
      // a task of a job cancelled before this worker started must not run for want of having read that
      boolean ready = false;
      while (running && !ready) ready = phases.awaitCaughtUp(IDLE_POLL);
      consumer.subscribe(List.of(Topics.TASKS), new Rebalance());
      LOG.info("taking tasks from {} in group {}", Topics.TASKS, GROUP);
      loop();
    } catch (WakeupException | InterruptedException stopping) {
      // stop() asked
    } catch (RuntimeException | Error e) {
      failure = e;
      LOG.error("the task loop failed; its uncommitted task goes to another worker", e);
    } finally {
      if (inHand != null) {
        inHand.outcome().cancel(true);
        LOG.info("{}: abandoned at shutdown, uncommitted: another worker will run it", inHand.record().key());
      }
      ablations.shutdownNow();
      consumer.close();
      ended.complete(Optional.ofNullable(failure));
    }
  }

  private void loop() throws InterruptedException {
    while (running) {
      InHand task = inHand;
      // with a task in hand every partition is paused: the poll only keeps this worker in the group
      ConsumerRecords<String, byte[]> records = consumer.poll(task == null ? IDLE_POLL : Duration.ZERO);
      if (task != null) {
        if (inHand == null) consumer.resume(consumer.paused()); // abandoned in that poll's rebalance
        else if (awaitDone(task.outcome(), BUSY_POLL)) finish(task);
      }
      // only a poll with nothing in hand (or a partition gained just after abandoning it) returns a record
      for (ConsumerRecord<String, byte[]> r : records) take(r);
    }
  }

  /** Starts running a record's task, or dead-letters a record that holds none. */
  private void take(ConsumerRecord<String, byte[]> r) throws InterruptedException {
    long now = System.nanoTime();
    if (r.value() == null) {
      settle(r, named(r.key()), new Outcome.GivenUp("the record has no value; job and task are from its key", 0), now);
      return;
    }
    AblationTask task;
    try {
      task = AblationTask.parseFrom(r.value());
    } catch (InvalidProtocolBufferException e) {
      settle(r, named(r.key()), new Outcome.GivenUp("the value is not a valid AblationTask (" + e.getMessage()
          + "); job and task are from its key; its " + r.value().length + " bytes in base64"
          + (r.value().length > RAW_BYTES_SHOWN ? " (the first " + RAW_BYTES_SHOWN + ")" : "") + ": "
          + Base64.getEncoder().encodeToString(Arrays.copyOf(r.value(), Math.min(r.value().length, RAW_BYTES_SHOWN))), 0), now);
      return;
    }
    inHand = new InHand(r, task, ablations.submit(() -> runner.run(task)), now);
    consumer.pause(consumer.assignment());
  }

  private void finish(InHand task) throws InterruptedException {
    inHand = null;
    Outcome outcome;
    try {
      outcome = task.outcome().get();
    } catch (ExecutionException e) {
      throw new IllegalStateException("running " + task.record().key() + " failed", e.getCause());
    }
    settle(task.record(), task.task(), outcome, task.started());
    consumer.resume(consumer.paused());
  }

  /** Publishes the outcome, then commits the record; if it cannot be published, rewinds so that the task runs again. */
  private void settle(ConsumerRecord<String, byte[]> r, AblationTask task, Outcome outcome, long started)
      throws InterruptedException {
    try {
      publisher.publish(r.key(), task, outcome);
    } catch (RetriableException e) {
      LOG.warn("{}: its outcome could not be published ({}); it will run again", r.key(), e.toString());
      consumer.seek(new TopicPartition(r.topic(), r.partition()), r.offset());
      return;
    }
    commit(r);
    log(r.key(), outcome, started);
  }

  private void commit(ConsumerRecord<String, byte[]> r) {
    Map<TopicPartition, OffsetAndMetadata> next =
        Map.of(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
    try {
      try {
        consumer.commitSync(next);
      } catch (WakeupException stopping) {
        // stop() came while publishing or committing: the outcome is out, so finish the commit; the loop ends after
        consumer.commitSync(next);
      }
    } catch (CommitFailedException | RebalanceInProgressException | RetriableException e) {
      // the partition moved on (or the broker is away): whoever has it now runs the task again
      LOG.warn("{}: offset not committed ({}); the task will run again", r.key(), e.toString());
    }
  }

  private static void log(String key, Outcome outcome, long started) {
    long ms = (System.nanoTime() - started) / 1_000_000;
    if (outcome instanceof Outcome.Done d) {
      LOG.info("{}: {} latents ablated, {} effects published ({} ms, attempt {})", key, d.effects().getEffectsCount(),
          d.effects().getEffectsList().stream().mapToInt(e -> e.getDownstreamCount()).sum(), ms, d.attempts());
    } else if (outcome instanceof Outcome.GivenUp g) {
      LOG.warn("{}: given up after {} attempts, dead-lettered: {}", key, g.attempts(), g.reason());
    } else if (outcome instanceof Outcome.Skipped s) {
      LOG.info("{}: skipped, its job is {}", key, s.phase());
    }
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

  /**
   * The job and task a record's key names ("job/task", as the orchestrator writes it), so that an
   * unreadable task still fails its job instead of leaving it waiting; a key of any other shape
   * names no job.
   */
  static AblationTask named(String key) {
    AblationTask.Builder t = AblationTask.newBuilder();
    int slash = key == null ? -1 : key.lastIndexOf('/');
    if (slash < 1) return t.build();
    try {
      t.setTask(Integer.parseInt(key.substring(slash + 1)));
    } catch (NumberFormatException notATaskNumber) {
      return t.build();
    }
    return t.setJobId(key.substring(0, slash)).build();
  }

  private final class Rebalance implements ConsumerRebalanceListener {

    @Override
    public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
      abandonIfIn(partitions, "moved to another worker");
    }

    @Override
    public void onPartitionsLost(Collection<TopicPartition> partitions) {
      abandonIfIn(partitions, "was lost (this worker dropped out of the group)");
    }

    /** One task at a time: a partition gained while one runs waits until it is done. */
    @Override
    public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
      if (inHand != null) consumer.pause(partitions);
    }

    /** Its new owner runs the task from the committed offset; this worker may no longer commit it. */
    private void abandonIfIn(Collection<TopicPartition> partitions, String why) {
      if (inHand == null || !partitions.contains(new TopicPartition(inHand.record().topic(), inHand.record().partition()))) return;
      inHand.outcome().cancel(true);
      LOG.info("{}: abandoned, its partition {}", inHand.record().key(), why);
      // the loop resumes the other partitions after the poll: resumed now, they could hand this
      // poll a record the loop is not looking for
      inHand = null;
    }
  }
}
