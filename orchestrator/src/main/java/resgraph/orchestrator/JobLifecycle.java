package resgraph.orchestrator;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;
import resgraph.v1.Progress;
import resgraph.v1.Timings;

/**
 * A job's lifecycle: how its record changes, each phase change and each count, as a function from
 * the record before to the record after. A function returns its argument unchanged when nothing
 * happens, which is how the store knows there is nothing to write. An ended job never changes
 * again ({@link JobRules#ended}).
 */
public final class JobLifecycle {

  private static final Logger LOG = LoggerFactory.getLogger(JobLifecycle.class);

  private JobLifecycle() {}

  /** Its tasks are queued: PLANNING becomes RUNNING (or FINALIZING when there is nothing to run). */
  static JobRecord running(JobRecord r, Duration planning) {
    if (r.getJob().getPhase() != Phase.PHASE_PLANNING) return r;
    Job.Builder job = r.getJob().toBuilder().setPhase(Phase.PHASE_RUNNING);
    job.getTimingsBuilder().setPlanning(planning.toNanos() / 1e9);
    return finalizingIfComplete(r.toBuilder().setJob(job).build());
  }

  /**
   * Counts events: a stored task joins the set once (its edges with it), whatever number of times
   * it is reported; a failed task that is not stored fails the job with its reason, and so does a
   * failure of the whole job. Events for task numbers the job does not have are ignored.
   */
  static JobRecord counted(JobRecord r, List<JobEvent> events, Instant now) {
    Job before = r.getJob();
    if (JobRules.ended(before.getPhase())) return r;
    TreeSet<Integer> stored = new TreeSet<>(r.getStoredTasksList());
    Job.Builder job = before.toBuilder();
    Progress.Builder progress = job.getProgressBuilder();
    int total = progress.getTasksTotal();
    for (JobEvent e : events) {
      if (e.hasJobFailed()) {
        job.setPhase(Phase.PHASE_FAILED).setError(e.getJobFailed().getReason());
        break;
      }
      int task = switch (e.getEventCase()) {
        case STORED -> e.getStored().getTask();
        case FAILED -> e.getFailed().getTask();
        case JOB_FAILED, EVENT_NOT_SET -> -1; // a job's failure ended the loop above
      };
      if (task < 0 || task >= total) {
        LOG.warn("job {} has tasks 0..{}; ignoring an event for task {}", before.getId(), total - 1, task);
        continue;
      }
      if (e.hasStored() && stored.add(task)) {
        progress.setEdgesWritten(progress.getEdgesWritten() + e.getStored().getEdges());
        Timings.Builder t = job.getTimingsBuilder();
        t.setAblation(t.getAblation() + e.getStored().getAblateSeconds()).setWriting(t.getWriting() + e.getStored().getWriteSeconds());
      } else if (e.hasFailed() && !stored.contains(task)) {
        job.setPhase(Phase.PHASE_FAILED).setError("task " + task + " failed: " + e.getFailed().getReason());
        break;
      }
    }
    if (stored.size() != progress.getTasksDone()) {
      progress.setTasksDone(stored.size());
      eta(progress, Duration.between(instant(before.getCreated()), now));
    }
    if (job.getPhase() == Phase.PHASE_FAILED) progress.clearEtaSeconds();
    JobRecord after = finalizingIfComplete(JobRecord.newBuilder().setJob(job).addAllStoredTasks(stored).build());
    return after.equals(r) ? r : after;
  }

  /** The circuit is pruned and annotated, which took {@code finalization}: FINALIZING becomes DONE. */
  static JobRecord finalized(JobRecord r, Duration finalization, Instant now) {
    if (r.getJob().getPhase() != Phase.PHASE_FINALIZING) return r;
    Job.Builder job = r.getJob().toBuilder().setPhase(Phase.PHASE_DONE);
    job.getTimingsBuilder().setFinalization(finalization.toNanos() / 1e9)
        .setWall(Duration.between(instant(r.getJob().getCreated()), now).toNanos() / 1e9);
    return r.toBuilder().setJob(job).build();
  }

  static JobRecord failed(JobRecord r, String reason) {
    if (JobRules.ended(r.getJob().getPhase())) return r;
    Job.Builder job = r.getJob().toBuilder().setPhase(Phase.PHASE_FAILED).setError(reason);
    job.getProgressBuilder().clearEtaSeconds();
    return r.toBuilder().setJob(job).build();
  }

  /** CANCELLED; NOT_READY for a job that has already ended. */
  static JobRecord cancelled(JobRecord r) {
    Job job = r.getJob();
    if (JobRules.ended(job.getPhase())) {
      throw ResgraphException.notReady("job " + job.getId() + " already ended (" + job.getPhase().name().substring("PHASE_".length()) + ")");
    }
    Job.Builder out = job.toBuilder().setPhase(Phase.PHASE_CANCELLED);
    out.getProgressBuilder().clearEtaSeconds();
    return r.toBuilder().setJob(out).build();
  }

  /** Seconds left at the rate stored tasks have come in since the job was created. */
  private static void eta(Progress.Builder p, Duration elapsed) {
    int done = p.getTasksDone(), left = p.getTasksTotal() - done;
    if (done == 0 || left <= 0) {
      p.clearEtaSeconds();
      return;
    }
    p.setEtaSeconds(elapsed.toMillis() / 1000.0 / done * left);
  }

  private static JobRecord finalizingIfComplete(JobRecord r) {
    Job job = r.getJob();
    if (job.getPhase() != Phase.PHASE_RUNNING || job.getProgress().getTasksDone() < job.getProgress().getTasksTotal()) return r;
    Job.Builder out = job.toBuilder().setPhase(Phase.PHASE_FINALIZING);
    out.getProgressBuilder().clearEtaSeconds();
    return r.toBuilder().setJob(out).build();
  }

  public static Instant instant(com.google.protobuf.Timestamp t) {
    return Instant.ofEpochSecond(t.getSeconds(), t.getNanos());
  }

  public static com.google.protobuf.Timestamp timestamp(Instant i) {
    return com.google.protobuf.Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
  }
}
