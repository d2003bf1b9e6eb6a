package resgraph.cli;

import java.io.PrintStream;
import java.util.Locale;
import resgraph.modelserver.HubClient;

/**
 * A download's progress on a terminal line, redrawn in place at most ten times a second; where
 * stderr is not a terminal, a line per tenth of the file. Called from the downloading thread.
 */
final class DownloadBar implements HubClient.Progress {

  private static final int WIDTH = 30;
  private static final long REDRAW_NANOS = 100_000_000;

  private final PrintStream out;
  private final boolean terminal = System.console() != null;
  private String url = "";
  private long started, lastDrawn;
  private long lastTenth = -1;

  DownloadBar(PrintStream out) {
    this.out = out;
  }

  @Override
  public synchronized void update(String url, long done, long total) {
    long now = System.nanoTime();
    if (!url.equals(this.url)) {
      this.url = url;
      started = now;
      lastTenth = -1;
    }
    boolean finished = total >= 0 && done >= total;
    long tenth = total > 0 ? 10 * done / total : done >> 24;
    if (terminal ? !finished && now - lastDrawn < REDRAW_NANOS : tenth == lastTenth && !finished) return;
    lastDrawn = now;
    lastTenth = tenth;
    String name = java.net.URI.create(url).getPath().substring(1).replaceFirst("/resolve/[^/]+/", " "); // "acme/gpt2 model.safetensors"
    double seconds = Math.max(1e-3, (now - started) / 1e9);
    String line = total > 0
        ? String.format(Locale.ROOT, "downloading %s [%s%s] %3d%% %.1f/%.1f MB %.1f MB/s", name,
            "#".repeat((int) (WIDTH * done / total)), ".".repeat(WIDTH - (int) (WIDTH * done / total)), 100 * done / total,
            done / 1e6, total / 1e6, done / 1e6 / seconds)
        : String.format(Locale.ROOT, "downloading %s %.1f MB %.1f MB/s", name, done / 1e6, done / 1e6 / seconds);
    if (terminal) out.print("\r" + line + (finished ? "\n" : "   "));
    else out.println(line);
    out.flush();
  }
}
