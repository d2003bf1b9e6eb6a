package resgraph.worker;

import resgraph.v1.Phase;
import resgraph.v1.TaskEffects;

/** What became of a task: what the worker publishes for it before it commits the task's offset. */
sealed interface Outcome {

  /** Ablated, at the given attempt: the effects go to resgraph.effects. */
  record Done(TaskEffects effects, int attempts) implements Outcome {}

  /** Given up: a dead letter, and the job fails with the reason. */
  record GivenUp(String reason, int attempts) implements Outcome {}

  /** Its job was cancelled or failed: nothing is published. */
  record Skipped(Phase phase) implements Outcome {}
}
