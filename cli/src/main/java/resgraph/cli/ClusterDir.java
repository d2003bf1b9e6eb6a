package resgraph.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;

/** Where the long-lived local cluster keeps its data, logs and cluster.json. */
final class ClusterDir {

  @Option(names = "--dir", paramLabel = "DIR",
      description = "The local cluster's folder (default: $RESGRAPH_STATE, else .resgraph in the resgraph folder).")
  Path dir;

  Path path() {
    if (dir != null) return dir.toAbsolutePath();
    String env = System.getenv("RESGRAPH_STATE");
    if (env != null && !env.isBlank()) return Path.of(env).toAbsolutePath();
    return Launcher.home().resolve(".resgraph");
  }

  /** The cluster running here; else IllegalStateException saying to start one, or what else will do ({@code otherwise}). */
  LocalCluster running(String otherwise) {
    return LocalCluster.find(path()).filter(LocalCluster::healthy)
        .orElseThrow(() -> new IllegalStateException("no local cluster is running (start one with ./resgraph up" + otherwise + ")"));
  }
}
