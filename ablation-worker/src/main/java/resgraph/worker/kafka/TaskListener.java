package resgraph.worker.kafka;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.kafka.ErrorStrategy;
import resgraph.platform.kafka.GiveUp;
import resgraph.platform.kafka.JobEvents;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.TopicListener;
import resgraph.platform.kafka.Topics;
import resgraph.platform.kafka.UnreadableRecords;
import resgraph.v1.AblationTask;
import resgraph.worker.Outcome;
import resgraph.worker.TaskRunner;
import resgraph.worker.WorkerConfig;

/**
 * The worker's listener: group {@value #GROUP} over resgraph.tasks, one task at a time in the
 * platform's long-task mode, each run by {@link TaskRunner} and its outcome published by
 * {@link OutcomePublisher} before its offset is committed.
 *
 * <p><b>Delivery.</b> A worker that dies, even by SIGKILL, loses nothing: its uncommitted task goes
 * to another worker once the group notices (a 6 s session timeout), and runs again. A stopped
 * worker (SIGTERM) stops polling, abandons the task in hand without committing it, and leaves the
 * group at once.
 *
 * <p><b>Error strategy.</b>
 * <ul>
 *   <li>A task of a job that resgraph.jobs says is CANCELLED or FAILED is skipped and committed;
 *       nothing is published. A job not (yet) there is run.
 *   <li>Retry with backoff: the model server down, restarting or busy (UNAVAILABLE,
 *       DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED) is tried again after 0.5 s doubling to
 *       15 s, for up to 10 minutes ({@link WorkerConfig}), then the task is given up.
 *   <li>Dead-letter and fail the job: a task the model server refuses (INVALID_ARGUMENT, NOT_FOUND,
 *       FAILED_PRECONDITION, any other status) is given up at once; so are effects the broker
 *       refuses for good (larger than the topic allows). Giving up publishes
 *       TaskFailure{task, reason, attempts} to resgraph.tasks.dlq keyed job/task and
 *       JobEvent{failed{task, reason}} to resgraph.job-events keyed by job (the orchestrator then
 *       fails the job), and commits. The reason names the status and the model server's message,
 *       e.g. "model server: INVALID_ARGUMENT: layer 9 is outside 0..4: ...".
 *   <li>Keep and fail the job: a record that holds no AblationTask is kept as it was on
 *       resgraph.unreadable and fails the job its key names with JobEvent{job_failed}
 *       ({@link UnreadableRecords}), then committed.
 *   <li>An outcome the broker cannot take (still retriable after the producer's own retries, 2
 *       minutes): nothing is committed; the task runs again.
 *   <li>Anything else ends the listener, and the process exits with status 1 for its supervisor to
 *       restart it; its uncommitted task goes to another worker.
 * </ul>
 */
@Factory
public class TaskListener implements TopicListener.LongTask<AblationTask, Outcome> {

  public static final String GROUP = "resgraph-workers";

  private static final Logger LOG = LoggerFactory.getLogger(TaskListener.class);

  /**
   * Polling never stops, so the poll interval only has to cover a publish that waits out the
   * producer's delivery timeout (2 minutes) and a commit. (A killed worker's partitions move to
   * another within the platform's 6 s session.)
   */
  private static final Map<String, Object> CONSUMER = Map.of(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 300_000);

  private final TaskRunner runner;
  private final OutcomePublisher publisher;

  TaskListener(TaskRunner runner, OutcomePublisher publisher) {
    this.runner = runner;
    this.publisher = publisher;
  }

  @Singleton
  @Bean(preDestroy = "close")
  TopicListener<AblationTask> tasks(KafkaBroker broker, WorkerConfig config, UnreadableRecords unreadableRecords, JobEvents events) {
    GiveUp<AblationTask> deadLetter = (r, task, reason, attempts) -> publisher.giveUp(r.key(), task, reason, attempts);
    GiveUp<AblationTask> unreadable = unreadableRecords.giveUp(GROUP, events::failed);
    return TopicListener.on(Topics.TASKS, AblationTask.getDefaultInstance())
        .group(GROUP)
        .name(config.name(), "tasks-" + config.name())
        .settings(CONSUMER)
        .idlePoll(Duration.ofMillis(500))
        .errors(new ErrorStrategy<>(config.backoff(), unreadable, deadLetter))
        .longTasks(broker, this, "ablate-" + config.name());
  }

  @Override
  public Outcome run(String key, AblationTask task) throws InterruptedException {
    return runner.run(task);
  }

  @Override
  public void settle(ConsumerRecord<String, byte[]> record, AblationTask task, Outcome outcome, int attempts, Duration took) {
    if (outcome instanceof Outcome.Done d) {
      publisher.publishEffects(record.key(), task, d.effects(), attempts);
      LOG.info("{}: {} latents ablated, {} effects published ({} ms, attempt {})", record.key(), d.effects().getEffectsCount(),
          d.effects().getEffectsList().stream().mapToInt(e -> e.getDownstreamCount()).sum(), took.toMillis(), attempts);
    } else if (outcome instanceof Outcome.Skipped s) {
      LOG.info("{}: skipped, its job is {}", record.key(), s.phase());
    }
  }
}
