package resgraph.worker;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.Micronaut;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An ablation worker: a member of the Kafka consumer group {@code resgraph-workers} that takes
 * AblationTasks from resgraph.tasks, runs each with ModelService.Ablate (METHOD.md steps 3-5) and
 * publishes its TaskEffects to resgraph.effects keyed by job. Any number may run: each one added
 * takes its share of the topic's partitions, and so of the tasks. It serves no port.
 *
 * <p><b>Delivery.</b> A task's offset is committed only after its outcome is acknowledged by the
 * broker, so a worker that dies, even by SIGKILL, loses nothing: its uncommitted task goes to
 * another worker once the group notices (a 6 s session timeout), and runs again. That is at least
 * once; the graph service stores a task's effects idempotently. A stopped worker (SIGTERM) stops
 * polling, abandons the task in hand without committing it, and leaves the group at once.
 *
 * <p><b>Error strategy.</b>
 * <ul>
 *   <li>A task of a job that resgraph.jobs says is CANCELLED or FAILED is skipped and committed;
 *       nothing is published. A job not (yet) there is run.
 *   <li>The model server down, restarting or busy (UNAVAILABLE, DEADLINE_EXCEEDED,
 *       RESOURCE_EXHAUSTED, ABORTED): retried with exponential backoff, 0.5 s doubling to 15 s, for
 *       up to 10 minutes ({@link RetryPolicy}), then given up.
 *   <li>The task itself is bad (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, any other
 *       status): given up at once.
 *   <li>A record that holds no AblationTask: given up at once. Its dead letter carries the job and
 *       task its key names and, in the reason, its raw bytes in base64.
 *   <li>Effects the broker refuses for good (larger than the topic allows): given up.
 *   <li>Giving up publishes TaskFailure{task, reason, attempts} to resgraph.tasks.dlq keyed
 *       job/task and JobEvent{failed{task, reason}} to resgraph.job-events keyed by job (the
 *       orchestrator then fails the job), and commits. The reason names the status and the model
 *       server's message, e.g. "model server: INVALID_ARGUMENT: layer 9 is outside 0..4: ...".
 *   <li>An outcome the broker cannot take (an error still retriable after the producer's own
 *       retries, 2 minutes): nothing is committed; the consumer rewinds and the task runs again.
 *   <li>A commit refused because the partition moved to another worker: logged; the task runs
 *       again there.
 *   <li>Anything else ends the loop and the process exits with status 1 for its supervisor to
 *       restart it; its uncommitted task goes to another worker.
 * </ul>
 *
 * <p><b>Configuration</b>, as Micronaut properties (-D system properties, or environment variables
 * such as KAFKA_BOOTSTRAP_SERVERS):
 * <ul>
 *   <li>{@code kafka.bootstrap.servers} (required);
 *   <li>{@code resgraph.model-server.address}, host:port (required);
 *   <li>{@code resgraph.worker.name} (ablation-worker): the Kafka client id, in logs and thread names;
 *   <li>{@code resgraph.worker.retry-for} (10m), {@code resgraph.worker.backoff-initial} (500ms),
 *       {@code resgraph.worker.backoff-max} (15s): the retry policy above;
 *   <li>{@code resgraph.worker.ablate-timeout} (5m): the deadline of one Ablate call, queueing at
 *       the model server included;
 *   <li>{@code resgraph.kafka.replication-factor} (1): for the topics it creates if they are missing.
 * </ul>
 */
public final class AblationWorker {

  private static final Logger LOG = LoggerFactory.getLogger(AblationWorker.class);

  private AblationWorker() {}

  /** Starts a worker in this JVM with these properties and returns at once; the caller closes the context. */
  public static ApplicationContext start(Map<String, Object> properties) {
    ApplicationContext ctx = ApplicationContext.builder(AblationWorker.class).properties(properties).start();
    try {
      ctx.getBean(TaskLoop.class).start();
    } catch (RuntimeException e) {
      ctx.close();
      throw e;
    }
    return ctx;
  }

  public static void main(String[] args) {
    ApplicationContext ctx = Micronaut.run(AblationWorker.class, args);
    // no embedded server, so Micronaut registers no shutdown hook of its own
    Runtime.getRuntime().addShutdownHook(new Thread(ctx::close, "worker-shutdown"));
    TaskLoop loop;
    try {
      loop = ctx.getBean(TaskLoop.class);
      loop.start();
    } catch (RuntimeException e) {
      LOG.error("cannot start: {}", e.getMessage(), e);
      System.exit(1);
      return;
    }
    if (loop.awaitEnd().isPresent()) System.exit(1);
  }
}
