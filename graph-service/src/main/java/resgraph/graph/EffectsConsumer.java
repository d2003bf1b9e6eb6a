package resgraph.graph;

import com.google.protobuf.InvalidProtocolBufferException;
import io.micronaut.context.annotation.Context;
import io.micronaut.context.annotation.Requires;
import io.micronaut.context.annotation.Value;
import jakarta.annotation.PreDestroy;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.Topics;
import resgraph.v1.JobEvent;
import resgraph.v1.TaskEffects;
import resgraph.v1.TaskFailed;
import resgraph.v1.TaskStored;

/**
 * Consumes {@code resgraph.effects} (group {@value #GROUP}): stores each task's raw edges through
 * {@link EffectsStore}, then publishes {@code JobEvent{stored}} to {@code resgraph.job-events},
 * and only then commits the offset, so a crash anywhere redelivers rather than loses.
 *
 * <p>Error strategy, per message:
 * <ul>
 *   <li>Not valid protobuf, or no job id: it can never be stored and there is no job to tell.
 *       Logged and skipped; nothing is published.
 *   <li>Valid but unusable (a delta list that does not match its latents, a non-finite effect, a
 *       job never registered here): it can never be stored. Logged, and {@code JobEvent{failed}}
 *       goes to the job, so the orchestrator fails it instead of waiting forever. (No dead letter:
 *       TaskFailure carries the AblationTask, which this service never sees.)
 *   <li>Already stored (a redelivery, a duplicate): not written again; its stored event is
 *       published again with the edge count it had, so a crash between the Neo4j commit and the
 *       event never stalls a job. The orchestrator counts each task once.
 *   <li>Anything else (Neo4j unreachable beyond the driver's own 30 s of transaction retries, a
 *       deadlock that outlasts them, Kafka refusing the event or the poll): retried without end,
 *       with backoff from 1 s doubling to 30 s. The offsets of the messages done so far are
 *       committed and the consumer seeks back to the first message not done, so no unwritten task
 *       is ever committed; it polls between attempts, so it stays in its group. A poll's
 *       messages are written by a few threads at once; the offsets still advance in order.
 * </ul>
 */
@Context
@Requires(property = "neo4j.uri")
final class EffectsConsumer {

  static final String GROUP = "resgraph-graph";

  private static final Logger LOG = LoggerFactory.getLogger(EffectsConsumer.class);
  private static final Duration FIRST_BACKOFF = Duration.ofSeconds(1);
  private static final Duration MAX_BACKOFF = Duration.ofSeconds(30);

  private final EffectsStore store;
  private final KafkaConsumer<String, byte[]> consumer;
  private final KafkaProducer<String, JobEvent> producer;
  private final CountDownLatch stopping = new CountDownLatch(1);
  private final ExecutorService writers;
  private final Thread thread;

  EffectsConsumer(
      EffectsStore store,
      @Value("${kafka.bootstrap.servers}") String bootstrap,
      @Value("${resgraph.kafka.replication-factor:1}") int replicationFactor,
      @Value("${resgraph.graph.writers:2}") int writers) {
    this.store = store;
    this.writers = Executors.newFixedThreadPool(writers, r -> new Thread(r, "effects-writer"));
    try (Admin admin = Clients.admin(bootstrap)) {
      Topics.ensure(admin, replicationFactor);
    }
    // A TaskEffects can be tens of MB; a few per poll keep a batch well inside max.poll.interval.ms.
    this.consumer = Clients.consumer(bootstrap, GROUP, new ByteArrayDeserializer(),
        Map.of(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 16, ConsumerConfig.CLIENT_ID_CONFIG, "graph-service-effects"));
    this.producer = Clients.producer(bootstrap, "graph-service-events");
    this.thread = new Thread(this::run, "effects-consumer");
    thread.start();
  }

  @PreDestroy
  void stop() throws InterruptedException {
    stopping.countDown();
    consumer.wakeup();
    thread.join(TimeUnit.SECONDS.toMillis(30));
  }

