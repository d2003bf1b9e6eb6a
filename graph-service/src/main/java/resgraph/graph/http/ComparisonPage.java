package resgraph.graph.http;

import java.util.List;
import java.util.Locale;
import resgraph.graph.StoredJob;
import resgraph.v1.Agreement;
import resgraph.v1.Comparison;

/**
 * The circuit browser's {@code /compare}: a form to pick two finished jobs of one prompt, and
 * their Comparison as a table and the scatter.
 */
final class ComparisonPage {

  private static final String STYLE = """
      body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
      nav a { margin-right: 12px; }
      table { border-collapse: collapse; margin: 12px 0; font-variant-numeric: tabular-nums; }
      th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: right; }
      th:first-child, td:first-child { text-align: left; }
      tr.overall td { font-weight: bold; }
      select { max-width: 40em; }""";

  private ComparisonPage() {}

  /**
   * The page for jobs {@code a} and {@code b} (either may be null: not picked yet) and their
   * comparison, or null before both are picked. {@code finished} are the jobs the form offers,
   * those of a's prompt for b once a is picked.
   */
  static String html(List<StoredJob> finished, StoredJob a, StoredJob b, Comparison comparison) {
    StringBuilder h = new StringBuilder("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>resgraph · compare</title>")
        .append("<style>").append(STYLE).append("</style></head><body>")
        .append("<nav><a href=\"/jobs\">all jobs</a><a href=\"/cypher\">Cypher</a></nav>")
        .append("<h1>Compare two graphs of one prompt</h1>")
        .append("<form method=\"get\" action=\"/compare\">")
        .append(select("a", "A, the reference", finished, a))
        .append(select("b", "B, scored against it", a == null ? finished
            : finished.stream().filter(j -> j.prompt().equals(a.prompt())).toList(), b))
        .append(" <button type=\"submit\">compare</button></form>");
    if (comparison != null) {
      h.append("<p>wall time of B over A: ").append(number(comparison.getWallTimeRatio())).append("</p>");
      table(h, comparison);
      h.append(comparison.getScatterSvg());
    }
    return h.append("</body></html>").toString();
  }

  private static String select(String name, String label, List<StoredJob> jobs, StoredJob chosen) {
    StringBuilder s = new StringBuilder("<p><label>").append(label).append(" <select name=\"").append(name).append("\">");
    for (StoredJob j : jobs) {
      boolean selected = chosen != null && chosen.id().equals(j.id());
      s.append("<option value=\"").append(escape(j.id())).append(selected ? "\" selected>" : "\">")
          .append(escape(j.id() + " · " + j.method() + " · " + j.prompt())).append("</option>");
    }
    return s.append("</select></label></p>").toString();
  }

  private static void table(StringBuilder h, Comparison c) {
    h.append("<table><thead><tr><th>pair</th><th>edges A</th><th>edges B</th><th>union</th><th>Pearson</th><th>Spearman</th>")
        .append("<th>shared</th><th>same sign</th><th>top-k recall</th><th>circuit edges J</th><th>circuit nodes J</th>")
        .append("<th>switched on</th></tr></thead><tbody>");
    for (Agreement pair : c.getPairsList()) row(h, "", escape(pair.getSourceHook() + " \u2192 " + pair.getTargetHook()), pair);
    row(h, " class=\"overall\"", "overall", c.getOverall());
    h.append("</tbody></table>");
  }

  private static void row(StringBuilder h, String attributes, String name, Agreement g) {
    h.append("<tr").append(attributes).append("><td>").append(name).append("</td>");
    for (long n : new long[] {g.getEdgesA(), g.getEdgesB(), g.getEdgesUnion()}) h.append("<td>").append(String.format(Locale.ROOT, "%,d", n)).append("</td>");
    h.append("<td>").append(number(g.getPearson())).append("</td><td>").append(number(g.getSpearman())).append("</td>")
        .append("<td>").append(String.format(Locale.ROOT, "%,d", g.getSharedEdges())).append("</td>");
    for (double v : new double[] {g.getSignAgreement(), g.getTopKRecall(), g.getCircuitEdgeJaccard(), g.getCircuitNodeJaccard(),
        g.getSwitchedOnShare()}) {
      h.append("<td>").append(number(v)).append("</td>");
    }
    h.append("</tr>");
  }

  /** Three decimals; a measure with nothing to measure (NaN) as a dash. */
  private static String number(double v) {
    return Double.isNaN(v) ? "\u2013" : String.format(Locale.ROOT, "%.3f", v);
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
