package resgraph.k8s;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Renders a kustomization as {@code kubectl kustomize DIR} does, the way people apply it. The
 * kubectl is the one on the PATH, or {@code -Dresgraph.kubectl=PATH} (to render with another
 * version, such as Debian's 1.20 whose kustomize is v2.0.3). Without a kubectl this fails:
 * .ci/deps installs one.
 */
final class Kustomize {

  private Kustomize() {}

  static String render(Path dir) {
    String kubectl = System.getProperty("resgraph.kubectl", "kubectl");
    Process p;
    try {
      p = new ProcessBuilder(kubectl, "kustomize", dir.toString()).redirectErrorStream(false).start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + kubectl + " (.ci/deps installs kubectl; -Dresgraph.kubectl names another): "
          + e.getMessage(), e);
    }
    try {
      p.getOutputStream().close();
      // stderr is small (kustomize's deprecation warnings); read it after stdout, which can fill a pipe
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(2, TimeUnit.MINUTES)) throw new IllegalStateException(kubectl + " kustomize " + dir + " did not end");
      if (p.exitValue() != 0 || out.isBlank()) {
        throw new IllegalStateException(kubectl + " kustomize " + dir + " failed (exit " + p.exitValue() + "): " + err);
      }
      return out;
    } catch (IOException e) {
      throw new IllegalStateException("cannot read what " + kubectl + " kustomize " + dir + " printed", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted rendering " + dir, e);
    } finally {
      p.destroy();
    }
  }

  /** The k8s/ folder: the module's own folder, where Maven runs its tests. */
  static Path root() {
    Path here = Path.of("").toAbsolutePath();
    Path k8s = Files.isDirectory(here.resolve("overlays")) ? here : here.resolve("k8s");
    if (!Files.isDirectory(k8s.resolve("overlays"))) throw new IllegalStateException("no k8s/overlays under " + here);
    return k8s;
  }
}
