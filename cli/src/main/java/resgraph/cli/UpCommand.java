package resgraph.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import resgraph.cluster.LocalCluster;

/**
 * {@code resgraph up}: a local cluster that stays running for runs and Cypher queries, with a
 * supervisor that restarts a component that ends.
 */
@Command(name = "up", mixinStandardHelpOptions = true,
    description = "Start a local cluster (Kafka, Neo4j, model server, workers, graph service, orchestrator) that keeps running; "
        + "a supervisor restarts a component that ends (see status).")
final class UpCommand implements Callable<Integer> {

  @Mixin ClusterDir dir;

  @Option(names = "--workers", defaultValue = "2", description = "Ablation workers (default: ${DEFAULT-VALUE}).")
  int workers;

  /** The pair the model server loads at start. */
  @Mixin ModelOptions model;

  @Override
  public Integer call() {
    LocalCluster running = LocalCluster.find(dir.path()).filter(LocalCluster::healthy).orElse(null);
    if (running != null) {
      System.err.println("resgraph: a local cluster is already running in " + dir.path());
    } else {
      LocalCluster.find(dir.path()).ifPresent(LocalCluster::stop); // what is left of a broken one
      Downloads.prefetch(model);
      running = LocalCluster.start(dir.path(), model.cluster(workers), msg -> System.err.println("resgraph: " + msg));
    }
    if (!running.supervised()) {
      System.err.println("resgraph: starting the supervisor, which restarts a component that ends");
      running.supervise();
    }
    StatusCommand.print(running, false);
    return 0;
  }
}
