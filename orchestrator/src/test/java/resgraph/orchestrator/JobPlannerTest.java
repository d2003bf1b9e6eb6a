package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules.LayerRange;
import resgraph.v1.AblationTask;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerCandidates;
import resgraph.v1.ModelRef;
import resgraph.v1.TraceResponse;

/** How a job's tasks cut METHOD.md step 2's candidates, as the trace reports them, on a trace written by hand. */
class JobPlannerTest {

  private static LayerCandidates candidates(int layer, Integer... latents) {
    return LayerCandidates.newBuilder().setLayer(layer).addAllLatents(List.of(latents)).build();
  }

  @Test
  void tasksAreNumberedInLayerOrderAndNoLargerThanTheBatch() {
    TraceResponse trace = TraceResponse.newBuilder().setTarget(2)
        .addCandidates(candidates(0, 3, 7, 40)).addCandidates(candidates(1, 4, 7, 40)).addCandidates(candidates(2, 9)).build();
    ModelRef ref = ModelRef.newBuilder().setModel("m").setSaes("s").build();
    JobSpec spec = JobSpec.newBuilder().setRef(ref).setTaskBatchSize(2).build();
    JobPlanner.Plan plan = JobPlanner.plan("j-1", spec, List.of(50256, 1, 2, 3), trace, new LayerRange(0, 3));

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

  @Test
  void aTraceWithoutCandidatesForAnAblatedLayerIsTheModelServersFault() {
    TraceResponse trace = TraceResponse.newBuilder().setTarget(2).addCandidates(candidates(0, 3)).build();
    JobSpec spec = JobSpec.newBuilder().setTaskBatchSize(2).build();
    ResgraphException e = assertThrows(ResgraphException.class,
        () -> JobPlanner.plan("j-1", spec, List.of(1, 2, 3), trace, new LayerRange(0, 3)));
    assertEquals(ResgraphException.Kind.INTERNAL, e.kind());
  }
}
