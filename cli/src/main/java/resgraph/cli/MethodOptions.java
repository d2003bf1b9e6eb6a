package resgraph.cli;

import picocli.CommandLine.Option;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.Method;

/** {@code --method} and {@code --ig-steps}: how edge weights are found (METHOD.md), exactly or from gradients. */
final class MethodOptions {

  @Option(names = "--method", defaultValue = "ablation", paramLabel = "ablation|attribution|integrated-gradients",
      description = "ablation: exact effects; attribution: attribution patching; integrated-gradients: gradients averaged "
          + "along the path to every candidate ablated (default: ${DEFAULT-VALUE}).")
  String name;

  @Option(names = "--ig-steps", paramLabel = "S",
      description = "Integrated gradients' steps (default: " + JobRules.DEFAULT_IG_STEPS + ").")
  Integer igSteps;

  Method method() {
    try {
      return JobRules.method(name);
    } catch (ResgraphException e) {
      throw new IllegalArgumentException("--" + e.getMessage()); // a usage error, as picocli's own
    }
  }

  /** The steps to ask for: 0 (the default) unless given, and only with integrated gradients. */
  int igSteps() {
    if (igSteps == null) return 0;
    if (method() != Method.METHOD_INTEGRATED_GRADIENTS) {
      throw new IllegalArgumentException("--ig-steps is for --method integrated-gradients, not " + name);
    }
    if (igSteps < 1) throw new IllegalArgumentException("--ig-steps must be at least 1, not " + igSteps);
    return igSteps;
  }
}
