package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Descriptors.FieldDescriptor;
import io.grpc.ManagedChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import resgraph.platform.ResgraphException;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.job.JobRules;
import resgraph.v1.Agreement;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;

/**
 * {@code resgraph compare}: two finished graphs of one prompt, edge by edge, through the graph
 * service's Compare; or, with --prompts, every method on every prompt and the agreement over the set.
 */
@Command(name = "compare", mixinStandardHelpOptions = true,
    description = "Compare two finished graphs of one prompt edge by edge (METHOD.md \"Approximations\"): per pair of sites "
        + "and overall, and a scatter of their weights. With --prompts, run the exact method and each of --methods on every "
        + "prompt and print their agreement over the whole set.")
final class CompareCommand implements Callable<Integer> {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String ROW = "%-14s %9s %9s %9s %8s %8s %9s %9s %8s %8s %8s %9s%n";

  @Mixin ClusterDir dir;

  @Parameters(index = "0", arity = "0..1", paramLabel = "JOB_A", description = "The reference job, normally the exact (ablation) graph.")
  String jobA;

  @Parameters(index = "1", arity = "0..1", paramLabel = "JOB_B", description = "The job scored against it, e.g. an attribution graph.")
  String jobB;

  @Option(names = "--prompts", paramLabel = "FILE",
      description = "Instead of two jobs: a prompt a line (or JSON lines with prompt and target), each run by every method.")
  Path prompts;

  @Option(names = "--methods", split = ",", paramLabel = "M,M", defaultValue = "attribution,integrated-gradients",
      description = "With --prompts: the approximate methods compared with ablation (default: ${DEFAULT-VALUE}).")
  List<String> methods;

  @Mixin ModelOptions model;

  @Option(names = "--top-k", defaultValue = "10", paramLabel = "K", description = "k of the top-k recall (default: ${DEFAULT-VALUE}).")
  int topK;

  @Option(names = "--json", description = "Print the comparison as JSON instead of a table.")
  boolean json;

  @Option(names = "--out", paramLabel = "DIR",
      description = "Where comparison.json and scatter.svg go (default: compare-JOB_A-vs-JOB_B).")
  Path out;

  @Option(names = "--graph", paramLabel = "HOST:PORT", description = "A graph service other than the local cluster's.")
  String graph;

