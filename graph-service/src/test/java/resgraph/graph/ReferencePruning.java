package resgraph.graph;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import resgraph.v1.Pruning;

/**
 * METHOD.md step 7 written out as its definition, edge by edge and without sorting, to hold
 * CircuitPruner against.
 */
final class ReferencePruning {

  private ReferencePruning() {}

  static Set<RawEdge> circuit(List<RawEdge> raw, Pruning rule) {
    Set<RawEdge> kept = new HashSet<>();
    for (RawEdge e : raw) {
      if (strong(e, raw, rule)) kept.add(e);
    }
    Set<RawEdge> circuit = new HashSet<>();
    for (RawEdge e : kept) {
      boolean sourceHasIncoming = kept.stream().anyMatch(x -> x.site() + 1 == e.site() && x.target() == e.source());
      boolean targetHasOutgoing = kept.stream().anyMatch(x -> x.site() == e.site() + 1 && x.source() == e.target());
      if (sourceHasIncoming || targetHasOutgoing) circuit.add(e);
    }
    return circuit;
  }

  /** Among the top k of its pair of sites (fewer than k edges come before it), or over the threshold. */
  private static boolean strong(RawEdge e, List<RawEdge> raw, Pruning rule) {
    if (rule.getRuleCase() == Pruning.RuleCase.THRESHOLD) return Math.abs(e.weight()) >= rule.getThreshold();
    int k = rule.getRuleCase() == Pruning.RuleCase.TOP_K ? rule.getTopK() : 10;
    long before = raw.stream().filter(x -> x.site() == e.site() && comesBefore(x, e)).count();
    return before < k;
  }

  private static boolean comesBefore(RawEdge x, RawEdge e) {
    float ax = Math.abs(x.weight()), ae = Math.abs(e.weight());
    if (ax != ae) return ax > ae;
    if (x.source() != e.source()) return x.source() < e.source();
    return x.target() < e.target();
  }
}
