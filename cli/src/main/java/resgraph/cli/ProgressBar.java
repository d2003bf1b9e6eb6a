package resgraph.cli;

import java.io.PrintStream;
import resgraph.v1.Job;
import resgraph.v1.Progress;

/**
 * A job's progress on a terminal line, redrawn in place; where stderr is not a terminal, one line
 * per phase change or tenth of the tasks, so logs stay short.
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
    int total = Math.max(1, p.getTasksTotal());
    int filled = (int) ((long) WIDTH * p.getTasksDone() / total);
    String phase = RunCommand.phaseName(job.getPhase());
    String line = String.format("[%s%s] %d/%d tasks  %,d edges  %s%s", "#".repeat(filled), ".".repeat(WIDTH - filled),
        p.getTasksDone(), p.getTasksTotal(), p.getEdgesWritten(), phase,
        p.hasEtaSeconds() && job.getProgress().getTasksDone() < p.getTasksTotal()
            ? String.format("  ETA %.0f s", p.getEtaSeconds()) : "");
    int tenth = 10 * p.getTasksDone() / total;
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
