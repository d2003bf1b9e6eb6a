package resgraph.worker;

import com.google.protobuf.MessageLite;
import io.micronaut.context.annotation.Value;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Clients;
import resgraph.kafka.Topics;
import resgraph.v1.AblationTask;
import resgraph.v1.JobEvent;
import resgraph.v1.TaskFailed;
import resgraph.v1.TaskFailure;

/**
 * Publishes what a task came to and waits for the broker's acknowledgement, so that a task's
 * offset is committed only once its result is durable. (Not final: a test replaces it to stop a
 * worker between publishing and committing.)
 */
@Singleton
class Publisher {

  private static final Logger LOG = LoggerFactory.getLogger(Publisher.class);

  private final KafkaProducer<String, MessageLite> producer;

  Publisher(@Value("${kafka.bootstrap.servers}") String bootstrap, @Value("${resgraph.worker.name:ablation-worker}") String name) {
    this.producer = Clients.producer(bootstrap, name);
  }

  /**
   * Returns once the broker has the outcome: TaskEffects on resgraph.effects keyed by job; or a
   * TaskFailure on the dead-letter topic under the task's {@code key} and a JobEvent{failed} on
   * resgraph.job-events keyed by job; or nothing for a skipped task. Effects the broker refuses
   * for good (too large, say) make the task given up instead.
   *
   * @throws RetriableException when the broker could not take it in time; nothing may be committed
   */
  void publish(String key, AblationTask task, Outcome outcome) throws InterruptedException {
    if (outcome instanceof Outcome.Done done) {
      try {
        await(producer.send(new ProducerRecord<>(Topics.EFFECTS, task.getJobId(), done.effects())));
      } catch (RetriableException e) {
        throw e;
      } catch (KafkaException e) {
        LOG.warn("{}: the broker refuses its effects ({} bytes): {}", key, done.effects().getSerializedSize(), e.toString());
        giveUp(key, task, new Outcome.GivenUp("cannot publish the task's effects: " + e, done.attempts()));
      }
    } else if (outcome instanceof Outcome.GivenUp givenUp) {
      giveUp(key, task, givenUp);
    }
  }

  private void giveUp(String key, AblationTask task, Outcome.GivenUp g) throws InterruptedException {
    Future<RecordMetadata> letter = producer.send(new ProducerRecord<>(Topics.DEAD_LETTERS, key,
        TaskFailure.newBuilder().setTask(task).setReason(g.reason()).setAttempts(g.attempts()).build()));
    // a record too broken to name its job fails no job; it stays in the dead-letter topic for people
    if (!task.getJobId().isEmpty()) {
      await(producer.send(new ProducerRecord<>(Topics.JOB_EVENTS, task.getJobId(), JobEvent.newBuilder()
          .setJobId(task.getJobId())
          .setFailed(TaskFailed.newBuilder().setTask(task.getTask()).setReason(g.reason()))
          .build())));
    }
    await(letter);
  }

  private static void await(Future<RecordMetadata> sent) throws InterruptedException {
    try {
      sent.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof KafkaException k) throw k;
      throw new KafkaException(e.getCause());
    }
  }

  @PreDestroy
  void close() {
    producer.close(Duration.ofSeconds(10));
  }
}
