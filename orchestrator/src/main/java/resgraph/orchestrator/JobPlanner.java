package resgraph.orchestrator;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules.LayerRange;
import resgraph.v1.AblationTask;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerCandidates;
import resgraph.v1.TraceResponse;

/**
 * A job's tasks: the candidates of each ablated layer (METHOD.md step 2, as the model server's
 * trace reports them) cut into batches of task_batch_size latents.
 */
final class JobPlanner {

  /** A job's tasks, numbered from 0 in layer order, and how many latents they ablate in all. */
  record Plan(List<AblationTask> tasks, int candidates) {}

  private JobPlanner() {}

  /**
   * One task per (ablated layer, batch of at most task_batch_size candidates), for layers
   * a..b-2 of the range; each task carries everything a worker needs.
   */
  static Plan plan(String jobId, JobSpec spec, List<Integer> tokens, TraceResponse trace, LayerRange range) {
    Map<Integer, LayerCandidates> byLayer = trace.getCandidatesList().stream()
        .collect(Collectors.toMap(LayerCandidates::getLayer, Function.identity()));
    int size = spec.getTaskBatchSize();
    List<AblationTask> tasks = new ArrayList<>();
    int candidates = 0;
    for (int layer = range.start(); layer <= range.end() - 2; layer++) {
      LayerCandidates layerCandidates = byLayer.get(layer);
      if (layerCandidates == null) {
        // Describe promised this layer an SAE; a trace without it is the model server's fault.
        throw new ResgraphException(ResgraphException.Kind.INTERNAL, "the model server's trace has no candidates for layer " + layer);
      }
      List<Integer> latents = layerCandidates.getLatentsList();
      candidates += latents.size();
      for (int from = 0; from < latents.size(); from += size) {
        tasks.add(AblationTask.newBuilder()
            .setJobId(jobId)
            .setTask(tasks.size())
            .setRef(spec.getRef())
            .addAllTokens(tokens)
            .setLayer(layer)
            .addAllLatents(latents.subList(from, Math.min(from + size, latents.size())))
            .setTarget(trace.getTarget())
            .build());
      }
    }
    return new Plan(tasks, candidates);
  }
}
