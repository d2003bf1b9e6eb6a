package resgraph.viewer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.Node;
import resgraph.v1.TokenValue;

/**
 * A circuit as Graphviz DOT, drawn as the seed's graphs were: each node a box titled
 * {@code layer.latent}, under it the prompt's tokens shaded white to blue by how strongly the latent
 * fired on each, then a row of the tokens it most promotes (blue) and one of those it most
 * suppresses (red); edges red where ablating the source lowers the target (the source excites it),
 * blue where it raises it, wider for larger |effect|; one rank per layer. Both {@code dot} (for
 * graph.svg) and the browser viewer (through viz.js) lay out this same text.
 */
public final class CircuitDot {

  static final String EXCITES = "#c0392b", INHIBITS = "#2c6fbb";
  private static final int TOKENS_PER_ROW = 8, LOGIT_TOKENS = 5;
  /**
   * A box shows every token of a prompt up to this long; of a longer one, the tokens around where
   * its latent fired most and those just before the target, so that a full context's graph stays
   * a picture (at 880 tokens, all of them made graph.svg 35,000 points wide and 20 MB).
   */
  static final int CONTEXT = 24;
  private static final int PEAK_BEFORE = 11, PEAK_AFTER = 4, BEFORE_TARGET = 7;
  /** The header's prompt shows at most this many tokens, the last ones up to the target. */
  static final int HEADER_TOKENS = 40;

  private CircuitDot() {}

  /** The circuit with a header (for graph.svg, which has no page around it) or without (for the viewer). */
  public static String of(Circuit c, boolean header) {
    Job job = c.getJob();
    List<String> tokens = job.getTokenStringsList();
    StringBuilder d = new StringBuilder();
    d.append("digraph circuit {\n");
    d.append("  graph [rankdir=TB, nodesep=0.25, ranksep=0.55, bgcolor=\"white\", fontname=\"Helvetica\"");
    if (header) d.append(", labelloc=t, label=<").append(header(c)).append('>');
    d.append("];\n");
    d.append("  node [shape=plain, fontname=\"Helvetica\", fontsize=10];\n");
    d.append("  edge [arrowsize=0.6];\n");
    // one rank per site of the chain, in forward order
    List<String> hooks = job.getChainList().stream().map(ChainSite::getHookName).toList();
    Map<Integer, List<Node>> sites = new TreeMap<>(c.getNodesList().stream()
        .collect(Collectors.groupingBy(n -> hooks.indexOf(n.getHookName()))));
    String previous = null;
    for (Map.Entry<Integer, List<Node>> site : sites.entrySet()) {
      String rank = "site" + site.getKey();
      d.append("  { rank=same; ").append(rank).append(" [id=\"").append(rank).append("\", shape=plaintext, fontsize=12, fontcolor=\"#777777\", label=\"")
          .append(siteLabel(job.getChain(site.getKey()))).append("\"];");
      for (Node n : site.getValue()) d.append(' ').append(id(n.getId())).append(';');
      d.append(" }\n");
      // an invisible spine keeps the site labels in order down the left
      if (previous != null) d.append("  ").append(previous).append(" -> ").append(rank).append(" [style=invis];\n");
      previous = rank;
    }
    for (Node n : c.getNodesList()) {
      d.append("  ").append(id(n.getId())).append(" [id=\"").append(id(n.getId())).append("\", tooltip=\"")
          .append(n.getId()).append('"');
      if (!n.getNeuronpedia().isEmpty()) d.append(", URL=\"").append(n.getNeuronpedia()).append("\", target=\"_blank\"");
      d.append(", label=<").append(box(n, tokens, job.getTarget())).append(">];\n");
    }
    double max = c.getEdgesList().stream().mapToDouble(e -> Math.abs(e.getWeight())).max().orElse(1);
    for (Edge e : c.getEdgesList()) {
      double strength = Math.abs(e.getWeight()) / max;
      d.append("  ").append(id(e.getSource())).append(" -> ").append(id(e.getTarget()))
          .append(String.format(Locale.ROOT, " [id=\"%s\", color=\"%s\", penwidth=%.2f, tooltip=\"%s -> %s: %+.4g\"];%n",
              edgeId(e), e.getWeight() < 0 ? EXCITES : INHIBITS, 0.6 + 4.4 * strength, e.getSource(), e.getTarget(),
              e.getWeight()));
    }
    return d.append("}\n").toString();
  }

  /** "layer 5", or "layer 5 mid" and "layer 5 post" beside resid_pre sites. */
  static String siteLabel(ChainSite site) {
    String kind = site.getHookName().substring(site.getHookName().lastIndexOf('_') + 1);
    return "layer " + site.getLayer() + (kind.equals("pre") ? "" : " " + kind);
  }

  /** The DOT and SVG id of a node: "5.10603" becomes "n5_10603". */
  public static String id(String node) {
    return "n" + node.replace('.', '_');
  }

  public static String edgeId(Edge e) {
    return "e" + e.getSource().replace('.', '_') + "__" + e.getTarget().replace('.', '_');
  }

