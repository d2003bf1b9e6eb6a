package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import resgraph.platform.job.JobRules;
import resgraph.v1.Agreement;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusMember;
import resgraph.v1.GraphServiceGrpc.GraphServiceBlockingStub;
import resgraph.v1.JobServiceGrpc.JobServiceBlockingStub;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;
import resgraph.v1.Phase;

/**
 * {@code resgraph compare --prompts FILE --methods ...}: the exact graph and each approximation of
 * it for every prompt, each approximation compared with the exact graph of its prompt (METHOD.md),
 * and the agreement over the whole set: mean and spread per layer pair and overall.
 */
final class MethodSweep {

  /** The comparison's figures, as the table and sweep.json name them. */
  private static final Map<String, ToDoubleFunction<Agreement>> FIGURES = new LinkedHashMap<>();

  static {
    FIGURES.put("pearson", Agreement::getPearson);
    FIGURES.put("spearman", Agreement::getSpearman);
    FIGURES.put("sign_agreement", Agreement::getSignAgreement);
    FIGURES.put("top_k_recall", Agreement::getTopKRecall);
    FIGURES.put("circuit_edge_jaccard", Agreement::getCircuitEdgeJaccard);
    FIGURES.put("circuit_node_jaccard", Agreement::getCircuitNodeJaccard);
    FIGURES.put("switched_on_share", Agreement::getSwitchedOnShare);
  }

  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private MethodSweep() {}

  /** Runs the sweep, prints the table and writes sweep.json into {@code out}; 0 when every job finished. */
  static int run(JobServiceBlockingStub jobs, GraphServiceBlockingStub graph, JobSpec template, List<CorpusRun.Prompt> prompts,
      List<Method> methods, int topK, Path out) throws IOException {
    Map<Method, List<String>> jobIds = new LinkedHashMap<>(); // per method, each prompt's finished job or null
    List<Method> all = new ArrayList<>(List.of(Method.METHOD_ABLATION));
    all.addAll(methods);
    boolean complete = true;
    for (Method m : all) {
      System.err.println("resgraph: " + JobRules.methodName(m) + " on " + prompts.size() + " prompts");
      CorpusJob corpus = CorpusRun.submitAndFollow(jobs, CorpusRun.spec(template.toBuilder().setMethod(m).build(), prompts));
      List<String> ids = new ArrayList<>();
      for (int i = 0; i < prompts.size(); i++) ids.add(null);
      for (CorpusMember member : corpus.getMembersList()) {
        if (member.getPhase() == Phase.PHASE_DONE) ids.set(member.getIndex(), member.getJobId());
        else {
          complete = false;
          System.err.println("resgraph: prompt " + (member.getIndex() + 1) + " by " + JobRules.methodName(m) + " "
              + RunCommand.phaseName(member.getPhase()) + (member.getError().isEmpty() ? "" : ": " + member.getError()));
        }
      }
      jobIds.put(m, ids);
    }

    ObjectNode report = JSON.createObjectNode().put("prompts", prompts.size()).put("top_k", topK);
    StringBuilder table = new StringBuilder();
    for (Method m : methods) {
      Map<String, List<Agreement>> byPair = new LinkedHashMap<>();
      List<Double> wallRatios = new ArrayList<>();
      ArrayNode perPrompt = JSON.createArrayNode();
      for (int i = 0; i < prompts.size(); i++) {
        String exact = jobIds.get(Method.METHOD_ABLATION).get(i), approx = jobIds.get(m).get(i);
        if (exact == null || approx == null) continue;
        Comparison c = graph.compare(CompareRequest.newBuilder().setJobA(exact).setJobB(approx).setTopK(topK).build());
        for (Agreement a : c.getPairsList()) byPair.computeIfAbsent(a.getSourceHook() + " -> " + a.getTargetHook(), k -> new ArrayList<>()).add(a);
        byPair.computeIfAbsent("overall", k -> new ArrayList<>()).add(c.getOverall());
        wallRatios.add(c.getWallTimeRatio());
        perPrompt.addObject().put("prompt", prompts.get(i).text()).put("exact_job", exact).put("job", approx)
            .put("pearson", c.getOverall().getPearson()).put("wall_time_ratio", c.getWallTimeRatio());
      }
      ObjectNode method = report.putObject(JobRules.methodName(m));
      method.set("jobs", perPrompt);
      method.set("wall_time_ratio", spread(wallRatios));
      ObjectNode pairs = method.putObject("pairs");
      table.append(JobRules.methodName(m)).append(" against ablation, ").append(perPrompt.size()).append(" prompts (mean ± sd)\n");
      table.append("%-16s".formatted("layer pair"));
      for (String f : FIGURES.keySet()) table.append("%22s".formatted(f));
      table.append('\n');
      byPair.forEach((pair, agreements) -> {
        ObjectNode row = pairs.putObject(pair);
        table.append("%-16s".formatted(pair));
        FIGURES.forEach((name, figure) -> {
          ObjectNode s = spread(agreements.stream().map(figure::applyAsDouble).toList());
          row.set(name, s);
          table.append("%22s".formatted("%.3f ± %.3f".formatted(s.get("mean").asDouble(), s.get("sd").asDouble())));
        });
        table.append('\n');
      });
      table.append("wall time against the exact job: %.3f\n\n".formatted(method.get("wall_time_ratio").get("mean").asDouble()));
    }
    System.out.print(table);
    Files.createDirectories(out);
    JSON.writeValue(out.resolve("sweep.json").toFile(), report);
    System.err.println("resgraph: wrote sweep.json to " + out.toAbsolutePath());
    return complete ? 0 : 1;
  }

  /** Mean, standard deviation (over n) and count of the finite values: a correlation of a constant graph is NaN. */
  private static ObjectNode spread(List<Double> values) {
    double sum = 0, squares = 0;
    int n = 0;
    for (double v : values) {
      if (!Double.isFinite(v)) continue;
      sum += v;
      squares += v * v;
      n++;
    }
    double mean = n == 0 ? Double.NaN : sum / n;
    return JSON.createObjectNode().put("mean", mean).put("sd", n == 0 ? Double.NaN : Math.sqrt(Math.max(0, squares / n - mean * mean)))
        .put("n", n);
  }
}
