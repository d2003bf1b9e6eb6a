package resgraph.orchestrator;

import io.grpc.Status;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;
import resgraph.orchestrator.JobSpecs.LayerRange;
import resgraph.v1.AblationTask;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerActivations;
import resgraph.v1.SparseActivations;
import resgraph.v1.TraceResponse;

/** METHOD.md step 2 and the split of its candidates into tasks: which latents each task ablates. */
final class Planner {

  /** A job's tasks, numbered from 0 in layer order, and how many latents they ablate in all. */
  record Plan(List<AblationTask> tasks, int candidates) {}

  private Planner() {}

  /**
   * One task per (ablated layer, batch of at most task_batch_size candidates), for layers
   * a..b-2 of the range; each task carries everything a worker needs.
   */
  static Plan plan(String jobId, JobSpec spec, List<Integer> tokens, TraceResponse trace, LayerRange range,
      int firstAblatable) {
    Map<Integer, LayerActivations> byLayer = trace.getLayersList().stream()
        .collect(Collectors.toMap(LayerActivations::getLayer, Function.identity()));
    int size = spec.getTaskBatchSize();
    List<AblationTask> tasks = new ArrayList<>();
    int candidates = 0;
    for (int layer = range.start(); layer <= range.end() - 2; layer++) {
      LayerActivations acts = byLayer.get(layer);
      if (acts == null) {
        // Describe promised this layer an SAE; a trace without it is the model server's fault.
        throw Status.INTERNAL.withDescription("the model server's trace has no activations for layer " + layer).asRuntimeException();
      }
      List<Integer> latents = candidates(acts, firstAblatable, trace.getTarget());
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

  /** The latents with f > 0 at some ablatable position up to the target, ascending. */
  static List<Integer> candidates(LayerActivations layer, int firstAblatable, int target) {
    TreeSet<Integer> seen = new TreeSet<>();
    for (int p = firstAblatable; p <= target && p < layer.getPositionsCount(); p++) {
      SparseActivations row = layer.getPositions(p);
      for (int i = 0; i < row.getLatentsCount(); i++) {
        if (row.getValues(i) > 0) seen.add(row.getLatents(i));
      }
    }
    return List.copyOf(seen);
  }
}
