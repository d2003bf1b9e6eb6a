package resgraph.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.ClientCredentials;

/** Where the long-lived local cluster keeps its data, logs and cluster.json. */
final class ClusterDir {

  @Option(names = "--dir", paramLabel = "DIR",
      description = "The local cluster's folder (default: $RESGRAPH_STATE, else .resgraph in the resgraph folder).")
  Path dir;

  @Option(names = "--credentials", paramLabel = "DIR",
      description = "The folder holding the cluster's ca.crt and token for its gRPC services (default: $RESGRAPH_CREDENTIALS, else the local cluster's credentials/).")
  Path credentials;

  Path path() {
    if (dir != null) return dir.toAbsolutePath();
    String env = System.getenv("RESGRAPH_STATE");
    if (env != null && !env.isBlank()) return Path.of(env).toAbsolutePath();
    return Launcher.home().resolve(".resgraph");
  }

  /** What this command shows the cluster's gRPC services: TLS trusting its ca.crt, and its token. */
  ClientCredentials credentials() {
    Path given = credentialsFolder(credentials);
    if (given != null) return ClientCredentials.fromFolder(given);
    Path local = path().resolve("credentials");
    if (!Files.isDirectory(local)) {
      throw new IllegalStateException("no credentials for the cluster: give --credentials DIR (its ca.crt and token) or set RESGRAPH_CREDENTIALS");
    }
    return ClientCredentials.fromFolder(local);
  }

  /** The credentials folder a command was given: {@code option}, else $RESGRAPH_CREDENTIALS, else null. */
  static Path credentialsFolder(Path option) {
    if (option != null) return option;
    String env = System.getenv("RESGRAPH_CREDENTIALS");
    return env != null && !env.isBlank() ? Path.of(env) : null;
  }

  /** What a command shows a cluster it started itself. */
  static ClientCredentials credentials(LocalCluster cluster) {
    return ClientCredentials.fromFolder(cluster.credentials());
  }

  /** The cluster running here; else IllegalStateException saying to start one, or what else will do ({@code otherwise}). */
  LocalCluster running(String otherwise) {
    return LocalCluster.find(path()).filter(LocalCluster::healthy)
        .orElseThrow(() -> new IllegalStateException("no local cluster is running (start one with ./resgraph up" + otherwise + ")"));
  }
}
