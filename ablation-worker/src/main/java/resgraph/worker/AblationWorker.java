package resgraph.worker;

import io.micronaut.context.ApplicationContext;
import java.util.Map;
import resgraph.platform.ServiceApplication;

/**
 * An ablation worker's process: a member of the consumer group {@code resgraph-workers} that takes
 * AblationTasks from resgraph.tasks, runs each with ModelService.Ablate and publishes its
 * TaskEffects to resgraph.effects keyed by job (see {@link resgraph.worker.kafka.TaskListener}
 * for its guarantees and error strategy). Any number may run: each one added takes its share of the
 * topic's partitions, and so of the tasks. It serves no port. Configured by {@link WorkerConfig}.
 */
public final class AblationWorker {

  static final String SERVICE = "worker";

  private AblationWorker() {}

  public static void main(String[] args) {
    ServiceApplication.run(AblationWorker.class, SERVICE, args);
  }

  /** Starts a worker in this JVM with these properties and returns at once; the caller closes the context. */
  public static ApplicationContext start(Map<String, Object> properties) {
    return ServiceApplication.start(AblationWorker.class, SERVICE, properties);
  }
}
