package resgraph.cli;

import java.io.PrintStream;
import java.util.Locale;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusProgress;
import resgraph.v1.Job;
import resgraph.v1.Progress;

/**
 * A job's or a corpus's progress on a terminal line, redrawn in place; where stderr is not a
 * terminal, one line per phase change or tenth of the tasks (prompts), so logs stay short.
 */
final class ProgressBar {

  private static final int WIDTH = 30;

  private final PrintStream out;
  private final boolean terminal = System.console() != null;
  private String lastPhase = "";
  private int lastTenth = -1;

  ProgressBar(PrintStream out) {
    this.out = out;
  }

  void show(Job job) {
    Progress p = job.getProgress();
    draw(p.getTasksDone(), p.getTasksTotal(), "tasks", String.format(Locale.ROOT, "%,d edges", p.getEdgesWritten()),
        RunCommand.phaseName(job.getPhase()), p.hasEtaSeconds() && p.getTasksDone() < p.getTasksTotal() ? p.getEtaSeconds() : null);
  }

  /** A corpus: prompts ended of all, edges and their rate over every prompt's job. */
  void show(CorpusJob corpus) {
    CorpusProgress p = corpus.getProgress();
    int ended = p.getPromptsDone() + p.getPromptsFailed();
    draw(ended, p.getPromptsTotal(), "prompts", String.format(Locale.ROOT, "%,d edges  %,.0f edges/s%s", p.getEdgesWritten(),
        p.getEdgesPerSecond(), p.getPromptsFailed() > 0 ? "  " + p.getPromptsFailed() + " failed" : ""),
        RunCommand.phaseName(corpus.getPhase()), p.hasEtaSeconds() ? p.getEtaSeconds() : null);
  }

  private void draw(int done, int total, String unit, String figures, String phase, Double eta) {
    int filled = (int) ((long) WIDTH * done / Math.max(1, total));
    String line = String.format(Locale.ROOT, "[%s%s] %d/%d %s  %s  %s%s", "#".repeat(filled), ".".repeat(WIDTH - filled), done, total,
        unit, figures, phase, eta != null ? String.format(Locale.ROOT, "  ETA %.0f s", eta) : "");
    int tenth = 10 * done / Math.max(1, total);
    if (terminal) {
      out.print("\r" + line + "   ");
    } else if (!phase.equals(lastPhase) || tenth != lastTenth) {
      out.println(line);
    }
    lastPhase = phase;
    lastTenth = tenth;
    out.flush();
  }

  void done() {
    if (terminal) out.println();
  }
}
