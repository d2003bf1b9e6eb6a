package resgraph.graph;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;
import resgraph.platform.job.JobRules;
import resgraph.v1.Pruning;

/**
 * METHOD.md step 7: the circuit from a job's raw edges.
 *
 * <ol>
 *   <li>Per pair of adjacent sites of the chain, keep the {@code k} edges of largest |e| (ties broken by source
 *       latent, then target latent, ascending), or every edge with |e| >= threshold.
 *   <li>Of those, keep the edges on a path of two or more of them: {@code u -> v} stays iff
 *       {@code u} has an incoming or {@code v} an outgoing edge in the kept set.
 * </ol>
 */
public final class CircuitPruner {

  /** Largest |e| first; equal |e| by source latent, then target latent. */
  static final Comparator<RawEdge> RANK = Comparator
      .comparingDouble((RawEdge e) -> -Math.abs(e.weight()))
      .thenComparingInt(RawEdge::source)
      .thenComparingInt(RawEdge::target);

  /** In circuit order: by source (site, latent), then target latent. */
  public static final Comparator<RawEdge> ORDER = Comparator
      .comparingInt(RawEdge::site)
      .thenComparingInt(RawEdge::source)
      .thenComparingInt(RawEdge::target);

  private CircuitPruner() {}

  /** The circuit's edges, in {@link #ORDER}. {@code rule} unset means METHOD.md's default ({@link JobRules#pruningOrDefault}). */
  public static List<RawEdge> prune(List<RawEdge> raw, Pruning rule) {
    List<RawEdge> kept = new ArrayList<>();
    for (Map.Entry<Integer, List<RawEdge>> pair : bySite(raw).entrySet()) {
      kept.addAll(strongest(TaskEdges.of(pair.getKey(), pair.getValue()), rule));
    }
    Set<Long> withIncoming = new HashSet<>(), withOutgoing = new HashSet<>();
    for (RawEdge e : kept) {
      withOutgoing.add(e.sourceNode());
      withIncoming.add(e.targetNode());
    }
    List<RawEdge> circuit = new ArrayList<>();
    for (RawEdge e : kept) {
      if (withIncoming.contains(e.sourceNode()) || withOutgoing.contains(e.targetNode())) circuit.add(e);
    }
    circuit.sort(ORDER);
    return circuit;
  }

  private static Map<Integer, List<RawEdge>> bySite(List<RawEdge> raw) {
    Map<Integer, List<RawEdge>> pairs = new TreeMap<>();
    for (RawEdge e : raw) pairs.computeIfAbsent(e.site(), l -> new ArrayList<>()).add(e);
    return pairs;
  }

  /**
   * Step 7's first part on some edges of one pair of sites. The strongest of a pair are among the
   * strongest of any part of it (RANK is a total order), so the graph service marks each task's
   * strongest as candidates while storing it, and Prune prunes the candidates alone: the same
   * circuit as from every raw edge, without reading them all back.
   */
  static List<RawEdge> strongest(TaskEdges pair, Pruning rule) {
    Pruning r = JobRules.pruningOrDefault(rule);
    List<RawEdge> kept = new ArrayList<>();
    if (r.hasThreshold()) {
      for (int i = 0; i < pair.size(); i++) if (Math.abs(pair.weights()[i]) >= r.getThreshold()) kept.add(pair.edge(i));
      return kept;
    }
    // one pass with a heap of the k best so far (its head the worst of them), not a sort of every edge: storing ranks every task's edges
    PriorityQueue<RawEdge> best = new PriorityQueue<>(RANK.reversed());
    for (int i = 0; i < pair.size(); i++) {
      // an edge weaker than the worst kept is passed over before it is made
      if (best.size() == r.getTopK() && Math.abs(pair.weights()[i]) < Math.abs(best.peek().weight())) continue;
      RawEdge e = pair.edge(i);
      if (best.size() < r.getTopK()) {
        best.add(e);
      } else if (RANK.compare(e, best.peek()) < 0) {
        best.poll();
        best.add(e);
      }
    }
    kept.addAll(best);
    kept.sort(RANK);
    return kept;
  }
}
