package resgraph.orchestrator;

import io.micronaut.context.annotation.Context;
import jakarta.annotation.PostConstruct;
import jakarta.annotation.PreDestroy;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.ProtoSerde;
import resgraph.kafka.Topics;
import resgraph.orchestrator.KafkaBeans.Broker;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;

/**
 * Counts the JobEvents on resgraph.job-events (consumer group resgraph-orchestrator) into the
 * jobs' records, on a thread of its own.
 *
 * <p>Error strategy. A batch's offsets are committed only after every job it changed is written
 * to resgraph.jobs, so a crash redelivers instead of losing; counting is idempotent (a task is a
 * member of a set), so a redelivered event changes nothing. A write Kafka does not take is
 * retried after 1 s, doubling to at most 30 s, until it succeeds or the service stops (then the
 * batch stays uncommitted). A failed commit (the group rebalanced) is only logged: its events
 * come again and count once. A failing poll is retried with the same backoff. A record whose
 * value is not a JobEvent is logged and skipped: it carries nothing that can be counted, and no
 * dead-letter topic is meant for events. Events for a job this orchestrator has never recorded
 * are logged and skipped.
 */
@Context
final class JobEventLoop {

  static final String GROUP = "resgraph-orchestrator";

  private static final Logger LOG = LoggerFactory.getLogger(JobEventLoop.class);

  private final JobStore store;
  private final Finalizer finalizer;
  private final KafkaConsumer<String, JobEvent> consumer;
  private final Thread thread = new Thread(this::run, "job-events");
  private final CountDownLatch stopped = new CountDownLatch(1);

  JobEventLoop(Broker broker, JobStore store, Finalizer finalizer) {
    this.store = store;
    this.finalizer = finalizer;
    this.consumer = Clients.consumer(broker.bootstrap(), GROUP, ProtoSerde.deserializer(JobEvent.parser()), Map.of());
  }

  @PostConstruct
  void start() {
    thread.start();
  }

  @PreDestroy
  void stop() throws InterruptedException {
    stopped.countDown();
    consumer.wakeup();
    thread.join(TimeUnit.SECONDS.toMillis(30));
  }

  private boolean running() {
    return stopped.getCount() > 0;
  }

  private void run() {
    try {
      consumer.subscribe(List.of(Topics.JOB_EVENTS));
      Backoff backoff = Backoff.first();
      while (running()) {
        ConsumerRecords<String, JobEvent> batch;
        try {
          batch = consumer.poll(Duration.ofSeconds(1));
        } catch (RecordDeserializationException e) {
          LOG.error("skipping the unreadable record at {} offset {}: {}", e.topicPartition(), e.offset(), e.getMessage());
          consumer.seek(e.topicPartition(), e.offset() + 1);
          continue;
        } catch (WakeupException e) {
          throw e;
        } catch (KafkaException e) {
          // the client retries what is transient itself; a loop that died here would leave jobs uncounted
          LOG.error("polling {} failed, retrying in {} s: {}", Topics.JOB_EVENTS, backoff.delay().toSeconds(), e.getMessage());
          if (!pause(backoff)) return;
          backoff = backoff.next();
          continue;
        }
        backoff = Backoff.first();
        if (batch.isEmpty()) continue;
        if (!count(batch)) return;
        try {
          consumer.commitSync();
        } catch (WakeupException e) {
          throw e;
        } catch (KafkaException e) {
          LOG.warn("committing job events failed; they will be counted again, once: {}", e.getMessage());
        }
      }
    } catch (WakeupException stopping) {
      // only stop() wakes the consumer
    } finally {
      consumer.close();
    }
  }

  /** Writes every job the batch changes; false if the service stopped before all were written. */
  private boolean count(ConsumerRecords<String, JobEvent> batch) {
    Map<String, List<JobEvent>> byJob = new LinkedHashMap<>();
    for (ConsumerRecord<String, JobEvent> r : batch) {
      if (r.value() == null) continue;
      byJob.computeIfAbsent(r.value().getJobId(), k -> new ArrayList<>()).add(r.value());
    }
    for (Map.Entry<String, List<JobEvent>> e : byJob.entrySet()) {
      if (store.get(e.getKey()).isEmpty()) {
        LOG.warn("ignoring {} events of job {}, which this orchestrator never recorded", e.getValue().size(), e.getKey());
        continue;
      }
      Optional<JobRecord> written = write(e.getKey(), e.getValue());
      if (written.isEmpty()) return false;
      finalizer.finalizeIfDue(written.get().getJob());
    }
    return true;
  }

  private Optional<JobRecord> write(String id, List<JobEvent> events) {
    for (Backoff backoff = Backoff.first(); ; backoff = backoff.next()) {
      try {
        return Optional.of(store.update(id, r -> Transitions.counted(r, events, Instant.now())));
      } catch (RuntimeException e) {
        LOG.warn("recording events of job {} failed, retrying in {} s: {}", id, backoff.delay().toSeconds(), e.getMessage());
      }
      if (!pause(backoff)) return Optional.empty();
    }
  }

  /** Waits out a backoff; false if the service stops meanwhile. */
  private boolean pause(Backoff backoff) {
    try {
      return !stopped.await(backoff.delay().toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
