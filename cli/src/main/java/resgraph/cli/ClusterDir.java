package resgraph.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;
import resgraph.cluster.Launcher;

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
}
