package resgraph.graph;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Comparison.scatter_svg: job A's weight (x) against job B's (y) for every edge of their union,
 * one panel per pair of adjacent sites, with the diagonal y = x on which agreeing edges lie.
 *
 * <p>Edge weights span many decades, most of them tiny, so both axes are symmetric-log:
 * {@code t(w) = sign(w)·log10(1 + |w|/c)}, linear within about c of 0 and logarithmic beyond. c is
 * a thousandth of the panel's largest |w|, which spreads the three decades below it out and
 * gathers anything smaller at 0; ticks are powers of ten, labelled in real units.
 */
final class ComparisonScatter {

  /** One pair's edges: {@code a[i]} and {@code b[i]} are one edge's weights (0 in a graph that lacks it). */
  record Panel(String title, double pearson, double[] a, double[] b) {}

  /** How an edge's two weights relate, drawn in this order so the disagreements lie on top. */
  private enum Kind {
    SAME_SIGN("#4c72b0", "same sign in both"),
    ONE_ONLY("#e69f00", "in one graph only"),
    OPPOSITE("#d62728", "opposite signs");

    final String colour;
    final String label;

    Kind(String colour, String label) {
      this.colour = colour;
      this.label = label;
    }

    static Kind of(double a, double b) {
      if (a == 0 || b == 0) return ONE_ONLY;
      return Math.signum(a) == Math.signum(b) ? SAME_SIGN : OPPOSITE;
    }
  }

  private static final int SIZE = 240;
  private static final int LEFT = 56, TOP = 30, BOTTOM = 40, GAP = 24;
  private static final int PANEL_WIDTH = LEFT + SIZE + GAP, PANEL_HEIGHT = TOP + SIZE + BOTTOM;
  private static final int COLUMNS = 3;
  private static final int LEGEND = 64;
  /** c as a share of the largest |w|: three decades shown logarithmically. */
  private static final double LINEAR_SHARE = 1e-3;

  private ComparisonScatter() {}

  /** An SVG document; {@code xLabel} and {@code yLabel} say which job each axis is. */
  static String svg(List<Panel> panels, String xLabel, String yLabel) {
    int columns = Math.max(1, Math.min(COLUMNS, panels.size()));
    int rows = (panels.size() + columns - 1) / columns;
    int width = Math.max(columns * PANEL_WIDTH, 520), height = LEGEND + rows * PANEL_HEIGHT;
    StringBuilder s = new StringBuilder();
    s.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
        + "font-family=\"sans-serif\" font-size=\"11\">\n", width, height, width, height));
    s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    legend(s, xLabel, yLabel);
    for (int i = 0; i < panels.size(); i++) {
      s.append(String.format(Locale.ROOT, "<g class=\"panel\" transform=\"translate(%d,%d)\">\n",
          (i % columns) * PANEL_WIDTH + LEFT, LEGEND + (i / columns) * PANEL_HEIGHT + TOP));
      panel(s, panels.get(i));
      s.append("</g>\n");
    }
    return s.append("</svg>\n").toString();
  }

  private static void legend(StringBuilder s, String xLabel, String yLabel) {
    s.append("<text x=\"8\" y=\"16\">x: ").append(escape(xLabel)).append("</text>\n");
    s.append("<text x=\"8\" y=\"32\">y: ").append(escape(yLabel)).append("</text>\n");
    int x = 8;
    for (Kind k : Kind.values()) {
      s.append(String.format(Locale.ROOT, "<circle cx=\"%d\" cy=\"48\" r=\"4\" fill=\"%s\"/>", x + 4, k.colour));
      s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"52\">%s</text>\n", x + 12, k.label));
      x += 150;
    }
  }

  private static void panel(StringBuilder s, Panel p) {
    String r = Double.isNaN(p.pearson()) ? "n/a" : String.format(Locale.ROOT, "%.3f", p.pearson());
    s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"-10\" text-anchor=\"middle\" font-weight=\"bold\">%s · r = %s · %,d edges</text>\n",
        SIZE / 2, escape(p.title()), r, p.a().length));
    s.append(String.format(Locale.ROOT, "<rect width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", SIZE, SIZE));
    double largest = 0;
    for (int i = 0; i < p.a().length; i++) largest = Math.max(largest, Math.max(Math.abs(p.a()[i]), Math.abs(p.b()[i])));
    if (largest == 0) {
      s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666\">no edges</text>\n", SIZE / 2, SIZE / 2));
      return;
    }
    Axis axis = new Axis(largest * LINEAR_SHARE, largest);
    for (double tick : axis.ticks()) {
      double at = axis.pixel(tick), flipped = SIZE - at;
      s.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\" stroke=\"#eee\"/>"
          + "<line x1=\"0\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n", at, at, SIZE, flipped, SIZE, flipped));
      s.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\">%s</text>"
          + "<text x=\"-4\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\" font-size=\"9\">%s</text>\n",
          at, SIZE + 14, label(tick), flipped, label(tick)));
    }
    s.append(String.format(Locale.ROOT, "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"0\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n", SIZE, SIZE));
    s.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">A</text>", SIZE / 2, SIZE + 32));
    s.append(String.format(Locale.ROOT, "<text x=\"-44\" y=\"%d\" text-anchor=\"middle\">B</text>\n", SIZE / 2));
    for (Kind k : Kind.values()) points(s, p, axis, k);
  }

  /**
   * The edges of one kind, one dot per pixel they fall on: a job has hundreds of thousands of
   * edges, and dots drawn on top of each other would only make the file larger.
   */
  private static void points(StringBuilder s, Panel p, Axis axis, Kind kind) {
    Set<Long> drawn = new HashSet<>();
    List<String> dots = new ArrayList<>();
    for (int i = 0; i < p.a().length; i++) {
      if (Kind.of(p.a()[i], p.b()[i]) != kind) continue;
      long x = Math.round(axis.pixel(p.a()[i])), y = Math.round(SIZE - axis.pixel(p.b()[i]));
      if (drawn.add(x * (SIZE + 1) + y)) dots.add("<circle cx=\"" + x + "\" cy=\"" + y + "\" r=\"2\"/>");
    }
    if (dots.isEmpty()) return;
    s.append("<g fill=\"").append(kind.colour).append("\" fill-opacity=\"0.7\">");
    dots.forEach(s::append);
    s.append("</g>\n");
  }

  /** The symmetric-log scale of a panel: weights in [-largest, largest] onto pixels [0, SIZE]. */
  private record Axis(double c, double largest) {

    double t(double w) {
      return Math.signum(w) * Math.log10(1 + Math.abs(w) / c);
    }

    double pixel(double w) {
      double end = t(largest);
      return (t(w) + end) / (2 * end) * SIZE;
    }

    /** 0 and ± the powers of ten from ten times c up to the largest |w|: any closer to 0 and their labels would overlap its. */
    List<Double> ticks() {
      List<Double> ticks = new ArrayList<>(List.of(0.0));
      for (int e = (int) Math.ceil(Math.log10(c * 10)); e <= Math.floor(Math.log10(largest)); e++) {
        ticks.add(Math.pow(10, e));
        ticks.add(-Math.pow(10, e));
      }
      return ticks;
    }
  }

  /** A power of ten in plain digits where they are short ("0.01", "100"), else "1e-5". */
  private static String label(double tick) {
    if (tick == 0) return "0";
    int e = (int) Math.round(Math.log10(Math.abs(tick)));
    String magnitude = Math.abs(e) <= 3 ? BigDecimal.ONE.scaleByPowerOfTen(e).toPlainString() : "1e" + e;
    return (tick < 0 ? "-" : "") + magnitude;
  }

  private static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
