package resgraph.viewer;

import java.util.Locale;
import resgraph.v1.Job;
import resgraph.v1.Pruning;

/** The words every view of a circuit shows about how it was made. */
final class Header {

  private Header() {}

  /** How the circuit was pruned, in METHOD.md step 7's terms. */
  static String pruning(Job job) {
    Pruning p = job.getSpec().getPruning();
    String kept = p.hasThreshold()
        ? String.format(Locale.ROOT, "edges with |effect| ≥ %.4g", p.getThreshold())
        : "the " + (p.hasTopK() ? p.getTopK() : 10) + " largest |effect| edges per layer pair";
    return "layers " + job.getLayerStart() + ":" + job.getLayerEnd() + ", " + kept + " on paths of two or more";
  }
}
