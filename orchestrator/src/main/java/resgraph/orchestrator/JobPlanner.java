package resgraph.orchestrator;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import resgraph.platform.ResgraphException;
import resgraph.v1.AblationTask;
import resgraph.v1.ChainSite;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerCandidates;
import resgraph.v1.Method;
import resgraph.v1.TraceResponse;

/**
 * A job's tasks: the candidates of each site of its chain but the last (METHOD.md step 2, as the
 * model server's trace reports them), cut into equal tasks of at most task_batch_size latents,
 * each measured at the next site of the chain. An approximate method's cost does not grow with the latents it
 * is asked about, so its task holds every candidate of its site.
 */
final class JobPlanner {

  /** A job's tasks, numbered from 0 in chain order, and how many latents they ablate in all. */
  record Plan(List<AblationTask> tasks, int candidates) {}

  private JobPlanner() {}

  /** One task per (ablated site, batch of candidates); each carries everything a worker needs. */
  static Plan plan(String jobId, JobSpec spec, List<Integer> tokens, TraceResponse trace) {
    Map<String, LayerCandidates> bySite = trace.getCandidatesList().stream()
        .collect(Collectors.toMap(LayerCandidates::getHookName, Function.identity()));
    boolean approximate = spec.getMethod() != Method.METHOD_ABLATION;
    List<AblationTask> tasks = new ArrayList<>();
    int candidates = 0;
    List<ChainSite> chain = trace.getChainList();
    for (int s = 0; s + 1 < chain.size(); s++) {
      ChainSite site = chain.get(s);
      LayerCandidates siteCandidates = bySite.get(site.getHookName());
      if (siteCandidates == null) {
        // the chain and the candidates come in one answer: one without the other is the model server's fault
        throw new ResgraphException(ResgraphException.Kind.INTERNAL, "the model server's trace has no candidates for "
            + site.getHookName());
      }
      List<Integer> latents = siteCandidates.getLatentsList();
      candidates += latents.size();
      // equal tasks, not full ones and a remnant: a task of a few latents costs a pass of its own
      int size = approximate ? Math.max(1, latents.size()) : spec.getTaskBatchSize();
      int count = (latents.size() + size - 1) / size;
      for (int t = 0; t < count; t++) {
        int from = (int) ((long) t * latents.size() / count), to = (int) ((long) (t + 1) * latents.size() / count);
        tasks.add(AblationTask.newBuilder()
            .setJobId(jobId)
            .setTask(tasks.size())
            .setRef(spec.getRef())
            .addAllTokens(tokens)
            .setLayer(site.getLayer())
            .setHookName(site.getHookName())
            .setMeasureHookName(chain.get(s + 1).getHookName())
            .addAllLatents(latents.subList(from, to))
            .setTarget(trace.getTarget())
            .setMethod(spec.getMethod())
            .setIgSteps(spec.getIgSteps())
            .build());
      }
    }
    return new Plan(tasks, candidates);
  }
}
