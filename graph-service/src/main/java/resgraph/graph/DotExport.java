package resgraph.graph;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.Node;

/**
 * graph.dot: the pruned circuit for Graphviz. One rank per layer, lowest at the bottom; a box per
 * node titled layer.latent; an edge red when its weight is negative (ablating the source lowers
 * the target: the source excites it), blue when positive, thicker the larger |weight|. The graph's
 * label shows the prompt's tokens and the target.
 */
final class DotExport {

  private static final double MIN_PEN = 1, MAX_PEN = 6;

  private DotExport() {}

  static byte[] render(Circuit circuit) {
    Job job = circuit.getJob();
    StringBuilder dot = new StringBuilder();
    dot.append("digraph circuit {\n");
    dot.append("  rankdir=BT;\n");
    dot.append("  labelloc=t;\n");
    dot.append("  label=").append(quote(title(job))).append(";\n");
    dot.append("  node [shape=box, fontname=\"Helvetica\"];\n");
    Map<Integer, List<Node>> layers = new TreeMap<>(circuit.getNodesList().stream()
        .collect(Collectors.groupingBy(Node::getLayer)));
    layers.forEach((layer, nodes) -> {
      dot.append("  subgraph layer_").append(layer).append(" {\n    rank=same;\n");
      for (Node n : nodes) dot.append("    ").append(quote(n.getId())).append(" [label=").append(quote(n.getId())).append("];\n");
      dot.append("  }\n");
    });
    double max = circuit.getEdgesList().stream().mapToDouble(e -> Math.abs(e.getWeight())).max().orElse(1);
    for (Edge e : circuit.getEdgesList()) {
      double pen = MIN_PEN + (MAX_PEN - MIN_PEN) * Math.abs(e.getWeight()) / max;
      dot.append("  ").append(quote(e.getSource())).append(" -> ").append(quote(e.getTarget()))
          .append(" [color=").append(e.getWeight() < 0 ? "red" : "blue")
          .append(", penwidth=").append(String.format(Locale.ROOT, "%.2f", pen))
          .append(", tooltip=").append(quote(String.format(Locale.ROOT, "%s -> %s: %g", e.getSource(), e.getTarget(), e.getWeight())))
          .append("];\n");
    }
    dot.append("}\n");
    return dot.toString().getBytes(StandardCharsets.UTF_8);
  }

  /** "job: tok|tok|...", then "target 7 (tok)": tokens separated by | so their own spaces stay visible. */
  private static String title(Job job) {
    List<String> tokens = job.getTokenStringsList().stream().map(DotExport::visible).toList();
    String target = job.getTarget() < tokens.size() ? tokens.get(job.getTarget()) : "?";
    return job.getId() + ": " + String.join("|", tokens) + "\ntarget " + job.getTarget() + " (" + target + ")";
  }

  /** A token as text to show: its control characters written as escapes (a newline token shows as \n). */
  static String visible(String token) {
    StringBuilder out = new StringBuilder();
    token.chars().forEach(c -> {
      switch (c) {
        case '\n' -> out.append("\\n");
        case '\t' -> out.append("\\t");
        case '\r' -> out.append("\\r");
        default -> {
          if (Character.isISOControl(c)) out.append(String.format(Locale.ROOT, "\\x%02x", c));
          else out.append((char) c);
        }
      }
    });
    return out.toString();
  }

  /**
   * A DOT double-quoted string of {@code text}. Graphviz reads backslash escapes inside it (\n,
   * \l, \N...), so every backslash and quote of the text is escaped; a newline becomes a line
   * break.
   */
  static String quote(String text) {
    StringBuilder q = new StringBuilder("\"");
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> q.append("\\\"");
        case '\\' -> q.append("\\\\");
        case '\n' -> q.append("\\n");
        case '\r' -> { } // a line break is \n alone
        default -> q.append(c);
      }
    }
    return q.append('"').toString();
  }
}
