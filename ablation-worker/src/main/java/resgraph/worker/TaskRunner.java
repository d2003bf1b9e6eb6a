package resgraph.worker;

import jakarta.inject.Singleton;
import java.util.Optional;
import resgraph.platform.job.JobRules;
import resgraph.platform.job.RecordedJobs;
import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;
import resgraph.v1.TaskEffects;

/**
 * One attempt at a task: unless its job has ended (resgraph.jobs says CANCELLED or FAILED), Ablate
 * on the model server, and its reply as the task's effects. A job not (yet) recorded is run.
 */
@Singleton
public final class TaskRunner {

  private final Ablator model;
  private final RecordedJobs jobs;

  TaskRunner(Ablator model, RecordedJobs jobs) {
    this.model = model;
    this.jobs = jobs;
  }

  public Outcome run(AblationTask task) throws InterruptedException {
    Optional<Phase> stopped = stopped(task.getJobId());
    if (stopped.isPresent()) return new Outcome.Skipped(stopped.get());
    long called = System.nanoTime();
    AblateResponse reply = model.ablate(task);
    double seconds = (System.nanoTime() - called) / 1e9;
    // a job cancelled while its task ran wants nothing more written
    stopped = stopped(task.getJobId());
    return stopped.isPresent() ? new Outcome.Skipped(stopped.get()) : new Outcome.Done(effects(task, reply, seconds));
  }

  /** The job's phase if it means its tasks are no longer run. */
  private Optional<Phase> stopped(String jobId) {
    return jobs.get(jobId).map(JobRecord::getJob).map(j -> j.getPhase()).filter(JobRules::stopsItsTasks);
  }

  private static TaskEffects effects(AblationTask task, AblateResponse reply, double seconds) {
    return TaskEffects.newBuilder()
        .setJobId(task.getJobId())
        .setTask(task.getTask())
        .setLayer(reply.getLayer())
        .setHookName(reply.getHookName())
        .setMeasureHookName(reply.getMeasureHookName())
        .setTarget(reply.getTarget())
        .addAllEffects(reply.getEffectsList())
        .setAblateSeconds(seconds)
        .build();
  }
}
