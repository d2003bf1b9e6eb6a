package resgraph.cli;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Faithfulness against the circuit's size, one line per job: the picture of which method's edges pick the better circuit. */
final class FaithfulnessPlot {

  private static final String[] COLOURS = {"#1f6fb4", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#5c940d"};
  private static final int WIDTH = 820, HEIGHT = 400, LEFT = 64, RIGHT = 330, TOP = 36, BOTTOM = 52;

  private FaithfulnessPlot() {}

  /** Each curve's points are (nodes, faithfulness); nodes on a log axis, faithfulness on a linear one that always shows 0 and 1. */
  static String svg(Map<String, List<double[]>> curves) {
    double xMax = 1, yMin = 0, yMax = 1;
    for (List<double[]> points : curves.values()) {
      for (double[] p : points) {
        xMax = Math.max(xMax, p[0]);
        if (Double.isFinite(p[1])) {
          yMin = Math.min(yMin, p[1]);
          yMax = Math.max(yMax, p[1]);
        }
      }
    }
    Axes a = new Axes(Math.ceil(Math.log10(Math.max(10, xMax))), yMin, yMax); // whole decades
    StringBuilder s = new StringBuilder();
    s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n"
        .formatted(WIDTH, HEIGHT));
    s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    s.append("<text x=\"%d\" y=\"20\" font-size=\"14\">Faithfulness of the top-N nodes by each job's edge weights</text>\n".formatted(LEFT));
    for (int decade = 0; decade <= a.logXMax; decade++) {
      double x = a.x(Math.pow(10, decade));
      s.append(line(x, TOP, x, HEIGHT - BOTTOM, "#eee"));
      s.append(text(x, HEIGHT - BOTTOM + 16, "middle", "%d".formatted((long) Math.pow(10, decade))));
    }
    for (double tick = Math.floor(yMin * 4) / 4; tick <= yMax + 1e-9; tick += 0.25) {
      double y = a.y(tick);
      s.append(line(LEFT, y, WIDTH - RIGHT, y, tick == 0 || tick == 1 ? "#bbb" : "#eee"));
      s.append(text(LEFT - 6, y + 4, "end", "%.2f".formatted(tick)));
    }
    s.append(text((LEFT + WIDTH - RIGHT) / 2.0, HEIGHT - 14, "middle", "nodes in the circuit (log scale)"));
    s.append("<text transform=\"translate(16 %d) rotate(-90)\" text-anchor=\"middle\">faithfulness</text>\n"
        .formatted((TOP + HEIGHT - BOTTOM) / 2));
    int k = 0;
    for (Map.Entry<String, List<double[]>> curve : curves.entrySet()) {
      String colour = COLOURS[k % COLOURS.length];
      StringBuilder path = new StringBuilder();
      for (double[] p : curve.getValue()) {
        if (!Double.isFinite(p[1]) || p[0] < 1) continue;
        path.append(path.isEmpty() ? "M" : " L").append(num(a.x(p[0]))).append(' ').append(num(a.y(p[1])));
        s.append("<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n".formatted(num(a.x(p[0])), num(a.y(p[1])), colour));
      }
      s.append("<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n".formatted(path, colour));
      double ly = TOP + 12 + 18 * k;
      s.append(line(WIDTH - RIGHT + 12, ly - 4, WIDTH - RIGHT + 32, ly - 4, colour).replace("stroke-width=\"1\"", "stroke-width=\"3\""));
      s.append(text(WIDTH - RIGHT + 38, ly, "start", curve.getKey()));
      k++;
    }
    return s.append("</svg>\n").toString();
  }

  /** Data to picture coordinates. */
  private record Axes(double logXMax, double yMin, double yMax) {
    double x(double nodes) {
      return LEFT + Math.log10(nodes) / logXMax * (WIDTH - LEFT - RIGHT);
    }

    double y(double value) {
      return HEIGHT - BOTTOM - (value - yMin) / (yMax - yMin) * (HEIGHT - TOP - BOTTOM);
    }
  }

  private static String line(double x1, double y1, double x2, double y2, String colour) {
    return "<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"1\"/>\n".formatted(num(x1), num(y1), num(x2), num(y2),
        colour);
  }

  private static String text(double x, double y, String anchor, String body) {
    String escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    return "<text x=\"%s\" y=\"%s\" text-anchor=\"%s\">%s</text>\n".formatted(num(x), num(y), anchor, escaped);
  }

  private static String num(double v) {
    return String.format(Locale.ROOT, "%.1f", v);
  }
}
