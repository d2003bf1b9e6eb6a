package resgraph.platform.job;

import java.util.Set;
import java.util.TreeSet;
import resgraph.platform.ResgraphException;
import resgraph.v1.DescribeResponse;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerSae;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;

/**
 * What a JobSpec may ask for, what each absent field means, and which phases end a job: the one
 * home of these rules. The orchestrator writes the defaults into every spec it accepts, so every
 * other reader of a job sees the values it ran with.
 */
public final class JobRules {

  /** METHOD.md step 7's default: keep the 10 largest |e| per layer pair. */
  public static final int DEFAULT_TOP_K = 10;
  /** Latents per ablation task when a spec names no task_batch_size. */
  public static final int DEFAULT_TASK_BATCH_SIZE = 128;

  /** A resolved layer range a:b: SAEs at a..b-1, latents of a..b-2 ablated (METHOD.md). */
  public record LayerRange(int start, int end) {}

  private JobRules() {}

  /**
   * The spec with its defaults written in (pruning top_k 10, 128 latents per task); BAD_REQUEST
   * naming the first bad field. Checks what needs no model; {@link #layers} checks the rest.
   */
  public static JobSpec resolve(JobSpec spec) {
    if (spec.getPrompt().isBlank()) throw ResgraphException.badRequest("prompt is empty");
    if (spec.hasLayerStart() && spec.hasLayerEnd()) checkLayerRange(spec.getLayerStart(), spec.getLayerEnd());
    JobSpec.Builder out = spec.toBuilder().setPruning(checkPruning(spec.getPruning()));
    if (spec.getTaskBatchSize() < 0) {
      throw ResgraphException.badRequest("task_batch_size must be positive (or 0 for the default " + DEFAULT_TASK_BATCH_SIZE
          + "), not " + spec.getTaskBatchSize());
    }
    if (spec.getTaskBatchSize() == 0) out.setTaskBatchSize(DEFAULT_TASK_BATCH_SIZE);
    return out.build();
  }

  /** The rule, or top_k {@value #DEFAULT_TOP_K} when none is set. */
  public static Pruning pruningOrDefault(Pruning rule) {
    return rule.getRuleCase() == Pruning.RuleCase.RULE_NOT_SET ? Pruning.newBuilder().setTopK(DEFAULT_TOP_K).build() : rule;
  }

  /** {@link #pruningOrDefault}, once the rule is known to make sense: top_k at least 1, a threshold finite and positive. */
  public static Pruning checkPruning(Pruning rule) {
    switch (rule.getRuleCase()) {
      case TOP_K -> {
        if (rule.getTopK() < 1) throw ResgraphException.badRequest("pruning.top_k must be at least 1, not " + rule.getTopK());
      }
      case THRESHOLD -> {
        double t = rule.getThreshold();
        if (!(t > 0) || Double.isInfinite(t)) throw ResgraphException.badRequest("pruning.threshold must be a positive number, not " + t);
      }
      case RULE_NOT_SET -> { }
    }
    return pruningOrDefault(rule);
  }

  /**
   * A layer range a:b on its own: both bounds non-negative, and at least two layers (a:b ablates
   * layers a..b-2 and measures their effects at a+1..b-1).
   */
  public static void checkLayerRange(int a, int b) {
    if (a < 0) throw ResgraphException.badRequest("layer_start " + a + " is negative");
    if (b < 0) throw ResgraphException.badRequest("layer_end " + b + " is negative");
    if (a >= b) throw ResgraphException.badRequest("layer range " + a + ":" + b + ": the start (" + a + ") must be below the end (" + b + ")");
    if (b - a < 2) {
      throw ResgraphException.badRequest("layer range " + a + ":" + b + " holds one layer; it needs at least two (a:b ablates layers"
          + " a..b-2 and measures their effects at a+1..b-1)");
    }
  }

  /**
   * The spec's layer range against the model: absent bounds are 0 and n_layer, the range lies
   * within 0..n_layer, and every layer a..b-1 has an SAE (each ablated pair needs one at both ends).
   */
  public static LayerRange layers(JobSpec spec, DescribeResponse model) {
    int n = model.getNLayer();
    int a = spec.hasLayerStart() ? spec.getLayerStart() : 0;
    int b = spec.hasLayerEnd() ? spec.getLayerEnd() : n;
    checkLayerRange(a, b);
    if (b > n) {
      throw ResgraphException.badRequest("layer range " + a + ":" + b + " goes beyond the model, which has " + n
          + " layers: layer_end can be at most " + n);
    }
    Set<Integer> withSae = new TreeSet<>();
    for (LayerSae s : model.getLayersList()) withSae.add(s.getLayer());
    for (int l = a; l < b; l++) {
      if (!withSae.contains(l)) {
        throw ResgraphException.badRequest("layer range " + a + ":" + b + " needs an SAE at each of layers " + a + ".." + (b - 1)
            + ", but layer " + l + " has none (SAEs at layers " + withSae + ")");
      }
    }
    return new LayerRange(a, b);
  }

  /** Whether a job in this phase is over: it changes no more. */
  public static boolean ended(Phase phase) {
    return phase == Phase.PHASE_DONE || phase == Phase.PHASE_FAILED || phase == Phase.PHASE_CANCELLED;
  }

  /** Whether a job in this phase wants none of its tasks run: CANCELLED or FAILED. */
  public static boolean stopsItsTasks(Phase phase) {
    return phase == Phase.PHASE_CANCELLED || phase == Phase.PHASE_FAILED;
  }
}
