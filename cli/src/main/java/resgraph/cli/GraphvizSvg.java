package resgraph.cli;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * graph.svg from graph.dot (and corpus.svg from corpus.dot) with Graphviz's {@code dot}, which users install themselves: without
 * it, one line says how to get it, and every other file is still written.
 */
final class GraphvizSvg {

  private GraphvizSvg() {}

  /** Whether the SVG was drawn; a reason is printed on stderr when it was not. */
  static boolean draw(Path dot, Path svg) throws InterruptedException {
    String no = "resgraph: no " + svg.getFileName() + ": ";
    Process p;
    try {
      p = new ProcessBuilder("dot", "-Tsvg", "-o", svg.toString(), dot.toString()).redirectErrorStream(true).start();
    } catch (IOException e) {
      System.err.println(no + "Graphviz's dot is not installed (Debian/Ubuntu: sudo apt-get install graphviz;"
          + " macOS: brew install graphviz); graph.html shows the same drawing");
      return false;
    }
    String messages;
    try {
      messages = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    } catch (IOException e) {
      messages = e.getMessage();
    }
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      System.err.println(no + "dot took longer than two minutes");
      return false;
    }
    if (p.exitValue() != 0) {
      System.err.println(no + "dot failed: " + messages.lines().findFirst().orElse("exit " + p.exitValue()));
      return false;
    }
    return true;
  }
}
