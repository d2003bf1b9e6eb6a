package resgraph.platform.job;

import resgraph.platform.ResgraphException;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;
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
  /**
   * Latents per ablation task when a spec names no task_batch_size: a site's candidates for a short
   * prompt in one task, so that the few ablations whose change reaches most of the next SAE share
   * one pass through its encoder (ExactAblation groups a call's ablations, not a task's batches).
   */
  public static final int DEFAULT_TASK_BATCH_SIZE = 2048;
  /** METHOD.md's integrated-gradients steps, and the most a spec may ask for. */
  public static final int DEFAULT_IG_STEPS = 10, MAX_IG_STEPS = 1000;

  private JobRules() {}

  /**
   * The spec with its defaults written in (pruning top_k 10, 2048 latents per task); BAD_REQUEST
   * naming the first bad field. Checks what needs no model; the model server checks the chain
   * the spec names against its SAEs (a layer range, or sites), when it traces the prompt.
   */
  public static JobSpec resolve(JobSpec spec) {
    if (spec.getPrompt().isBlank()) throw ResgraphException.badRequest("prompt is empty");
    if (spec.getSitesCount() > 0 && (spec.hasLayerStart() || spec.hasLayerEnd())) {
      throw ResgraphException.badRequest("the spec names its chain by sites " + spec.getSitesList() + " and by a layer range: "
          + "give one of them");
    }
    JobSpec.Builder out = spec.toBuilder().setPruning(checkPruning(spec.getPruning()));
    if (spec.getTaskBatchSize() < 0) {
      throw ResgraphException.badRequest("task_batch_size must be positive (or 0 for the default " + DEFAULT_TASK_BATCH_SIZE
          + "), not " + spec.getTaskBatchSize());
    }
    if (spec.getTaskBatchSize() == 0) out.setTaskBatchSize(DEFAULT_TASK_BATCH_SIZE);
    methodName(spec.getMethod(), spec.getMethodValue());
    if (hasSteps(spec.getMethod())) {
      if (spec.getIgSteps() < 0 || spec.getIgSteps() > MAX_IG_STEPS) {
        throw ResgraphException.badRequest("ig_steps must be 1.." + MAX_IG_STEPS + " (or 0 for the default " + DEFAULT_IG_STEPS
            + "), not " + spec.getIgSteps());
      }
      if (spec.getIgSteps() == 0) out.setIgSteps(DEFAULT_IG_STEPS);
    } else if (spec.getIgSteps() != 0) {
      throw ResgraphException.badRequest("ig_steps is for METHOD_INTEGRATED_GRADIENTS; this job's method is " + spec.getMethod());
    }
    return out.build();
  }

  /** How METHOD.md, the command line and every export name a method: "ablation", "attribution", "integrated-gradients". */
  public static String methodName(Method method) {
    return methodName(method, -1);
  }

  private static String methodName(Method method, int value) {
    return switch (method) {
      case METHOD_ABLATION -> "ablation";
      case METHOD_ATTRIBUTION -> "attribution";
      case METHOD_INTEGRATED_GRADIENTS -> "integrated-gradients";
      case UNRECOGNIZED -> throw ResgraphException.badRequest("method " + value + " is none of METHOD_ABLATION (0), "
          + "METHOD_ATTRIBUTION (1), METHOD_INTEGRATED_GRADIENTS (2)");
    };
  }

  /** Whether a method has steps ({@code ig_steps}) that say how it was run: integrated gradients. */
  public static boolean hasSteps(Method method) {
    return method == Method.METHOD_INTEGRATED_GRADIENTS;
  }

  /** A job's method as a reader sees it: the name, with its steps when it has them ("integrated-gradients, 10 steps"). */
  public static String methodCaption(JobSpec spec) {
    String name = methodName(spec.getMethod());
    return hasSteps(spec.getMethod()) ? name + ", " + spec.getIgSteps() + " steps" : name;
  }

  /** The method a name denotes; BAD_REQUEST listing the names. */
  public static Method method(String name) {
    for (Method m : Method.values()) {
      if (m != Method.UNRECOGNIZED && methodName(m).equals(name)) return m;
    }
    throw ResgraphException.badRequest("method \"" + name + "\" is none of ablation, attribution, integrated-gradients");
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

  /** Whether a job in this phase is over: it changes no more. */
  public static boolean ended(Phase phase) {
    return phase == Phase.PHASE_DONE || phase == Phase.PHASE_FAILED || phase == Phase.PHASE_CANCELLED;
  }

  /** Whether a job in this phase wants none of its tasks run: CANCELLED or FAILED. */
  public static boolean stopsItsTasks(Phase phase) {
    return phase == Phase.PHASE_CANCELLED || phase == Phase.PHASE_FAILED;
  }
}
