package resgraph.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import resgraph.cluster.LocalCluster;

/** {@code resgraph down}: stops the local cluster, its supervisor first; its data stays in its folder for the next up. */
@Command(name = "down", mixinStandardHelpOptions = true, description = "Stop the local cluster and its supervisor (its data is kept).")
final class DownCommand implements Callable<Integer> {

  @Mixin ClusterDir dir;

  @Override
  public Integer call() {
    LocalCluster.find(dir.path()).ifPresentOrElse(c -> {
      c.stop();
      System.err.println("resgraph: stopped the local cluster in " + dir.path());
    }, () -> System.err.println("resgraph: no local cluster is running in " + dir.path()));
    return 0;
  }
}