  private static String box(Node n, List<String> tokens, int target) {
    StringBuilder b = new StringBuilder();
    b.append("<TABLE BORDER=\"1\" COLOR=\"#9a9a9a\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"2\" BGCOLOR=\"white\">");
    b.append("<TR><TD ALIGN=\"LEFT\"><B>").append(n.getId()).append("</B></TD></TR>");
    float peak = 0;
    for (float a : n.getActivationsList()) peak = Math.max(peak, a);
    int shownTo = 0; // a gap before a run, or after the last, is drawn as an ellipsis
    for (int[] run : shownRuns(n.getActivationsList(), tokens.size(), target)) {
      if (run[0] > shownTo) elision(b);
      for (int from = run[0]; from < run[1]; from += TOKENS_PER_ROW) {
        b.append("<TR><TD ALIGN=\"LEFT\">").append(ROW_OPEN);
        for (int p = from; p < Math.min(run[1], from + TOKENS_PER_ROW); p++) {
          float a = p < n.getActivationsCount() ? n.getActivations(p) : 0;
          String text = html(token(tokens.get(p)));
          if (p == target) text = "<U>" + text + "</U>";
          b.append("<TD BGCOLOR=\"").append(shade(peak > 0 ? a / peak : 0)).append("\">").append(text).append("</TD>");
        }
        b.append(ROW_CLOSE).append("</TD></TR>");
      }
      shownTo = run[1];
    }
    if (shownTo < tokens.size()) elision(b);
    logitRow(b, n.getPromotesList(), "#dbe9f7", INHIBITS);
    logitRow(b, n.getSuppressesList(), "#f8dcd8", EXCITES);
    return b.append("</TABLE>").toString();
  }

  /**
   * The runs [from, to) of positions a box shows, in order: all of a prompt of at most {@link
   * #CONTEXT} tokens; else the latent's first peak with the tokens before and after it, and the
   * tokens up to the target, as one run where they meet.
   */
  static List<int[]> shownRuns(List<Float> activations, int tokens, int target) {
    if (tokens <= CONTEXT) return List.of(new int[] {0, tokens});
    int peak = 0;
    for (int p = 1; p < activations.size(); p++) if (activations.get(p) > activations.get(peak)) peak = p;
    int[] end = {Math.max(0, target - BEFORE_TARGET), Math.min(tokens, target + 1)};
    if (activations.isEmpty() || activations.get(peak) <= 0) return List.of(end);
    int[] around = {Math.max(0, peak - PEAK_BEFORE), Math.min(tokens, peak + PEAK_AFTER + 1)};
    List<int[]> runs = new ArrayList<>(List.of(around, end));
    runs.sort(Comparator.comparingInt(r -> r[0]));
    int[] first = runs.get(0), second = runs.get(1);
    return second[0] <= first[1] ? List.of(new int[] {first[0], Math.max(first[1], second[1])}) : runs;
  }

  private static void elision(StringBuilder b) {
    b.append("<TR><TD ALIGN=\"LEFT\"><FONT COLOR=\"#777777\">…</FONT></TD></TR>");
  }

  private static final String ROW_OPEN = "<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"1\" CELLPADDING=\"1\"><TR>";
  private static final String ROW_CLOSE = "</TR></TABLE>";

  private static void logitRow(StringBuilder b, List<TokenValue> values, String background, String color) {
    if (values.isEmpty()) return;
    b.append("<TR><TD ALIGN=\"LEFT\">").append(ROW_OPEN);
    for (TokenValue t : values.subList(0, Math.min(LOGIT_TOKENS, values.size()))) {
      b.append("<TD BGCOLOR=\"").append(background).append("\"><FONT COLOR=\"").append(color).append("\">")
          .append(html(token(t.getToken()))).append("</FONT></TD>");
    }
    b.append(ROW_CLOSE).append("</TD></TR>");
  }

  private static String header(Circuit c) {
    Job job = c.getJob();
    StringBuilder prompt = new StringBuilder();
    int from = Math.max(0, job.getTarget() + 1 - HEADER_TOKENS);
    if (from > 0) prompt.append("… ");
    for (int p = from; p <= job.getTarget(); p++) {
      String t = job.getTokenStrings(p);
      if (t.equals("<|endoftext|>")) continue;
      prompt.append(p == job.getTarget() ? "<B><U>" + html(t) + "</U></B>" : html(t));
    }
    String predictions = c.getPredictionsList().stream().limit(3)
        .map(t -> html(token(t.getToken())) + String.format(Locale.ROOT, " %.2g%%", 100 * t.getValue()))
        .collect(Collectors.joining(", "));
    return "<FONT POINT-SIZE=\"13\"><B>" + html(job.getSpec().getRef().getModel()) + "</B> with SAEs <B>"
        + html(job.getSpec().getRef().getSaes()) + "</B></FONT><BR/>" + prompt + "  →  " + predictions + "<BR/>"
        + "<FONT POINT-SIZE=\"10\" COLOR=\"#555555\">" + PruningCaption.of(job) + "; the edges shown carry "
        + String.format(Locale.ROOT, "%.1f%%", 100 * c.getEffectShown()) + " of the total |effect|; red: excites, blue: inhibits<BR/>"
        + html(SaesCaption.of(job)) + "</FONT>";
  }

  /** White to blue as a fraction goes from 0 to 1. */
  static String shade(double f) {
    f = Math.max(0, Math.min(1, f));
    int r = (int) Math.round(255 + f * (33 - 255)), g = (int) Math.round(255 + f * (113 - 255)), b = (int) Math.round(255 + f * (181 - 255));
    return String.format("#%02x%02x%02x", r, g, b);
  }

  /** A token as people read it: spaces and newlines visible, the end-of-text marker short. */
  static String token(String t) {
    if (t.equals("<|endoftext|>")) return "⟨bos⟩";
    return t.replace("\n", "↵").replace(' ', '·');
  }

  /** Text escaped for a Graphviz HTML-like label. */
  static String html(String s) {
    StringBuilder out = new StringBuilder();
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '&' -> out.append("&amp;");
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '"' -> out.append("&quot;");
        case '[', ']' -> out.append("&#").append((int) ch).append(';');
        default -> {
          if (ch < 0x20) out.append(' ');
          else out.append(ch);
        }
      }
    }
    return out.toString();
  }
}
