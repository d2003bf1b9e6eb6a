package resgraph.orchestrator;

import com.google.protobuf.MessageLite;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.micronaut.context.annotation.Context;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordDeserializationException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.ProtoSerde;
import resgraph.kafka.Topics;
import resgraph.orchestrator.KafkaBeans.Broker;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;

/**
 * Every job this orchestrator knows, and who is watching which. The compacted topic resgraph.jobs
 * is the only durable state: a change is written there, and acknowledged by every in-sync
 * replica, before anyone here can see it; on start the store is rebuilt from the whole topic
 * before the service answers a call. Changes are made one at a time, so each is computed from the
 * state the previous one left.
 */
@Context
final class JobStore {

  private static final Logger LOG = LoggerFactory.getLogger(JobStore.class);
  private static final Duration WRITE_TIMEOUT = Duration.ofSeconds(30);
  private static final Comparator<Job> NEWEST_FIRST = Comparator
      .comparing((Job j) -> Transitions.instant(j.getCreated())).thenComparing(Job::getId).reversed();

  private final Map<String, JobRecord> jobs = new ConcurrentHashMap<>();
  /** Guarded by this; watchers are called in order of the changes, under the lock. */
  private final Map<String, List<Consumer<Job>>> watchers = new HashMap<>();
  private final KafkaProducer<String, MessageLite> producer;

  JobStore(Broker broker, KafkaProducer<String, MessageLite> producer) {
    this.producer = producer;
    load(broker.bootstrap());
  }

  Optional<JobRecord> get(String id) {
    return Optional.ofNullable(jobs.get(id));
  }

  /** The job, or NOT_FOUND naming the id. */
  JobRecord require(String id) {
    return get(id).orElseThrow(() -> Status.NOT_FOUND.withDescription("no job " + id).asRuntimeException());
  }

  Collection<JobRecord> all() {
    return List.copyOf(jobs.values());
  }

  List<Job> newestFirst() {
    return jobs.values().stream().map(JobRecord::getJob).sorted(NEWEST_FIRST).toList();
  }

  /** Records a new job; UNAVAILABLE when Kafka does not take it. */
  synchronized void create(JobRecord r) {
    String id = r.getJob().getId();
    if (jobs.containsKey(id)) throw Status.ALREADY_EXISTS.withDescription("job " + id + " exists").asRuntimeException();
    write(r);
    jobs.put(id, r);
  }

  /**
   * Applies a change to a job, stamps {@code updated}, writes it and tells the job's watchers.
   * NOT_FOUND for an unknown id, UNAVAILABLE when Kafka does not take the write (the job is then
   * as it was), and whatever the change itself throws.
   */
  synchronized JobRecord update(String id, UnaryOperator<JobRecord> change) {
    JobRecord before = require(id);
    JobRecord after = change.apply(before);
    if (after.equals(before)) return before;
    after = after.toBuilder().setJob(after.getJob().toBuilder().setUpdated(Transitions.timestamp(Instant.now()))).build();
    write(after);
    jobs.put(id, after);
    tell(after.getJob());
    return after;
  }

  /**
   * Calls {@code watcher} with the job now and after each change until the job ends; returns what
   * stops the calls earlier (for a client that goes away).
   */
  synchronized Runnable watch(String id, Consumer<Job> watcher) {
    Job job = require(id).getJob();
    watcher.accept(job);
    if (Transitions.ended(job.getPhase())) return () -> {};
    watchers.computeIfAbsent(id, k -> new ArrayList<>()).add(watcher);
    return () -> unwatch(id, watcher);
  }

  /** How many watchers are registered, over all jobs. */
  synchronized int watching() {
    return watchers.values().stream().mapToInt(List::size).sum();
  }

  private synchronized void unwatch(String id, Consumer<Job> watcher) {
    List<Consumer<Job>> list = watchers.get(id);
    if (list == null) return;
    list.remove(watcher);
    if (list.isEmpty()) watchers.remove(id);
  }

  /** A watcher that throws (its client is gone) is dropped; none outlives its job. */
  private void tell(Job job) {
    List<Consumer<Job>> list = watchers.get(job.getId());
    if (list == null) return;
    list.removeIf(w -> {
      try {
        w.accept(job);
        return false;
      } catch (RuntimeException e) {
        LOG.debug("dropping a watcher of job {}: {}", job.getId(), e.toString());
        return true;
      }
    });
    if (list.isEmpty() || Transitions.ended(job.getPhase())) watchers.remove(job.getId());
  }

  private void write(JobRecord r) {
    String id = r.getJob().getId();
    try {
      producer.send(new ProducerRecord<>(Topics.JOBS, id, r)).get(WRITE_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw unavailable(id, e.getCause().getMessage(), e.getCause());
    } catch (TimeoutException e) {
      throw unavailable(id, "no acknowledgement within " + WRITE_TIMEOUT.toSeconds() + " s", e);
    } catch (KafkaException e) {
      throw unavailable(id, e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw unavailable(id, "interrupted", e);
    }
  }

  private static StatusRuntimeException unavailable(String id, String why, Throwable cause) {
    return Status.UNAVAILABLE.withDescription("cannot record job " + id + " in Kafka topic " + Topics.JOBS + ": " + why)
        .withCause(cause).asRuntimeException();
  }

  /** Reads resgraph.jobs from the beginning to the end it has now: the latest record of each job wins. */
  private void load(String bootstrap) {
    try (KafkaConsumer<String, JobRecord> consumer =
        Clients.consumer(bootstrap, null, ProtoSerde.deserializer(JobRecord.parser()), Map.of())) {
      List<TopicPartition> partitions = consumer.partitionsFor(Topics.JOBS).stream()
          .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
      while (partitions.stream().anyMatch(p -> consumer.position(p) < end.get(p))) {
        try {
          for (ConsumerRecord<String, JobRecord> r : consumer.poll(Duration.ofMillis(500))) {
            if (r.value() == null) jobs.remove(r.key());
            else jobs.put(r.value().getJob().getId(), r.value());
          }
        } catch (RecordDeserializationException e) {
          // Not written by an orchestrator: there is no job in it to restore.
          LOG.error("skipping the unreadable record at {} offset {}: {}", e.topicPartition(), e.offset(), e.getMessage());
          consumer.seek(e.topicPartition(), e.offset() + 1);
        }
      }
    }
    LOG.info("{} jobs restored from {}", jobs.size(), Topics.JOBS);
  }
}
