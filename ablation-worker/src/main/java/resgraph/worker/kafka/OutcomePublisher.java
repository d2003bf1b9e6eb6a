package resgraph.worker.kafka;

import jakarta.inject.Singleton;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.RetriableException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.kafka.JobEvents;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.platform.kafka.Topics;
import resgraph.v1.AblationTask;
import resgraph.v1.TaskEffects;
import resgraph.v1.TaskFailure;

/**
 * Publishes what a task came to and waits for the broker's acknowledgement, so that a task's
 * offset is committed only once its result is durable. (Not final: a test replaces it to stop a
 * worker between publishing and committing.)
 */
@Singleton
class OutcomePublisher {

  private static final Logger LOG = LoggerFactory.getLogger(OutcomePublisher.class);

  private final KafkaPublisher kafka;
  private final JobEvents events;

  OutcomePublisher(KafkaPublisher kafka, JobEvents events) {
    this.kafka = kafka;
    this.events = events;
  }

  /**
   * The effects on resgraph.effects keyed by job. Effects the broker refuses for good (too large,
   * say) make the task given up instead.
   *
   * @throws RetriableException when the broker could not take them in time; nothing may be committed
   */
  void publishEffects(String key, AblationTask task, TaskEffects effects, int attempts) {
    try {
      kafka.publish(Topics.EFFECTS, task.getJobId(), effects);
    } catch (RetriableException e) {
      throw e;
    } catch (KafkaException e) {
      LOG.warn("{}: the broker refuses its effects ({} bytes): {}", key, effects.getSerializedSize(), e.toString());
      giveUp(key, task, "cannot publish the task's effects: " + e, attempts);
    }
  }

  /**
   * A dead letter, TaskFailure{task, reason, attempts} on resgraph.tasks.dlq under the task's
   * {@code key}, and JobEvent{failed} to the job, so the orchestrator fails it with the reason.
   */
  void giveUp(String key, AblationTask task, String reason, int attempts) {
    Future<RecordMetadata> letter = kafka.send(Topics.DEAD_LETTERS, key,
        TaskFailure.newBuilder().setTask(task).setReason(reason).setAttempts(attempts).build());
    // a record too broken to name its job fails no job; it stays in the dead-letter topic for people
    if (!task.getJobId().isEmpty()) events.failed(task.getJobId(), task.getTask(), reason);
    KafkaPublisher.await(letter);
    LOG.warn("{}: given up after {} attempts, dead-lettered: {}", key, attempts, reason);
  }
}
