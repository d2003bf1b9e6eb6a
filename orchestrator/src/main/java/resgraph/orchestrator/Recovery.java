package resgraph.orchestrator;

import io.micronaut.context.annotation.Context;
import jakarta.annotation.PostConstruct;
import resgraph.v1.JobRecord;

/**
 * What a starting orchestrator does with the jobs the last one left mid-way, before it serves.
 * RUNNING jobs need nothing: the consumer group redelivers every event not yet committed.
 */
@Context
final class Recovery {

  static final String INTERRUPTED_PLANNING =
      "the orchestrator stopped while queueing this job's tasks or registering its activations, so some may be missing; "
          + "submit the job again";

  private final JobStore store;
  private final Finalization finalization;

  Recovery(JobStore store, Finalization finalization) {
    this.store = store;
    this.finalization = finalization;
  }

  @PostConstruct
  void resume() {
    for (JobRecord r : store.all()) {
      switch (r.getJob().getPhase()) {
        case PHASE_PLANNING -> store.update(r.getJob().getId(), x -> JobLifecycle.failed(x, INTERRUPTED_PLANNING));
        case PHASE_FINALIZING -> finalization.finalizeIfDue(r.getJob());
        default -> { }
      }
    }
  }
}
