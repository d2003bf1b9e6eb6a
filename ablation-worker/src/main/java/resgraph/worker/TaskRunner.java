package resgraph.worker;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;
import resgraph.v1.Phase;
import resgraph.v1.TaskEffects;

/**
 * Runs one task on the model server under the {@link RetryPolicy} and says what became of it. It
 * runs on a thread of its own while the consumer keeps polling, so retries may take as long as
 * the policy allows; interrupting that thread abandons the task.
 */
@Singleton
final class TaskRunner {

  private static final Logger LOG = LoggerFactory.getLogger(TaskRunner.class);

  private final ModelClient model;
  private final JobPhases phases;
  private final RetryPolicy retry;

  TaskRunner(
      ModelClient model,
      JobPhases phases,
      @Value("${resgraph.worker.backoff-initial:500ms}") Duration initial,
      @Value("${resgraph.worker.backoff-max:15s}") Duration max,
      @Value("${resgraph.worker.retry-for:10m}") Duration retryFor) {
    this.model = model;
    this.phases = phases;
    this.retry = new RetryPolicy(initial, max, retryFor);
  }

  Outcome run(AblationTask task) throws InterruptedException {
    String id = task.getJobId() + "/" + task.getTask();
    long start = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      Optional<Phase> stopped = phases.stopped(task.getJobId());
      if (stopped.isPresent()) return new Outcome.Skipped(stopped.get());
      try {
        long called = System.nanoTime();
        AblateResponse reply = model.ablate(task);
        double seconds = (System.nanoTime() - called) / 1e9;
        // a job cancelled while its task ran wants nothing more written
        stopped = phases.stopped(task.getJobId());
        return stopped.isPresent() ? new Outcome.Skipped(stopped.get()) : new Outcome.Done(effects(task, reply, seconds), attempt);
      } catch (StatusRuntimeException e) {
        // the blocking stub turns an interrupt into CANCELLED and sets the flag again
        if (Thread.interrupted()) throw new InterruptedException("abandoned " + id);
        String reason = reason(e.getStatus());
        if (!RetryPolicy.isTransient(e.getStatus().getCode())) return new Outcome.GivenUp(reason, attempt);
        Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
        Duration wait = retry.delay(attempt);
        if (!retry.allows(elapsed, wait)) {
          return new Outcome.GivenUp(String.format(Locale.ROOT, "%s (still failing after %d attempts in %.1f s)",
              reason, attempt, elapsed.toMillis() / 1000.0), attempt);
        }
        LOG.warn("{}: {}; retrying in {} ms (attempt {})", id, reason, wait.toMillis(), attempt);
        Thread.sleep(wait.toMillis());
        model.reconnectNow();
      }
    }
  }

  /** E.g. "model server: INVALID_ARGUMENT: layer 9 is outside 0..4: ...". */
  static String reason(Status s) {
    StringBuilder r = new StringBuilder("model server: ").append(s.getCode());
    if (s.getDescription() != null) r.append(": ").append(s.getDescription());
    // a connection that failed says why only in its cause ("io exception" / "Connection refused")
    if (s.getCause() != null && s.getCause().getMessage() != null) r.append(" (").append(s.getCause().getMessage()).append(')');
    return r.toString();
  }

  private static TaskEffects effects(AblationTask task, AblateResponse reply, double seconds) {
    return TaskEffects.newBuilder()
        .setJobId(task.getJobId())
        .setTask(task.getTask())
        .setLayer(reply.getLayer())
        .setTarget(reply.getTarget())
        .addAllEffects(reply.getEffectsList())
        .setAblateSeconds(seconds)
        .build();
  }
}
