package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import resgraph.v1.Pruning;

/** METHOD.md step 7 on hand-made edge sets with known answers, and against ReferencePruning on random ones. */
class CircuitPrunerTest {

  private static RawEdge e(int layer, int source, int target, float weight) {
    return new RawEdge(layer, source, target, weight);
  }

  private static Pruning topK(int k) {
    return Pruning.newBuilder().setTopK(k).build();
  }

  private static Pruning threshold(double t) {
    return Pruning.newBuilder().setThreshold(t).build();
  }

  /**
   * Layer 0->1: 0.1->1.5 (-3) and 0.2->1.5 (+3) tie on |e|, 0.3->1.6 (1). Layer 1->2: 1.9->2.9 (5),
   * 1.5->2.7 (2), 1.6->2.8 (0.5).
   */
  private static final List<RawEdge> SMALL = List.of(
      e(0, 1, 5, -3), e(0, 2, 5, 3), e(0, 3, 6, 1),
      e(1, 9, 9, 5), e(1, 5, 7, 2), e(1, 6, 8, 0.5f));

  @Test
  void topKKeepsTheStrongestPerLayerPairThenOnlyPaths() {
    // top 2: {0.1->1.5, 0.2->1.5} and {1.9->2.9, 1.5->2.7}; 1.9->2.9 touches nothing else kept
    assertEquals(List.of(e(0, 1, 5, -3), e(0, 2, 5, 3), e(1, 5, 7, 2)), CircuitPruner.prune(SMALL, topK(2)));
  }

  @Test
  void tiesOnMagnitudeGoToTheLowerSourceThenTheLowerTarget() {
    List<RawEdge> raw = List.of(
        e(0, 2, 5, 3), e(0, 1, 5, -3), // same |e|: source 1 wins
        e(1, 5, 8, -4), e(1, 5, 7, 4)); // same |e| and source: target 7 wins
    assertEquals(List.of(e(0, 1, 5, -3), e(1, 5, 7, 4)), CircuitPruner.prune(raw, topK(1)));
    List<RawEdge> shuffled = new ArrayList<>(raw);
    Collections.reverse(shuffled);
    assertEquals(CircuitPruner.prune(raw, topK(1)), CircuitPruner.prune(shuffled, topK(1)));
  }

  @Test
  void thresholdIsInclusiveAndAppliesToMagnitude() {
    // |e| >= 2: 0.1->1.5, 0.2->1.5, 1.9->2.9, 1.5->2.7 (exactly 2); then the path rule drops 1.9->2.9
    assertEquals(List.of(e(0, 1, 5, -3), e(0, 2, 5, 3), e(1, 5, 7, 2)), CircuitPruner.prune(SMALL, threshold(2)));
    assertEquals(List.of(), CircuitPruner.prune(SMALL, threshold(5.5)));
  }

  @Test
  void anEdgeStaysIfItsSourceHasAnIncomingOrItsTargetAnOutgoingEdge() {
    List<RawEdge> raw = List.of(
        e(0, 1, 2, 1), e(1, 2, 3, 1), e(2, 3, 4, 1), // a chain of three: all stay
        e(0, 7, 7, 1), // isolated
        e(1, 8, 8, 1), e(1, 9, 8, 1), // two edges into 2.8, but none into 1.8 or 1.9 and none out of 2.8
        e(2, 4, 5, 1)); // 2.4 has no incoming edge (the chain reaches 2.3)
    assertEquals(List.of(e(0, 1, 2, 1), e(1, 2, 3, 1), e(2, 3, 4, 1)), CircuitPruner.prune(raw, threshold(0)));
  }

  @Test
  void unsetRuleMeansTopTen() {
    List<RawEdge> raw = new ArrayList<>();
    for (int i = 0; i < 15; i++) {
      raw.add(e(0, i, 0, i + 1));
      raw.add(e(1, 0, i, i + 1));
    }
    List<RawEdge> circuit = CircuitPruner.prune(raw, Pruning.getDefaultInstance());
    assertEquals(List.of(), circuit.stream().filter(x -> Math.abs(x.weight()) <= 5).toList());
    // 1.0 has incoming edges, so node 1.0's outgoing ones stay; the top ten of each pair are kept
    assertEquals(20, circuit.size());
  }

  @Test
  void agreesWithTheDefinitionOnRandomGraphs() {
    Random random = new Random(42);
    for (int round = 0; round < 200; round++) {
      List<RawEdge> raw = new ArrayList<>();
      Set<String> seen = new HashSet<>();
      int layers = 1 + random.nextInt(4), width = 2 + random.nextInt(12), edges = random.nextInt(80);
      for (int i = 0; i < edges; i++) {
        int layer = random.nextInt(layers), s = random.nextInt(width), t = random.nextInt(width);
        if (!seen.add(layer + "." + s + ">" + t)) continue;
        // few distinct magnitudes, so ties are common
        float w = (random.nextInt(7) - 3) * 0.5f;
        if (w != 0) raw.add(e(layer, s, t, w));
      }
      Pruning rule = random.nextBoolean() ? topK(1 + random.nextInt(8)) : threshold(random.nextInt(4) * 0.5);
      List<RawEdge> circuit = CircuitPruner.prune(raw, rule);
      assertEquals(ReferencePruning.circuit(raw, rule), new HashSet<>(circuit), "round " + round + ", " + rule);
      List<RawEdge> sorted = new ArrayList<>(circuit);
      sorted.sort(CircuitPruner.ORDER);
      assertEquals(sorted, circuit, "circuit order");
    }
  }
}
