package resgraph.platform.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import resgraph.platform.ResgraphException;
import resgraph.v1.DescribeResponse;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerSae;
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
    assertEquals(128, resolved.getTaskBatchSize());
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
  void aLayerRangeHoldsTwoLayersAtLeastAndFitsTheModel() {
    refused(() -> JobRules.checkLayerRange(-1, 3), "negative");
    refused(() -> JobRules.checkLayerRange(3, 1), "must be below the end");
    refused(() -> JobRules.checkLayerRange(2, 3), "at least two");
    DescribeResponse model = DescribeResponse.newBuilder().setNLayer(4)
        .addLayers(LayerSae.newBuilder().setLayer(0)).addLayers(LayerSae.newBuilder().setLayer(1))
        .addLayers(LayerSae.newBuilder().setLayer(3)).build();
    assertEquals(new JobRules.LayerRange(0, 2), JobRules.layers(PROMPT.toBuilder().setLayerEnd(2).build(), model));
    refused(() -> JobRules.layers(PROMPT, model), "layer 2 has none");
    refused(() -> JobRules.layers(PROMPT.toBuilder().setLayerStart(0).setLayerEnd(5).build(), model), "at most 4");
  }
}
