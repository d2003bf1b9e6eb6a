package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;
import resgraph.orchestrator.JobSpecs.LayerRange;
import resgraph.v1.AblationTask;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerActivations;
import resgraph.v1.ModelRef;
import resgraph.v1.SparseActivations;
import resgraph.v1.TraceResponse;

/** METHOD.md step 2 on a trace written by hand, where every answer can be read off. */
class PlannerTest {

  private static SparseActivations row(int[] latents, float[] values) {
    SparseActivations.Builder b = SparseActivations.newBuilder();
    for (int i = 0; i < latents.length; i++) b.addLatents(latents[i]).addValues(values[i]);
    return b.build();
  }

  /** Positions: 0 = BOS, 1, 2 = target, 3 = after the target. */
  private static LayerActivations layer(int l) {
    return LayerActivations.newBuilder().setLayer(l)
        .addPositions(row(new int[] {90, 91}, new float[] {5, 5}))
        .addPositions(row(new int[] {3 + l, 7}, new float[] {1, 0.5f}))
        .addPositions(row(new int[] {7, 12, 40}, new float[] {2, 0, 1}))
        .addPositions(row(new int[] {60}, new float[] {9}))
        .build();
  }

  @Test
  void candidatesSkipBosZerosAndPositionsAfterTheTarget() {
    assertEquals(List.of(3, 7, 40), Planner.candidates(layer(0), 1, 2));
    assertEquals(List.of(3, 7, 40, 90, 91), Planner.candidates(layer(0), 0, 2));
    assertEquals(List.of(3, 7), Planner.candidates(layer(0), 1, 1));
  }

  @Test
  void tasksAreNumberedInLayerOrderAndNoLargerThanTheBatch() {
    TraceResponse trace = TraceResponse.newBuilder().setTarget(2).addLayers(layer(0)).addLayers(layer(1)).addLayers(layer(2)).build();
    ModelRef ref = ModelRef.newBuilder().setModel("m").setSaes("s").build();
    JobSpec spec = JobSpec.newBuilder().setRef(ref).setTaskBatchSize(2).build();
    Planner.Plan plan = Planner.plan("j-1", spec, List.of(50256, 1, 2, 3), trace, new LayerRange(0, 3), 1);

    assertEquals(6, plan.candidates());
    List<AblationTask> tasks = plan.tasks();
    assertEquals(List.of(0, 0, 1, 1), tasks.stream().map(AblationTask::getLayer).toList(), "layers 0 and 1 ablated, not 2");
    assertEquals(List.of(List.of(3, 7), List.of(40), List.of(4, 7), List.of(40)), tasks.stream().map(AblationTask::getLatentsList).toList());
    assertEquals(List.of(0, 1, 2, 3), tasks.stream().map(AblationTask::getTask).toList());
    for (AblationTask t : tasks) {
      assertEquals("j-1", t.getJobId());
      assertEquals(ref, t.getRef());
      assertEquals(2, t.getTarget());
      assertEquals(List.of(50256, 1, 2, 3), t.getTokensList());
    }
  }
}
