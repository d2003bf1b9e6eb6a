package resgraph.platform.kafka;

import jakarta.inject.Singleton;
import java.util.List;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import resgraph.v1.JobEvent;
import resgraph.v1.JobFailed;
import resgraph.v1.TaskFailed;
import resgraph.v1.TaskStored;

/**
 * What the orchestrator counts, on resgraph.job-events keyed by job: a task stored, a task that
 * cannot be done, or a job that cannot go on (the job then fails). Each call returns once the
 * broker has the event.
 */
@Singleton
public final class JobEvents {

  private final KafkaPublisher publisher;

  JobEvents(KafkaPublisher publisher) {
    this.publisher = publisher;
  }

  /** A task of the job stored. */
  public record Stored(String jobId, TaskStored stored) implements KafkaPublisher.Keyed {
    @Override
    public String key() {
      return jobId;
    }

    @Override
    public JobEvent value() {
      return JobEvent.newBuilder().setJobId(jobId).setStored(stored).build();
    }
  }

  /** Publishes every one of them, in order, returning once the broker has them all. */
  public void stored(List<Stored> stored) {
    publisher.publishAll(Topics.JOB_EVENTS, stored);
  }

  public void failed(String jobId, int task, String reason) {
    publisher.publish(Topics.JOB_EVENTS, jobId, JobEvent.newBuilder().setJobId(jobId)
        .setFailed(TaskFailed.newBuilder().setTask(task).setReason(reason)).build());
  }

  /** The job fails as a whole with the reason: a record of it cannot be read ({@link UnreadableRecords}). */
  public void failed(String jobId, String reason) {
    publisher.publish(Topics.JOB_EVENTS, jobId, jobFailed(jobId, reason));
  }

  /** The event that fails a job as a whole. */
  public static JobEvent jobFailed(String jobId, String reason) {
    return JobEvent.newBuilder().setJobId(jobId).setJobFailed(JobFailed.newBuilder().setReason(reason)).build();
  }

  /**
   * The give-up that fails the job: a record refused for good tells the orchestrator, which fails
   * the job with {@code who}'s reason instead of waiting for its task forever.
   */
  public <V> GiveUp<V> failJob(String who, Function<V, String> jobOf, ToIntFunction<V> taskOf) {
    return (record, value, reason, attempts) -> failed(jobOf.apply(value), taskOf.applyAsInt(value), who + ": " + reason);
  }
}
