package resgraph.platform.job;

import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import resgraph.platform.kafka.CompactedTopicView;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.Topics;
import resgraph.v1.JobRecord;

/**
 * Every job as the orchestrator records it in the compacted topic resgraph.jobs, kept current:
 * its spec, its phase, its progress. The workers read it to skip the tasks of ended jobs, the graph
 * service to know a job's spec and phase. Read to its end when the bean is made, so a service that
 * starts knows every job recorded before it.
 */
@Singleton
public final class RecordedJobs {

  /** How long a lookup of an unknown job waits for the view to read what the topic holds now. */
  private static final Duration SYNC_TIMEOUT = Duration.ofSeconds(30);

  private final CompactedTopicView<JobRecord> view;

  RecordedJobs(KafkaBroker broker) {
    this.view = CompactedTopicView.follow(broker, Topics.JOBS, JobRecord.getDefaultInstance(), "jobs-view");
  }

  /**
   * The job's latest record as read so far; empty for a job not (yet) seen.
   *
   * @throws IllegalStateException once the topic can no longer be read
   */
  public Optional<JobRecord> get(String jobId) {
    return view.get(jobId);
  }

  /** The job's latest record, reading what the topic holds now first if the job is not known yet. */
  public Optional<JobRecord> current(String jobId) {
    return view.getCurrent(jobId, SYNC_TIMEOUT);
  }

  /** Every job read so far, by id. */
  public Map<String, JobRecord> all() {
    return view.snapshot();
  }

  @PreDestroy
  void close() {
    view.close();
  }
}
