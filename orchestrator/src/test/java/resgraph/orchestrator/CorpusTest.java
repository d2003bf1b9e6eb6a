package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.testkit.Await;
import resgraph.v1.CancelJobRequest;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusMember;
import resgraph.v1.CorpusPrompt;
import resgraph.v1.CorpusSpec;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobSpec;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.Phase;

/** A corpus through JobService: one object over a job per prompt, planned, watched, finished, restarted and cancelled. */
class CorpusTest extends OrchestratorTest {

  private static final List<String> PROMPTS = List.of("The cat sat on the mat", "When Mary and John went to the store",
      "In the beginning was the word");

  private static CorpusSpec.Builder corpus(List<String> prompts) {
    CorpusSpec.Builder c = CorpusSpec.newBuilder().setJob(JobSpec.newBuilder().setRef(h.ref).setLayerStart(0).setLayerEnd(3));
    prompts.forEach(p -> c.addPrompts(CorpusPrompt.newBuilder().setPrompt(p)));
    return c;
  }

  private static CorpusJob get(String id) {
    return h.jobs().getCorpusJob(GetJobRequest.newBuilder().setId(id).build());
  }

  /** Every prompt has its job, planned. */
  private static CorpusJob planned(String id, int prompts) {
    return Await.until("corpus " + id + " planned", OrchestratorUnderTest.DEADLINE, () -> get(id),
        c -> c.getMembersCount() == prompts && c.getMembersList().stream().noneMatch(m -> m.getPhase() == Phase.PHASE_PLANNING));
  }

  private static void storeAll(Job job) {
    h.publish(IntStream.range(0, job.getProgress().getTasksTotal())
        .mapToObj(t -> OrchestratorUnderTest.stored(job.getId(), t, 10 + t)).toArray(JobEvent[]::new));
  }

  @Test
  void aCorpusIsItsPromptsJobsAndEndsWhenTheyHave() {
    CorpusSpec.Builder spec = corpus(PROMPTS);
    spec.getPromptsBuilder(1).setTarget(999); // this prompt's job cannot be planned; the others still run
    CorpusJob submitted = h.jobs().submitCorpus(spec.build());
    assertTrue(submitted.getId().startsWith("c-"), submitted.getId());
    assertTrue(submitted.getMembersCount() >= 1, "the first prompt is queued before SubmitCorpus answers");

    CorpusJob c = planned(submitted.getId(), 3);
    assertEquals(Phase.PHASE_RUNNING, c.getPhase());
    assertEquals(3, c.getProgress().getPromptsTotal());
    List<Job> jobs = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      CorpusMember m = c.getMembers(i);
      assertEquals(i, m.getIndex());
      Job job = h.get(m.getJobId());
      jobs.add(job);
      assertEquals(submitted.getId(), job.getCorpus().getCorpusId());
      assertEquals(i, job.getCorpus().getIndex());
      assertEquals(3, job.getCorpus().getSize());
      assertEquals(PROMPTS.get(i), job.getSpec().getPrompt());
    }
    assertEquals(Phase.PHASE_FAILED, c.getMembers(1).getPhase());
    assertTrue(c.getMembers(1).getError().contains("999"), c.getMembers(1).getError());
    assertEquals(1, c.getProgress().getPromptsFailed());

    Iterator<CorpusJob> watch = h.jobs().watchCorpus(GetJobRequest.newBuilder().setId(c.getId()).build());
    assertEquals(c.getMembersList().stream().map(CorpusMember::getPhase).toList(),
        watch.next().getMembersList().stream().map(CorpusMember::getPhase).toList(), "the corpus as it is, first");
    storeAll(jobs.get(0));
    storeAll(jobs.get(2));
    CorpusJob last = null;
    while (watch.hasNext()) last = watch.next();
    assertEquals(Phase.PHASE_DONE, last.getPhase(), "a corpus is done when its jobs have ended, some of them done");
    assertEquals(2, last.getProgress().getPromptsDone());
    assertEquals(1, last.getProgress().getPromptsFailed());
    long edges = 0;
    for (Job j : List.of(jobs.get(0), jobs.get(2))) edges += IntStream.range(0, j.getProgress().getTasksTotal()).map(t -> 10 + t).sum();
    assertEquals(edges, last.getProgress().getEdgesWritten());
    assertFalse(last.getProgress().hasEtaSeconds());

    // nothing of a corpus lives outside its jobs' records: a new orchestrator answers the same
    h.stopOrchestrator();
    h.startOrchestrator();
    CorpusJob after = get(c.getId());
    assertEquals(last.getMembersList(), after.getMembersList());
    assertEquals(Phase.PHASE_DONE, after.getPhase());
  }

  @Test
  void aSpecNoPromptCouldRunIsRefusedWithNothingStored() {
    int before = h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsCount();
    refused(Status.Code.INVALID_ARGUMENT, corpus(List.of()), "at least one prompt");
    refused(Status.Code.INVALID_ARGUMENT, corpus(PROMPTS).setJob(JobSpec.newBuilder().setRef(h.ref).setPrompt("x")), "prompts");
    refused(Status.Code.INVALID_ARGUMENT, corpus(List.of("fine", "")), "prompts[1]");
    refused(Status.Code.INVALID_ARGUMENT, corpus(PROMPTS).setJob(JobSpec.newBuilder().setRef(h.ref).setLayerStart(2).setLayerEnd(3)),
        "at least two");
    assertEquals(before, h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsCount());
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> get("c-20260101-000000-0000"));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }

  /** Two jobs of a corpus in flight (the default): the third prompt is planned once one of them has ended. */
  @Test
  void aCorpusPlansAPromptOnceAJobBeforeItHasEnded() throws InterruptedException {
    CorpusJob c = planned(h.jobs().submitCorpus(corpus(PROMPTS).build()).getId(), 2);
    Thread.sleep(1000); // time enough for a planner that did not wait to plan the third
    assertEquals(2, get(c.getId()).getMembersCount());
    assertEquals(Phase.PHASE_RUNNING, get(c.getId()).getPhase(), "a prompt waits for its turn while the corpus runs");
    storeAll(h.get(c.getMembers(0).getJobId()));
    h.awaitPhase(c.getMembers(0).getJobId(), Phase.PHASE_DONE);
    CorpusJob all = planned(c.getId(), 3);
    assertEquals(PROMPTS.get(2), h.get(all.getMembers(2).getJobId()).getSpec().getPrompt());
  }

  @Test
  void cancellingACorpusCancelsItsJobsAndPlansNoMore() throws InterruptedException {
    CorpusJob c = planned(h.jobs().submitCorpus(corpus(PROMPTS).build()).getId(), 2);
    CorpusJob cancelled = h.jobs().cancelCorpus(CancelJobRequest.newBuilder().setId(c.getId()).build());
    assertEquals(Phase.PHASE_CANCELLED, cancelled.getPhase());
    for (CorpusMember m : cancelled.getMembersList()) assertEquals(Phase.PHASE_CANCELLED, h.get(m.getJobId()).getPhase());
    Thread.sleep(1000); // time enough for a planner that did not stop to plan the third
    assertEquals(2, get(c.getId()).getMembersCount());
    assertEquals(Phase.PHASE_CANCELLED, get(c.getId()).getPhase());
  }

  private static void refused(Status.Code code, CorpusSpec.Builder spec, String... mentions) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> h.jobs().submitCorpus(spec.build()));
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    for (String m : mentions) assertTrue(e.getStatus().getDescription().contains(m), e.getStatus().getDescription());
  }
}
