package resgraph.viewer;

import java.util.Locale;
import resgraph.v1.Job;
import resgraph.v1.Pruning;

/** The caption every view of a circuit shows: how it was made from the job's raw edges (METHOD.md step 7). */
final class PruningCaption {

  private PruningCaption() {}

  /**
   * E.g. "layers 0:6, the 10 largest |effect| edges per layer pair on paths of two or more". The
   * job's rule is the one it ran with: the orchestrator writes the default into every spec.
   */
  static String of(Job job) {
    Pruning p = job.getSpec().getPruning();
    String kept = switch (p.getRuleCase()) {
      case THRESHOLD -> String.format(Locale.ROOT, "edges with |effect| ≥ %.4g", p.getThreshold());
      case TOP_K -> "the " + p.getTopK() + " largest |effect| edges per layer pair";
      case RULE_NOT_SET -> throw new IllegalArgumentException("job " + job.getId() + " names no pruning rule");
    };
    return "layers " + job.getLayerStart() + ":" + job.getLayerEnd() + ", " + kept + " on paths of two or more";
  }
}
