package resgraph.cli;

import java.util.List;
import java.util.stream.Collectors;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Node;
import resgraph.v1.TokenValue;

/** A circuit as text for the terminal: what it is, its edges by pair of sites, then its nodes. */
final class CircuitReport {

  private CircuitReport() {}

  static String text(Circuit c) {
    StringBuilder s = new StringBuilder();
    List<String> tokens = c.getJob().getTokenStringsList();
    s.append(String.format("%s with SAEs %s, target position %d (%s)%n", c.getJob().getSpec().getRef().getModel(),
        c.getJob().getSpec().getRef().getSaes(), c.getJob().getTarget(), quote(tokens.get(c.getJob().getTarget()))));
    s.append("prompt: ").append(tokens.stream().map(CircuitReport::quote).collect(Collectors.joining(" "))).append('\n');
    s.append("predicts: ").append(c.getPredictionsList().stream().limit(5)
        .map(t -> quote(t.getToken()) + String.format(" %.3f", t.getValue())).collect(Collectors.joining(", "))).append('\n');
    s.append(String.format("circuit: %d nodes, %d edges, of %,d raw edges (%.1f%% of the total |effect|)%n",
        c.getNodesCount(), c.getEdgesCount(), c.getRawEdgeCount(), 100 * c.getEffectShown()));
    String pair = "";
    for (Edge e : c.getEdgesList()) {
      // the node ids' prefixes name the sites: "5" (a layer, in a chain of one kind of site), or "5m", "5p"
      String from = e.getSource().substring(0, e.getSource().indexOf('.')), to = e.getTarget().substring(0, e.getTarget().indexOf('.'));
      if (!from.equals(pair)) {
        s.append(String.format("%n%s -> %s%n", from.matches("\\d+") ? "layer " + from : from, to));
        pair = from;
      }
      // negative: ablating the source lowers the target, so the source excites it
      s.append(String.format("  %-9s -> %-9s %+.4f  %s%n", e.getSource(), e.getTarget(), e.getWeight(),
          e.getWeight() < 0 ? "excites" : "inhibits"));
    }
    s.append("\nnodes\n");
    for (Node n : c.getNodesList()) {
      int peak = 0;
      for (int p = 1; p < n.getActivationsCount(); p++) if (n.getActivations(p) > n.getActivations(peak)) peak = p;
      float value = n.getActivationsCount() > 0 ? n.getActivations(peak) : 0f;
      // a latent off everywhere is in the circuit because ablating an upstream latent switches it on
      String fires = value > 0 ? String.format("fires most on %s (%.3f)", quote(tokens.get(peak)), value)
          : "off in the clean run (an ablation switches it on)";
      s.append(String.format("  %-9s %s; promotes %s; suppresses %s%s%n", n.getId(), fires, top(n.getPromotesList()),
          top(n.getSuppressesList()), n.getNeuronpedia().isEmpty() ? "" : "  " + n.getNeuronpedia()));
    }
    return s.toString();
  }

  private static String top(List<TokenValue> values) {
    return values.isEmpty() ? "-" : values.stream().limit(3).map(t -> quote(t.getToken())).collect(Collectors.joining(" "));
  }

  private static String quote(String token) {
    return "\"" + token.replace("\n", "\\n") + "\"";
  }
}
