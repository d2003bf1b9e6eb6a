package resgraph.worker;

import io.micronaut.context.annotation.Value;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.ProtoSerde;
import resgraph.kafka.Topics;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;

/**
 * The phase of every job, kept current from the compacted topic resgraph.jobs on a thread of its
 * own, so that the tasks of a cancelled or failed job are skipped. Every worker needs every job,
 * so this consumer is in no group: it assigns itself all partitions and reads from the beginning.
 */
@Singleton
final class JobPhases {

  private static final Logger LOG = LoggerFactory.getLogger(JobPhases.class);
  private static final Duration POLL = Duration.ofMillis(500);

  private final Map<String, Phase> phases = new ConcurrentHashMap<>();
  private final CountDownLatch caughtUp = new CountDownLatch(1);
  private final KafkaConsumer<String, JobRecord> consumer;
  private final Thread thread;
  private volatile boolean running = true;
  private volatile RuntimeException failure;

  JobPhases(@Value("${kafka.bootstrap.servers}") String bootstrap, @Value("${resgraph.worker.name:ablation-worker}") String name) {
    this.consumer = Clients.consumer(bootstrap, null, ProtoSerde.deserializer(JobRecord.parser()),
        Map.of(ConsumerConfig.CLIENT_ID_CONFIG, name + "-jobs"));
    this.thread = new Thread(this::run, "jobs-" + name);
  }

  void start() {
    thread.start();
  }

  /**
   * The job's latest phase; empty for a job not (yet) seen, whose tasks are run.
   *
   * @throws IllegalStateException once the topic can no longer be read: a worker that cannot tell
   *     a cancelled job from a running one stops rather than go on guessing
   */
  Optional<Phase> phase(String jobId) {
    checkReading();
    return Optional.ofNullable(phases.get(jobId));
  }

  /** The job's phase if it means its tasks are no longer run: CANCELLED or FAILED. */
  Optional<Phase> stopped(String jobId) {
    return phase(jobId).filter(p -> p == Phase.PHASE_CANCELLED || p == Phase.PHASE_FAILED);
  }

  /** Waits until every job recorded when this started has been read; false if that took longer than {@code timeout}. */
  boolean awaitCaughtUp(Duration timeout) throws InterruptedException {
    boolean done = caughtUp.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    checkReading();
    return done;
  }

  private void checkReading() {
    if (failure != null) throw new IllegalStateException("cannot read " + Topics.JOBS + ": " + failure.getMessage(), failure);
  }

  private void run() {
    try {
      List<TopicPartition> partitions = consumer.partitionsFor(Topics.JOBS).stream()
          .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
      while (running) {
        try {
          for (ConsumerRecord<String, JobRecord> r : consumer.poll(POLL)) apply(r);
        } catch (RecordDeserializationException e) {
          LOG.warn("skipping a record of {} at offset {}: {}", e.topicPartition(), e.offset(), e.getMessage());
          consumer.seek(e.topicPartition(), e.offset() + 1);
        }
        if (caughtUp.getCount() > 0 && end.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue())) {
          LOG.info("read {} jobs from {}", phases.size(), Topics.JOBS);
          caughtUp.countDown();
        }
      }
    } catch (WakeupException stopping) {
      // stop() asked
    } catch (RuntimeException e) {
      failure = e;
      LOG.error("stopped reading {}", Topics.JOBS, e);
    } finally {
      consumer.close();
    }
  }

  private void apply(ConsumerRecord<String, JobRecord> r) {
    // a tombstone (null value) is a job removed from the topic
    if (r.value() == null) phases.remove(r.key());
    else phases.put(r.key(), r.value().getJob().getPhase());
  }

  @PreDestroy
  void stop() throws InterruptedException {
    running = false;
    if (thread.getState() == Thread.State.NEW) {
      consumer.close();
      return;
    }
    if (thread.isAlive()) {
      consumer.wakeup();
      thread.join();
    }
  }
}