  private void run() {
    try {
      consumer.subscribe(List.of(Topics.EFFECTS));
      LOG.info("storing what arrives on {} (consumer group {})", Topics.EFFECTS, GROUP);
      Duration backoff = FIRST_BACKOFF;
      while (stopping.getCount() > 0) {
        boolean done;
        try {
          done = processAll(consumer.poll(Duration.ofSeconds(1)));
        } catch (WakeupException e) {
          continue; // stop() woke the poll up: the loop ends
        } catch (KafkaException e) {
          LOG.warn("polling {} failed, will retry: {}", Topics.EFFECTS, describe(e));
          done = false;
        }
        if (done) {
          backoff = FIRST_BACKOFF;
        } else {
          if (stopping.await(backoff.toMillis(), TimeUnit.MILLISECONDS)) break;
          backoff = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      writers.shutdown();
      consumer.close(Duration.ofSeconds(5));
      producer.close(Duration.ofSeconds(5));
    }
  }

  /**
   * Stores a poll's records, up to {@code resgraph.graph.writers} at once (Neo4j writes faster
   * from several transactions), then commits each partition up to its first record not done. On
   * a failure worth retrying, seeks every partition back to that record and returns false; the
   * records after it that did get stored come again and are found already stored.
   */
  private boolean processAll(ConsumerRecords<String, byte[]> records) {
    Map<ConsumerRecord<String, byte[]>, Future<?>> writes = new LinkedHashMap<>();
    for (ConsumerRecord<String, byte[]> record : records) writes.put(record, writers.submit(() -> handle(record)));
    Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
    boolean all = true;
    for (TopicPartition tp : records.partitions()) {
      Long retry = null;
      for (ConsumerRecord<String, byte[]> record : records.records(tp)) {
        Throwable failure = outcome(writes.get(record));
        if (failure != null && retry == null) {
          LOG.warn("storing the effects at {} offset {} failed, will retry: {}", tp, record.offset(), describe(failure));
          retry = record.offset();
        } else if (retry == null) {
          done.put(tp, new OffsetAndMetadata(record.offset() + 1));
        }
      }
      if (retry != null) {
        consumer.seek(tp, retry);
        all = false;
      }
    }
    commit(done);
    return all;
  }

  /** Waits for a write; what it threw, or null. */
  private static Throwable outcome(Future<?> write) {
    try {
      write.get();
      return null;
    } catch (ExecutionException e) {
      return e.getCause();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return e;
    }
  }

  private void handle(ConsumerRecord<String, byte[]> record) {
    TaskEffects task;
    try {
      task = TaskEffects.parseFrom(record.value() == null ? new byte[0] : record.value());
    } catch (InvalidProtocolBufferException e) {
      LOG.error("skipping {}-{} offset {} (key {}): not a TaskEffects protobuf: {}", record.topic(), record.partition(),
          record.offset(), record.key(), e.getMessage());
      return;
    }
    if (task.getJobId().isEmpty()) {
      LOG.error("skipping {}-{} offset {} (key {}): a TaskEffects without a job id", record.topic(), record.partition(),
          record.offset(), record.key());
      return;
    }
    JobEvent.Builder event = JobEvent.newBuilder().setJobId(task.getJobId());
    try {
      long start = System.nanoTime();
      EffectsStore.Stored stored = store.store(task);
      double seconds = (System.nanoTime() - start) / 1e9;
      event.setStored(TaskStored.newBuilder().setTask(task.getTask()).setEdges(stored.edges())
          .setWriteSeconds(stored.written() ? seconds : 0).setAblateSeconds(task.getAblateSeconds()));
      if (stored.written()) {
        LOG.info("stored task {} of job {}: {} edges in {} ms", task.getTask(), task.getJobId(), stored.edges(),
            Math.round(seconds * 1000));
      } else {
        LOG.info("task {} of job {} was already stored; publishing its event again", task.getTask(), task.getJobId());
      }
    } catch (GraphException e) {
      if (e.kind() != GraphException.Kind.BAD_REQUEST && e.kind() != GraphException.Kind.NOT_FOUND) throw e;
      LOG.error("task {} of job {} can never be stored: {}", task.getTask(), task.getJobId(), e.getMessage());
      event.setFailed(TaskFailed.newBuilder().setTask(task.getTask()).setReason("graph service: " + e.getMessage()));
    }
    try {
      producer.send(new ProducerRecord<>(Topics.JOB_EVENTS, task.getJobId(), event.build())).get();
    } catch (ExecutionException e) {
      throw new KafkaException("cannot publish the event of task " + task.getTask() + " of job " + task.getJobId() + ": "
          + e.getCause().getMessage(), e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KafkaException("interrupted publishing an event", e);
    }
  }

  private void commit(Map<TopicPartition, OffsetAndMetadata> done) {
    if (done.isEmpty()) return;
    try {
      consumer.commitSync(done);
    } catch (KafkaException e) {
      // a rebalance took the partition: its next owner redelivers, and storing is idempotent
      LOG.warn("cannot commit offsets {}: {}", done, e.getMessage());
    }
  }

  private static String describe(Throwable e) {
    return e.getClass().getSimpleName() + ": " + e.getMessage();
  }
}
