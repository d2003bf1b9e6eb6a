package resgraph.platform.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import resgraph.platform.ResgraphException;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;
import resgraph.v1.Pruning;

/** A spec's defaults and checks, in their one home. */
class JobRulesTest {

  private static final JobSpec PROMPT = JobSpec.newBuilder().setPrompt("a prompt").build();

  private static void refused(Executable check, String mentions) {
    ResgraphException e = assertThrows(ResgraphException.class, check);
    assertEquals(ResgraphException.Kind.BAD_REQUEST, e.kind());
    assertTrue(e.getMessage().contains(mentions), e.getMessage());
  }

  @Test
  void absentFieldsGetTheirDefaults() {
    JobSpec resolved = JobRules.resolve(PROMPT);
    assertEquals(Pruning.newBuilder().setTopK(10).build(), resolved.getPruning());
    assertEquals(JobRules.DEFAULT_TASK_BATCH_SIZE, resolved.getTaskBatchSize());
    assertEquals(resolved, JobRules.resolve(resolved), "resolving twice changes nothing");
  }

  @Test
  void aRuleMustMakeSense() {
    refused(() -> JobRules.checkPruning(Pruning.newBuilder().setTopK(0).build()), "top_k");
    refused(() -> JobRules.checkPruning(Pruning.newBuilder().setThreshold(0).build()), "threshold");
    refused(() -> JobRules.checkPruning(Pruning.newBuilder().setThreshold(Double.NaN).build()), "NaN");
    refused(() -> JobRules.checkPruning(Pruning.newBuilder().setThreshold(Double.POSITIVE_INFINITY).build()), "threshold");
    assertEquals(Pruning.newBuilder().setThreshold(0.5).build(), JobRules.checkPruning(Pruning.newBuilder().setThreshold(0.5).build()));
  }

  @Test
  void aChainIsNamedBySitesOrByLayersNotBoth() {
    refused(() -> JobRules.resolve(PROMPT.toBuilder().addSites("3m").setLayerEnd(4).build()), "give one of them");
    assertEquals(List.of("3m", "4m"), JobRules.resolve(PROMPT.toBuilder().addSites("3m").addSites("4m").build()).getSitesList());
  }

  @Test
  void integratedGradientsGetTenStepsByDefaultAndOtherMethodsNone() {
    JobSpec ig = JobRules.resolve(PROMPT.toBuilder().setMethod(Method.METHOD_INTEGRATED_GRADIENTS).build());
    assertEquals(10, ig.getIgSteps());
    assertEquals(ig, JobRules.resolve(ig), "resolving twice changes nothing");
    refused(() -> JobRules.resolve(PROMPT.toBuilder().setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(-1).build()), "ig_steps");
    refused(() -> JobRules.resolve(PROMPT.toBuilder().setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(1001).build()), "ig_steps");
    refused(() -> JobRules.resolve(PROMPT.toBuilder().setIgSteps(5).build()), "METHOD_INTEGRATED_GRADIENTS");
    refused(() -> JobRules.resolve(PROMPT.toBuilder().setMethodValue(9).build()), "none of METHOD_ABLATION");
    assertEquals(0, JobRules.resolve(PROMPT.toBuilder().setMethod(Method.METHOD_ATTRIBUTION).build()).getIgSteps());
  }

  @Test
  void methodsAreNamedAsMethodMdNamesThem() {
    for (Method m : List.of(Method.METHOD_ABLATION, Method.METHOD_ATTRIBUTION, Method.METHOD_INTEGRATED_GRADIENTS)) {
      assertEquals(m, JobRules.method(JobRules.methodName(m)));
    }
    assertEquals("integrated-gradients", JobRules.methodName(Method.METHOD_INTEGRATED_GRADIENTS));
    refused(() -> JobRules.method("gradients"), "none of ablation, attribution, integrated-gradients");
  }
}
