package resgraph.worker.kafka;

import io.micronaut.context.annotation.Replaces;
import io.micronaut.context.annotation.Requires;
import jakarta.inject.Singleton;
import resgraph.platform.kafka.JobEvents;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.v1.AblationTask;
import resgraph.v1.TaskEffects;

/**
 * The publisher of a worker started with {@code test.crash-after-publish=true}: it publishes, then
 * the worker dies before it can commit, as one killed at that moment would.
 */
@Singleton
@Replaces(OutcomePublisher.class)
@Requires(property = "test.crash-after-publish", value = "true")
public final class CrashAfterPublish extends OutcomePublisher {

  /** An Error, which the worker does not recover from: its listener ends at once without committing. */
  public static final class Crash extends Error {
    Crash() {
      super("simulated crash between publishing and committing");
    }
  }

  CrashAfterPublish(KafkaPublisher kafka, JobEvents events) {
    super(kafka, events);
  }

  @Override
  void publishEffects(String key, AblationTask task, TaskEffects effects, int attempts) {
    super.publishEffects(key, task, effects, attempts);
    throw new Crash();
  }
}
