package resgraph.orchestrator.kafka;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.orchestrator.Finalization;
import resgraph.orchestrator.JobStore;
import resgraph.platform.Backoff;
import resgraph.platform.kafka.ErrorStrategy;
import resgraph.platform.kafka.GiveUp;
import resgraph.platform.kafka.JobEvents;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.TopicListener;
import resgraph.platform.kafka.Topics;
import resgraph.platform.kafka.UnreadableRecords;
import resgraph.v1.JobEvent;

/**
 * The orchestrator's listener: group {@value #GROUP} over resgraph.job-events, counting each poll's
 * events into the jobs' records as one batch, then starting the finalization of the jobs whose
 * tasks are all stored.
 *
 * <p>Error strategy. A batch's offsets are committed only after every job it changed is written
 * to resgraph.jobs, so a crash redelivers instead of losing; counting is idempotent (a task is a
 * member of a set), so a redelivered event changes nothing.
 * <ul>
 *   <li>Retry with backoff: a record write Kafka does not take, or a failing poll, is retried after
 *       1 s, doubling to at most 30 s, until it succeeds or the service stops (then the batch stays
 *       uncommitted).
 *   <li>Keep and fail the job: a record whose value is not a JobEvent is kept as it was on
 *       resgraph.unreadable ({@link UnreadableRecords}), and the job its key names fails, here and
 *       now: the orchestrator owns the jobs' state, so it counts the failure into the job as the
 *       event would have come, rather than publish it to the topic it is reading and see it later.
 *       The failure is written to resgraph.jobs before the record is committed; a job that has
 *       already ended stays as it was, so a redelivered record changes nothing.
 *   <li>Skip: events for a job this orchestrator has never recorded are logged and skipped.
 *   <li>A failed commit (the group rebalanced) is only logged: its events come again and count once.
 * </ul>
 */
@Factory
public class JobEventListener implements TopicListener.BatchHandler<JobEvent> {

  public static final String GROUP = "resgraph-orchestrator";

  private static final Logger LOG = LoggerFactory.getLogger(JobEventListener.class);

  private final JobStore store;
  private final Finalization finalization;

  JobEventListener(JobStore store, Finalization finalization) {
    this.store = store;
    this.finalization = finalization;
  }

  @Singleton
  @Bean(preDestroy = "close")
  TopicListener<JobEvent> events(KafkaBroker broker, UnreadableRecords unreadable) {
    GiveUp<JobEvent> keepAndFail = unreadable.giveUp(GROUP, (id, reason) -> count(id, List.of(JobEvents.jobFailed(id, reason))));
    return TopicListener.on(Topics.JOB_EVENTS, JobEvent.getDefaultInstance())
        .group(GROUP)
        .name("resgraph-orchestrator-events", "job-events")
        .errors(new ErrorStrategy<>(Backoff.forever(Duration.ofSeconds(1), Duration.ofSeconds(30)), keepAndFail, GiveUp.skip()))
        .batches(broker, this);
  }

  /** Writes every job the batch changes, one record per job, then finalizes those it completed; refuses none. */
  @Override
  public Map<JobEvent, String> handle(List<JobEvent> events) {
    Map<String, List<JobEvent>> byJob = new LinkedHashMap<>();
    for (JobEvent e : events) byJob.computeIfAbsent(e.getJobId(), k -> new ArrayList<>()).add(e);
    byJob.forEach(this::count);
    return Map.of();
  }

  private void count(String id, List<JobEvent> jobEvents) {
    store.count(id, jobEvents).ifPresentOrElse(finalization::finalizeIfDue,
        () -> LOG.warn("ignoring {} events of job {}, which this orchestrator never recorded", jobEvents.size(), id));
  }
}
