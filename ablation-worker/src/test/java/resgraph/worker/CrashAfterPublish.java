package resgraph.worker;

import io.micronaut.context.annotation.Replaces;
import io.micronaut.context.annotation.Requires;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Singleton;
import resgraph.v1.AblationTask;

/**
 * The publisher of a worker started with {@code test.crash-after-publish=true}: it publishes, then
 * the worker dies before it can commit, as one killed at that moment would.
 */
@Singleton
@Replaces(Publisher.class)
@Requires(property = "test.crash-after-publish", value = "true")
final class CrashAfterPublish extends Publisher {

  /** An Error, which the worker does not recover from: its loop ends at once without committing. */
  static final class Crash extends Error {
    Crash() {
      super("simulated crash between publishing and committing");
    }
  }

  CrashAfterPublish(@Value("${kafka.bootstrap.servers}") String bootstrap, @Value("${resgraph.worker.name}") String name) {
    super(bootstrap, name);
  }

  @Override
  void publish(String key, AblationTask task, Outcome outcome) throws InterruptedException {
    super.publish(key, task, outcome);
    throw new Crash();
  }
}