  @Override
  public Integer call() throws Exception {
    if (topK < 1) throw new IllegalArgumentException("--top-k must be at least 1, not " + topK);
    String address = graph != null ? graph : dir.running(", or give --graph").endpoints().graphService();
    if (prompts != null) return sweep(address);
    if (jobA == null || jobB == null) throw new IllegalArgumentException("name two jobs to compare, or give --prompts FILE");
    ManagedChannel channel = GrpcChannels.open(address, dir.credentials());
    Comparison c;
    try {
      c = GraphServiceGrpc.newBlockingStub(channel)
          .compare(CompareRequest.newBuilder().setJobA(jobA).setJobB(jobB).setTopK(topK).build());
    } finally {
      GrpcChannels.close(channel);
    }
    String text = JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json(c));
    Path folder = out != null ? out : Path.of("compare-" + jobA + "-vs-" + jobB);
    Files.createDirectories(folder);
    Files.writeString(folder.resolve("comparison.json"), text);
    Files.writeString(folder.resolve("scatter.svg"), c.getScatterSvg());
    if (json) System.out.println(text);
    else print(c, topK);
    System.err.println("resgraph: wrote comparison.json and scatter.svg to " + folder);
    return 0;
  }

  /** Every method on every prompt of --prompts through the local cluster's orchestrator, compared with ablation. */
  private int sweep(String graphAddress) throws Exception {
    if (jobA != null) throw new IllegalArgumentException("--prompts runs its own jobs: give it without JOB_A and JOB_B");
    List<Method> approximations = new ArrayList<>();
    for (String name : methods) {
      Method m;
      try {
        m = JobRules.method(name);
      } catch (ResgraphException e) {
        throw new IllegalArgumentException("--methods: " + e.getMessage());
      }
      if (m == Method.METHOD_ABLATION) throw new IllegalArgumentException("--methods are compared with ablation: leave ablation out");
      approximations.add(m);
    }
    List<CorpusRun.Prompt> corpus = CorpusRun.read(prompts);
    String orchestrator = dir.running("; --prompts runs its jobs on it").endpoints().orchestrator();
    ManagedChannel jobs = GrpcChannels.open(orchestrator, dir.credentials()), graphs = GrpcChannels.open(graphAddress, dir.credentials());
    try {
      return MethodSweep.run(JobServiceGrpc.newBlockingStub(jobs), GraphServiceGrpc.newBlockingStub(graphs),
          JobSpec.newBuilder().setRef(model.ref()).build(), corpus, approximations, topK, out != null ? out : Path.of("compare-methods"));
    } finally {
      GrpcChannels.close(jobs);
      GrpcChannels.close(graphs);
    }
  }

  /** The comparison as JSON, fields named as the proto names them; the scatter is a file of its own. */
  private static ObjectNode json(Comparison c) {
    ObjectNode o = JSON.createObjectNode();
    o.set("job_a", job(c.getJobA()));
    o.set("job_b", job(c.getJobB()));
    ArrayNode pairs = o.putArray("pairs");
    c.getPairsList().forEach(p -> pairs.add(agreement(p)));
    o.set("overall", agreement(c.getOverall()));
    o.put("wall_time_ratio", finite(c.getWallTimeRatio()));
    return o;
  }

  private static ObjectNode job(Job job) {
    return JSON.createObjectNode().put("id", job.getId()).put("method", JobRules.methodName(job.getSpec().getMethod()))
        .put("prompt", job.getSpec().getPrompt()).put("wall_seconds", job.getTimings().getWall());
  }

  private static ObjectNode agreement(Agreement g) {
    ObjectNode o = JSON.createObjectNode();
    for (FieldDescriptor f : Agreement.getDescriptor().getFields()) {
      Object v = g.getField(f);
      if (v instanceof Double d) o.put(f.getName(), finite(d));
      else if (v instanceof Long n) o.put(f.getName(), n);
      else o.put(f.getName(), v.toString());
    }
    return o;
  }

  /** A measure with nothing to measure (NaN) as null, which JSON has and NaN it has not. */
  private static Double finite(double v) {
    return Double.isNaN(v) ? null : v;
  }

  private static void print(Comparison c, int topK) {
    System.out.printf(Locale.ROOT, "A: %s (%s), B: %s (%s); B's wall time over A's: %s; top-k recall with k = %d%n",
        c.getJobA().getId(), JobRules.methodName(c.getJobA().getSpec().getMethod()), c.getJobB().getId(), JobRules.methodName(c.getJobB().getSpec().getMethod()),
        number(c.getWallTimeRatio()), topK);
    System.out.printf(Locale.ROOT, ROW, "pair", "edges A", "edges B", "union", "pearson", "spearman", "shared", "same sign",
        "top-k", "edges J", "nodes J", "switched");
    for (Agreement pair : c.getPairsList()) row(pair.getSourceHook() + " -> " + pair.getTargetHook(), pair);
    row("overall", c.getOverall());
  }

  private static void row(String name, Agreement g) {
    System.out.printf(Locale.ROOT, ROW, name, g.getEdgesA(), g.getEdgesB(), g.getEdgesUnion(), number(g.getPearson()),
        number(g.getSpearman()), g.getSharedEdges(), number(g.getSignAgreement()), number(g.getTopKRecall()),
        number(g.getCircuitEdgeJaccard()), number(g.getCircuitNodeJaccard()), number(g.getSwitchedOnShare()));
  }

  /** Three decimals; a measure with nothing to measure (NaN) as "n/a". */
  private static String number(double v) {
    return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.3f", v);
  }
}
