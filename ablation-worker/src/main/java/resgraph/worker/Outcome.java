package resgraph.worker;

import resgraph.v1.Phase;
import resgraph.v1.TaskEffects;

/** What became of one attempt at a task: what the worker publishes before it commits the task's offset. */
public sealed interface Outcome {

  /** Ablated: the effects go to resgraph.effects. */
  record Done(TaskEffects effects) implements Outcome {}

  /** Its job was cancelled or failed: nothing is published. */
  record Skipped(Phase phase) implements Outcome {}
}
