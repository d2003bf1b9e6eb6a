package resgraph.graph;

import resgraph.platform.job.JobRules;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;

/**
 * How a job's edge weights were found (METHOD.md: exact ablation, or an approximation of it), as
 * graph.json, Neo4j, the exports and the circuit browser all show it (names from JobRules).
 */
public final class JobMethods {

  private JobMethods() {}

  /** "ablation", "attribution" or "integrated-gradients"; a spec that names no method is METHOD_ABLATION's (proto3's default). */
  public static String name(JobSpec spec) {
    return JobRules.methodName(spec.getMethod());
  }

  /** Whether the method has a number of steps ({@code ig_steps}) that says how it was run. */
  public static boolean hasSteps(JobSpec spec) {
    return spec.getMethod() == Method.METHOD_INTEGRATED_GRADIENTS;
  }

  /** The name, with integrated gradients' steps: "integrated-gradients, 10 steps". */
  public static String caption(JobSpec spec) {
    return hasSteps(spec) ? name(spec) + ", " + spec.getIgSteps() + " steps" : name(spec);
  }
}
