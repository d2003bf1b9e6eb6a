package resgraph.viewer;

import java.util.Locale;
import java.util.stream.Collectors;
import resgraph.v1.ChainSite;
import resgraph.v1.Job;
import resgraph.v1.Pruning;

/** The caption every view of a circuit shows: how it was made from the job's raw edges (METHOD.md step 7). */
final class PruningCaption {

  private PruningCaption() {}

  /**
   * E.g. "layers 0:6, the 10 largest |effect| edges per layer pair on paths of two or more", or
   * "sites 3m, 3p, 4m, ..." for a chain that mixes kinds of site. The job's rule is the one it ran
   * with: the orchestrator writes the default into every spec.
   */
  static String of(Job job) {
    Pruning p = job.getSpec().getPruning();
    String kept = switch (p.getRuleCase()) {
      case THRESHOLD -> String.format(Locale.ROOT, "edges with |effect| ≥ %.4g", p.getThreshold());
      case TOP_K -> "the " + p.getTopK() + " largest |effect| edges per pair of adjacent sites";
      case RULE_NOT_SET -> throw new IllegalArgumentException("job " + job.getId() + " names no pruning rule");
    };
    boolean oneKind = job.getChainList().stream().allMatch(s -> s.getNodePrefix().equals(Integer.toString(s.getLayer())));
    String chain = oneKind ? "layers " + job.getLayerStart() + ":" + job.getLayerEnd()
        : "sites " + job.getChainList().stream().map(ChainSite::getSite).collect(Collectors.joining(", "));
    return chain + ", " + kept + " on paths of two or more";
  }
}
