package resgraph.orchestrator;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Set;
import java.util.TreeSet;
import resgraph.v1.DescribeResponse;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerSae;
import resgraph.v1.Pruning;

/** What a client may ask for in a JobSpec, and what each absent field means. */
final class JobSpecs {

  static final int DEFAULT_TOP_K = 10;
  static final int DEFAULT_TASK_BATCH_SIZE = 128;

  /** A resolved layer range a:b: SAEs at a..b-1, latents of a..b-2 ablated (METHOD.md). */
  record LayerRange(int start, int end) {}

  private JobSpecs() {}

  /**
   * The spec with its defaults written in (pruning top_k 10, 128 latents per task), so that every
   * reader of the job sees the values it ran with; INVALID_ARGUMENT naming the first bad field.
   * Checks what needs no model; {@link #layers} checks the rest.
   */
  static JobSpec resolve(JobSpec spec) {
    if (spec.getPrompt().isBlank()) throw invalid("prompt is empty");
    if (spec.hasLayerStart() && spec.hasLayerEnd()) checkRange(spec.getLayerStart(), spec.getLayerEnd());
    JobSpec.Builder out = spec.toBuilder();
    Pruning p = spec.getPruning();
    switch (p.getRuleCase()) {
      case TOP_K -> {
        if (p.getTopK() < 1) throw invalid("pruning.top_k must be at least 1, not " + p.getTopK());
      }
      case THRESHOLD -> {
        double t = p.getThreshold();
        if (!(t > 0) || Double.isInfinite(t)) throw invalid("pruning.threshold must be a positive number, not " + t);
      }
      case RULE_NOT_SET -> out.setPruning(Pruning.newBuilder().setTopK(DEFAULT_TOP_K));
    }
    if (spec.getTaskBatchSize() < 0) {
      throw invalid("task_batch_size must be positive (or 0 for the default " + DEFAULT_TASK_BATCH_SIZE + "), not "
          + spec.getTaskBatchSize());
    }
    if (spec.getTaskBatchSize() == 0) out.setTaskBatchSize(DEFAULT_TASK_BATCH_SIZE);
    return out.build();
  }

  /**
   * The layer range against the model: absent bounds are 0 and n_layer, the range lies within
   * 0..n_layer, and every layer a..b-1 has an SAE (each ablated pair needs one at both ends).
   */
  static LayerRange layers(JobSpec spec, DescribeResponse model) {
    int n = model.getNLayer();
    int a = spec.hasLayerStart() ? spec.getLayerStart() : 0;
    int b = spec.hasLayerEnd() ? spec.getLayerEnd() : n;
    checkRange(a, b);
    if (b > n) {
      throw invalid("layer range " + a + ":" + b + " goes beyond the model, which has " + n + " layers: layer_end can be at most " + n);
    }
    Set<Integer> withSae = new TreeSet<>();
    for (LayerSae s : model.getLayersList()) withSae.add(s.getLayer());
    for (int l = a; l < b; l++) {
      if (!withSae.contains(l)) {
        throw invalid("layer range " + a + ":" + b + " needs an SAE at each of layers " + a + ".." + (b - 1) + ", but layer " + l
            + " has none (SAEs at layers " + withSae + ")");
      }
    }
    return new LayerRange(a, b);
  }

  private static void checkRange(int a, int b) {
    if (a < 0) throw invalid("layer_start " + a + " is negative");
    if (b < 0) throw invalid("layer_end " + b + " is negative");
    if (a >= b) throw invalid("layer range " + a + ":" + b + ": the start (" + a + ") must be below the end (" + b + ")");
    if (b - a < 2) {
      throw invalid("layer range " + a + ":" + b + " holds one layer; it needs at least two (a:b ablates layers a..b-2 and"
          + " measures their effects at a+1..b-1)");
    }
  }

  private static StatusRuntimeException invalid(String message) {
    return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
  }
}
