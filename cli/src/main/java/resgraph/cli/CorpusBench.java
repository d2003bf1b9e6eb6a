package resgraph.cli;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusPrompt;
import resgraph.v1.CorpusSpec;
import resgraph.v1.DescribeRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;

/**
 * Corpora through the local cluster: one timed from SubmitCorpus to its end, and README's three
 * Cypher recipes timed over a stored corpus, through the graph service's Query as a user sends them.
 */
final class CorpusBench {

  /** A corpus run: its prompts, how many finished, its raw edges, and its wall time. */
  record Run(int prompts, int done, long edges, double seconds) {
    double promptsPerMinute() {
      return 60 * done / seconds;
    }
  }

  /** Each recipe's latencies, in ms, over the stored corpus of {@code prompts}. */
  record Queries(int prompts, Map<String, double[]> millis) {
    /** The 95th percentile of a recipe's latencies, by nearest rank. */
    static double p95(double[] ms) {
      double[] sorted = ms.clone();
      Arrays.sort(sorted);
      return sorted[(int) Math.ceil(0.95 * sorted.length) - 1];
    }
  }

  /** Times per recipe: enough for a 95th percentile that is not the maximum of a handful. */
  private static final int QUERY_REPEATS = 40;

  private CorpusBench() {}

  /** Runs the prompts as one corpus on the running cluster and waits for it to end. */
  static Run run(LocalCluster cluster, ModelRef ref, List<String> prompts, int taskSize, Consumer<String> say)
      throws InterruptedException {
    ManagedChannel channel = GrpcChannels.open(cluster.endpoints().orchestrator(), ClusterDir.credentials(cluster));
    try {
      JobServiceGrpc.JobServiceBlockingStub jobs = JobServiceGrpc.newBlockingStub(channel);
      CorpusSpec.Builder spec = CorpusSpec.newBuilder().setJob(JobSpec.newBuilder()
          .setRef(ref).setTaskBatchSize(taskSize));
      prompts.forEach(p -> spec.addPrompts(CorpusPrompt.newBuilder().setPrompt(p)));
      long start = System.nanoTime();
      CorpusJob c = CorpusRun.submitAndFollow(jobs, spec.build());
      double seconds = (System.nanoTime() - start) / 1e9;
      if (c.getPhase() != Phase.PHASE_DONE) throw new IllegalStateException("the benchmark corpus ended " + c.getPhase() + ": " + c.getError());
      say.accept("corpus of " + prompts.size() + " prompts: " + c.getProgress().getPromptsDone() + " done in " + Math.round(seconds) + " s");
      return new Run(prompts.size(), c.getProgress().getPromptsDone(), c.getProgress().getEdgesWritten(), seconds);
    } finally {
      GrpcChannels.close(channel);
    }
  }

  /**
   * Stores a corpus of the prompts on a fresh local cluster of {@code model}, then sends each of
   * README's recipes {@value #QUERY_REPEATS} times: the latents active in most prompts, the
   * strongest upstream latents of the most recurrent latent, and two-edge paths in at least half
   * of the prompts.
   */
  static Queries queries(ModelRef ref, List<String> prompts, int workers, Consumer<String> say) throws Exception {
    Path dir = Files.createTempDirectory("resgraph-bench-corpus-");
    LocalCluster cluster = LocalCluster.start(dir, new LocalCluster.Options(workers, ref.getModel(), ref.getSaes()), say);
    ManagedChannel modelChannel = GrpcChannels.open(cluster.endpoints().modelServer(), ClusterDir.credentials(cluster));
    ManagedChannel graphChannel = GrpcChannels.open(cluster.endpoints().graphService(), ClusterDir.credentials(cluster));
    boolean measured = false;
    try {
      ModelServiceGrpc.newBlockingStub(modelChannel).describe(DescribeRequest.newBuilder().setRef(ref).build());
      say.accept("storing a corpus of " + prompts.size() + " " + ref.getModel() + " prompts to query");
      run(cluster, ref, prompts, 128, say);
      GraphServiceGrpc.GraphServiceBlockingStub graph = GraphServiceGrpc.newBlockingStub(graphChannel);
      String mostActive = "MATCH (f:Feature) WHERE f.jobs IS NOT NULL RETURN f.hook AS hook, f.latent AS latent, f.jobs AS jobs,"
          + " f.mean_activation AS mean_activation ORDER BY f.jobs DESC LIMIT 20";
      Iterator<QueryRow> rows = query(graph, mostActive, Map.of());
      rows.next(); // the columns
      if (!rows.hasNext()) throw new IllegalStateException("the stored corpus has no latent with statistics");
      QueryRow top = rows.next();
      Map<String, Value> latent = Map.of("hook", top.getValues(0), "latent", top.getValues(1));
      Map<String, Value> half = Map.of("min", Value.newBuilder().setNumberValue(Math.ceil(prompts.size() / 2.0)).build());
      Map<String, double[]> millis = new LinkedHashMap<>();
      millis.put("most_active_latents", time(graph, mostActive, Map.of()));
      millis.put("strongest_upstream", time(graph, "MATCH (a:Feature)-[c:CORPUS_EFFECT]->(b:Feature {hook: $hook, latent: $latent})"
          + " RETURN a.hook, a.latent, c.jobs, c.mean, c.variance ORDER BY abs(c.mean) DESC, c.jobs DESC LIMIT 10", latent));
      millis.put("recurring_paths", time(graph, "MATCH (a:Feature)-[x:CORPUS_EFFECT]->(b:Feature)-[y:CORPUS_EFFECT]->(c:Feature)"
          + " WHERE x.jobs >= $min AND y.jobs >= $min RETURN a.latent, b.latent, c.latent, x.mean, y.mean, x.jobs, y.jobs"
          + " ORDER BY x.jobs + y.jobs DESC LIMIT 20", half));
      measured = true;
      return new Queries(prompts.size(), millis);
    } finally {
      GrpcChannels.close(modelChannel);
      GrpcChannels.close(graphChannel);
      cluster.stop();
      PipelineBench.discard(dir, measured, say);
    }
  }

  /** The recipe's latencies: once unmeasured (its plan cached, as a user's second query finds it), then QUERY_REPEATS times. */
  private static double[] time(GraphServiceGrpc.GraphServiceBlockingStub graph, String cypher, Map<String, Value> params) {
    drain(query(graph, cypher, params));
    double[] ms = new double[QUERY_REPEATS];
    for (int i = 0; i < ms.length; i++) {
      long start = System.nanoTime();
      drain(query(graph, cypher, params));
      ms[i] = (System.nanoTime() - start) / 1e6;
    }
    return ms;
  }

  private static Iterator<QueryRow> query(GraphServiceGrpc.GraphServiceBlockingStub graph, String cypher, Map<String, Value> params) {
    return graph.query(QueryRequest.newBuilder().setCypher(cypher).setParameters(Struct.newBuilder().putAllFields(params)).build());
  }

  private static void drain(Iterator<QueryRow> rows) {
    while (rows.hasNext()) rows.next();
  }
}
