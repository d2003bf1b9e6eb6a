package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.job.JobRules;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.CircuitScore;
import resgraph.v1.Edge;
import resgraph.v1.FaithfulnessRequest;
import resgraph.v1.FaithfulnessResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.Latent;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.NodeSet;

/**
 * {@code resgraph faithfulness}: how much of the model's behaviour each job's circuit carries, and
 * circuits of growing node budgets chosen by each job's own edge weights (METHOD.md: faithfulness
 * and completeness), as a table, faithfulness.json and a faithfulness-against-budget plot.
 */
@Command(name = "faithfulness", mixinStandardHelpOptions = true,
    description = "Score stored jobs' circuits by faithfulness and completeness, and circuits of growing size chosen by each job's "
        + "edge weights; give jobs of one prompt by different methods to compare the methods.")
final class FaithfulnessCommand implements Callable<Integer> {

  @Mixin ClusterDir dir;

  @Parameters(arity = "1..*", paramLabel = "JOB", description = "Finished jobs, e.g. of one prompt by each method.")
  List<String> jobs;

  @Option(names = "--budgets", split = ",", paramLabel = "N,N,...", defaultValue = "5,10,20,50,100,200",
      description = "Node budgets: the circuit of each job's N nodes of largest total |weight| (default: ${DEFAULT-VALUE}).")
  List<Integer> budgets;

  @Option(names = "--contrast", paramLabel = "TOKEN",
      description = "A token id: the metric is then the top token's log-probability minus this one's.")
  Integer contrast;

  @Option(names = "--out", paramLabel = "DIR", defaultValue = "out", description = "Where the files go (default: ${DEFAULT-VALUE}).")
  Path out;

  @Override
  public Integer call() throws Exception {
    if (budgets.stream().anyMatch(b -> b < 1)) throw new IllegalArgumentException("--budgets must be positive, not " + budgets);
    LocalCluster.Endpoints cluster = dir.running("").endpoints();
    ManagedChannel graphs = GrpcChannels.open(cluster.graphService(), dir.credentials()),
        models = GrpcChannels.open(cluster.modelServer(), dir.credentials());
    try {
      ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ArrayNode report = json.createArrayNode();
      Map<String, List<double[]>> curves = new LinkedHashMap<>(); // label -> (nodes, faithfulness) points
      StringBuilder table = new StringBuilder("%-26s %-22s %-12s %7s %13s %13s%n".formatted("job", "method", "circuit", "nodes",
          "faithfulness", "completeness"));
      for (String id : jobs) {
        Circuit c = GraphServiceGrpc.newBlockingStub(graphs).getCircuit(GetCircuitRequest.newBuilder().setJobId(id)
            .setIncludeRawEdges(true).build());
        Job job = c.getJob();
        String method = JobRules.methodName(job.getSpec().getMethod());
        List<List<String>> circuits = new ArrayList<>();
        circuits.add(c.getNodesList().stream().map(resgraph.v1.Node::getId).toList());
        List<String> ranked = ranked(c.getRawEdgesList());
        for (int b : budgets) circuits.add(ranked.subList(0, Math.min(b, ranked.size())));
        FaithfulnessResponse r = ModelServiceGrpc.newBlockingStub(models).faithfulness(request(job, circuits));
        ObjectNode entry = report.addObject().put("job", id).put("method", method).put("m_full", r.getMFull())
            .put("m_empty", r.getMEmpty()).put("metric_token", r.getMetricToken().getToken());
        ArrayNode rows = entry.putArray("circuits");
        List<double[]> curve = curves.computeIfAbsent(method + " · " + id, k -> new ArrayList<>());
        for (int k = 0; k < r.getCircuitsCount(); k++) {
          CircuitScore s = r.getCircuits(k);
          String name = k == 0 ? "pruned" : "top " + budgets.get(k - 1);
          rows.addObject().put("circuit", name).put("nodes", s.getNodes()).put("faithfulness", s.getFaithfulness())
              .put("completeness", s.getCompleteness());
          table.append("%-26s %-22s %-12s %7d %13.4f %13.4f%n".formatted(id, method, name, s.getNodes(), s.getFaithfulness(),
              s.getCompleteness()));
          if (k > 0) curve.add(new double[] {s.getNodes(), s.getFaithfulness()});
        }
      }
      System.out.print(table);
      Files.createDirectories(out);
      json.writeValue(out.resolve("faithfulness.json").toFile(), report);
      Files.writeString(out.resolve("faithfulness.svg"), FaithfulnessPlot.svg(curves));
      System.err.println("resgraph: wrote faithfulness.json and faithfulness.svg to " + out.toAbsolutePath());
      return 0;
    } finally {
      GrpcChannels.close(graphs);
      GrpcChannels.close(models);
    }
  }

  /** Node ids by the total |weight| of the raw edges they touch, largest first (ties by id, for a stable order). */
  private static List<String> ranked(List<Edge> edges) {
    Map<String, Double> score = new HashMap<>();
    for (Edge e : edges) {
      score.merge(e.getSource(), (double) Math.abs(e.getWeight()), Double::sum);
      score.merge(e.getTarget(), (double) Math.abs(e.getWeight()), Double::sum);
    }
    return score.entrySet().stream().sorted(Map.Entry.<String, Double>comparingByValue(Comparator.reverseOrder())
        .thenComparing(Map.Entry.comparingByKey())).map(Map.Entry::getKey).toList();
  }

  /** The job's prompt, target and chain, and each circuit's node ids ("5.10603", "5m.10603") as latents of its sites. */
  private FaithfulnessRequest request(Job job, List<List<String>> circuits) {
    Map<String, String> hookOfPrefix = new HashMap<>();
    FaithfulnessRequest.Builder req = FaithfulnessRequest.newBuilder().setRef(job.getSpec().getRef()).addAllTokens(job.getTokensList())
        .setTarget(job.getTarget());
    for (ChainSite s : job.getChainList()) {
      hookOfPrefix.put(s.getNodePrefix(), s.getHookName());
      req.addSites(s.getHookName());
    }
    if (contrast != null) req.setContrast(contrast);
    for (List<String> ids : circuits) {
      NodeSet.Builder set = NodeSet.newBuilder();
      for (String id : ids) {
        int dot = id.lastIndexOf('.');
        String hook = hookOfPrefix.get(id.substring(0, dot));
        if (hook == null) throw new IllegalStateException("node " + id + " is on no site of job " + job.getId() + "'s chain");
        set.addNodes(Latent.newBuilder().setHookName(hook).setLatent(Integer.parseInt(id.substring(dot + 1))));
      }
      req.addCircuits(set);
    }
    return req.build();
  }
}
