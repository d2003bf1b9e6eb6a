package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.platform.ResgraphException;
import resgraph.v1.AblationTask;
import resgraph.v1.ChainSite;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerCandidates;
import resgraph.v1.Method;
import resgraph.v1.ModelRef;
import resgraph.v1.TraceResponse;

/** How a job's tasks cut METHOD.md step 2's candidates along its chain, as the trace reports them, on a trace written by hand. */
class JobPlannerTest {

  private static ChainSite site(String hook, int layer) {
    return ChainSite.newBuilder().setHookName(hook).setLayer(layer).build();
  }

  private static LayerCandidates candidates(String hook, Integer... latents) {
    return LayerCandidates.newBuilder().setHookName(hook).addAllLatents(List.of(latents)).build();
  }

  @Test
  void tasksAreNumberedInChainOrderEqualNoLargerThanTheBatchAndMeasuredAtTheNextSite() {
    // a chain that mixes kinds of site: 3m -> 3p -> 4m
    String mid3 = "blocks.3.hook_resid_mid", post3 = "blocks.3.hook_resid_post", mid4 = "blocks.4.hook_resid_mid";
    TraceResponse trace = TraceResponse.newBuilder().setTarget(2)
        .addChain(site(mid3, 3)).addChain(site(post3, 3)).addChain(site(mid4, 4))
        .addCandidates(candidates(mid4, 9)).addCandidates(candidates(mid3, 3, 7, 40)).addCandidates(candidates(post3, 4, 7, 40))
        .build();
    ModelRef ref = ModelRef.newBuilder().setModel("m").setSaes("s").build();
    JobSpec spec = JobSpec.newBuilder().setRef(ref).setTaskBatchSize(2).build();
    JobPlanner.Plan plan = JobPlanner.plan("j-1", spec, List.of(50256, 1, 2, 3), trace);

    assertEquals(6, plan.candidates());
    List<AblationTask> tasks = plan.tasks();
    assertEquals(List.of(mid3, mid3, post3, post3), tasks.stream().map(AblationTask::getHookName).toList(), "the last site is not ablated");
    assertEquals(List.of(post3, post3, mid4, mid4), tasks.stream().map(AblationTask::getMeasureHookName).toList());
    assertEquals(List.of(3, 3, 3, 3), tasks.stream().map(AblationTask::getLayer).toList());
    assertEquals(List.of(List.of(3), List.of(7, 40), List.of(4), List.of(7, 40)), tasks.stream().map(AblationTask::getLatentsList).toList());
    assertEquals(List.of(0, 1, 2, 3), tasks.stream().map(AblationTask::getTask).toList());
    for (AblationTask t : tasks) {
      assertEquals("j-1", t.getJobId());
      assertEquals(ref, t.getRef());
      assertEquals(2, t.getTarget());
      assertEquals(List.of(50256, 1, 2, 3), t.getTokensList());
    }
  }

  @Test
  void aSitesCandidatesAreSplitIntoEqualTasksNotFullOnesAndARemnant() {
    String pre0 = "blocks.0.hook_resid_pre", pre1 = "blocks.1.hook_resid_pre";
    Integer[] many = IntStream.range(0, 1037).boxed().toArray(Integer[]::new);
    TraceResponse trace = TraceResponse.newBuilder().setTarget(3).addChain(site(pre0, 0)).addChain(site(pre1, 1))
        .addCandidates(candidates(pre0, many)).addCandidates(candidates(pre1, 2)).build();
    JobSpec spec = JobSpec.newBuilder().setTaskBatchSize(1024).build();
    List<AblationTask> tasks = JobPlanner.plan("j-3", spec, List.of(50256, 1, 2, 3), trace).tasks();
    assertEquals(List.of(518, 519), tasks.stream().map(AblationTask::getLatentsCount).toList());
    assertEquals(List.of(many), tasks.stream().flatMap(t -> t.getLatentsList().stream()).toList(), "every candidate once, in order");
  }

  @Test
  void anApproximateMethodTakesEachSitesCandidatesInOneTaskAndTellsTheWorker() {
    String pre0 = "blocks.0.hook_resid_pre", pre1 = "blocks.1.hook_resid_pre", pre2 = "blocks.2.hook_resid_pre";
    TraceResponse trace = TraceResponse.newBuilder().setTarget(3)
        .addChain(site(pre0, 0)).addChain(site(pre1, 1)).addChain(site(pre2, 2))
        .addCandidates(candidates(pre0, 1, 5, 8)).addCandidates(candidates(pre1, 2, 6)).addCandidates(candidates(pre2, 4))
        .build();
    JobSpec spec = JobSpec.newBuilder().setTaskBatchSize(2).setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(7).build();
    List<AblationTask> tasks = JobPlanner.plan("j-2", spec, List.of(50256, 1, 2, 3), trace).tasks();
    assertEquals(List.of(List.of(1, 5, 8), List.of(2, 6)), tasks.stream().map(AblationTask::getLatentsList).toList(),
        "the gradients serve every latent of a site at once, whatever the batch size");
    for (AblationTask t : tasks) {
      assertEquals(Method.METHOD_INTEGRATED_GRADIENTS, t.getMethod());
      assertEquals(7, t.getIgSteps());
    }
  }

  @Test
  void aTraceWithoutCandidatesForAnAblatedSiteIsTheModelServersFault() {
    TraceResponse trace = TraceResponse.newBuilder().setTarget(2).addChain(site("blocks.0.hook_resid_pre", 0))
        .addChain(site("blocks.1.hook_resid_pre", 1)).addCandidates(candidates("blocks.1.hook_resid_pre", 3)).build();
    JobSpec spec = JobSpec.newBuilder().setTaskBatchSize(2).build();
    ResgraphException e = assertThrows(ResgraphException.class, () -> JobPlanner.plan("j-1", spec, List.of(1, 2, 3), trace));
    assertEquals(ResgraphException.Kind.INTERNAL, e.kind());
  }
}
