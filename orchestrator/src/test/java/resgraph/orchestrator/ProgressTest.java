package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.CancelJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.Latent;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.Phase;
import resgraph.v1.TokenValue;

/**
 * A job's life after Submit, driven by JobEvents published here as the graph service and the
 * workers publish them: counting, failing, finalizing, watching and cancelling.
 */
class ProgressTest extends OrchestratorTest {

  /** A job of several tasks (about 20 latents each). */
  private static Job submit() {
    Job job = h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(3).setTaskBatchSize(20).build());
    assertTrue(job.getProgress().getTasksTotal() >= 3, "several tasks: " + job.getProgress());
    return job;
  }

  private static JobEvent[] storedAll(Job job) {
    return IntStream.range(0, job.getProgress().getTasksTotal()).mapToObj(t -> OrchestratorUnderTest.stored(job.getId(), t, 10 + t))
        .toArray(JobEvent[]::new);
  }

  /** The circuit is pruned and annotated exactly once here, where nothing fails; see Finalization for when it is again. */
  @Test
  void eachTaskCountsOnceAndTheJobIsFinalizedOnce() {
    Job job = submit();
    int n = job.getProgress().getTasksTotal();
    List<JobEvent> events = new ArrayList<>();
    for (int t = 0; t < n; t++) {
      events.add(OrchestratorUnderTest.stored(job.getId(), t, 10 + t));
      // a redelivered store reports the task again, with edges that must not count twice
      if (t % 2 == 0) events.add(OrchestratorUnderTest.stored(job.getId(), t, 1000));
    }
    events.add(OrchestratorUnderTest.stored(job.getId(), n, 1000)); // a task the job does not have
    h.publish(events.subList(0, n / 2).toArray(JobEvent[]::new));
    Job half = Await.until("half the tasks counted", OrchestratorUnderTest.DEADLINE, () -> h.get(job.getId()), j -> j.getProgress().getTasksDone() >= n / 4);
    assertEquals(Phase.PHASE_RUNNING, half.getPhase());
    h.publish(events.subList(n / 2, events.size()).toArray(JobEvent[]::new));

    Job done = h.awaitPhase(job.getId(), Phase.PHASE_DONE);
    assertEquals(n, done.getProgress().getTasksDone());
    assertEquals(IntStream.range(0, n).mapToLong(t -> 10 + t).sum(), done.getProgress().getEdgesWritten());
    assertEquals(job.getProgress().getCandidates(), done.getProgress().getCandidates());
    assertFalse(done.getProgress().hasEtaSeconds());
    assertTrue(JobLifecycle.instant(done.getUpdated()).isAfter(JobLifecycle.instant(job.getUpdated())));
    assertEquals(1, h.graph.pruneCalls(job.getId()));
    assertTrue(h.graph.counted.contains(job.getId()), "added to the corpus statistics");
    // the circuit's nodes annotated with what the model server's LogitEffects says of each alone, in
    // their order, over more than one call: the same tokens, the values up to float32 rounding (a
    // batch's products round differently with what else is in it)
    AnnotateRequest annotated = h.graph.annotated.get(job.getId());
    List<LatentLogitEffects> got = annotated.getAnnotationsList();
    assertTrue(got.size() > 32, "more nodes than one LogitEffects call takes: " + got.size());
    for (LatentLogitEffects g : got) {
      LatentLogitEffects alone = h.model().logitEffects(LogitEffectsRequest.newBuilder().setRef(h.ref)
          .addAllTokens(job.getTokensList()).addLatents(g.getLatent()).setTarget(job.getTarget()).setTop(10).build())
          .getEffects(0);
      assertEquals(alone.getLatent(), g.getLatent());
      assertSameTokens(alone.getPromotesList(), g.getPromotesList());
      assertSameTokens(alone.getSuppressesList(), g.getSuppressesList());
    }

    JobRecord recorded = h.latest(job.getId());
    assertEquals(done, recorded.getJob());
    assertEquals(IntStream.range(0, n).boxed().toList(), recorded.getStoredTasksList());
  }

  @Test
  void progressHasAnEtaWhileTasksRemain() {
    Job job = submit();
    h.publish(OrchestratorUnderTest.stored(job.getId(), 0, 5));
    Job one = Await.until("the first task counted", OrchestratorUnderTest.DEADLINE, () -> h.get(job.getId()), j -> j.getProgress().getTasksDone() == 1);
    assertTrue(one.getProgress().hasEtaSeconds() && one.getProgress().getEtaSeconds() >= 0, one.getProgress().toString());
  }

  @Test
  void aFailedTaskFailsTheJobWithItsReason() {
    Job job = submit();
    h.publish(OrchestratorUnderTest.stored(job.getId(), 0, 3), OrchestratorUnderTest.failed(job.getId(), 1, "the model server ran out of memory"));
    Job failed = h.awaitPhase(job.getId(), Phase.PHASE_FAILED);
    assertTrue(failed.getError().contains("task 1") && failed.getError().contains("the model server ran out of memory"),
        failed.getError());
    assertEquals(1, failed.getProgress().getTasksDone());

    // the rest of its tasks change nothing, and it is never finalized
    h.awaitConsumed(h.publish(storedAll(job)));
    assertEquals(failed, h.get(job.getId()));
    assertEquals(0, h.graph.pruneCalls(job.getId()));
    assertEquals(Phase.PHASE_FAILED, h.latest(job.getId()).getJob().getPhase());
  }

  /** A failure reported for a task that is already stored (a redelivery that went wrong) is moot. */
  @Test
  void aFailureOfAStoredTaskIsIgnored() {
    Job job = submit();
    h.awaitConsumed(h.publish(OrchestratorUnderTest.stored(job.getId(), 0, 3), OrchestratorUnderTest.failed(job.getId(), 0, "retried and failed")));
    Job now = h.get(job.getId());
    assertEquals(Phase.PHASE_RUNNING, now.getPhase());
    assertEquals(1, now.getProgress().getTasksDone());
  }

  @Test
  void watchersSeeMonotoneProgressUntilTheJobEnds() throws Exception {
    Job job = submit();
    JobStore store = h.bean(JobStore.class);
    Watching first = Watching.start(h, job.getId());
    Watching second = Watching.start(h, job.getId());
    Await.until("both watchers told the job as it is", OrchestratorUnderTest.DEADLINE, () -> first.seen().size() + second.seen().size(), n -> n == 2);
    assertEquals(job.getId(), first.seen().get(0).getId());
    assertEquals(Phase.PHASE_RUNNING, first.seen().get(0).getPhase());

    for (JobEvent e : storedAll(job)) h.publish(e);
    h.publish(storedAll(job)); // again: nothing more to tell
    first.ended.get(OrchestratorUnderTest.DEADLINE.toSeconds(), TimeUnit.SECONDS);
    second.ended.get(OrchestratorUnderTest.DEADLINE.toSeconds(), TimeUnit.SECONDS);

    for (Watching w : List.of(first, second)) {
      List<Job> seen = w.seen();
      assertEquals(Phase.PHASE_DONE, seen.get(seen.size() - 1).getPhase());
      assertEquals(job.getProgress().getTasksTotal(), seen.get(seen.size() - 1).getProgress().getTasksDone());
      for (int i = 1; i < seen.size(); i++) {
        Job a = seen.get(i - 1), b = seen.get(i);
        assertNotEquals(a, b, "each message is a change");
        assertTrue(b.getProgress().getTasksDone() >= a.getProgress().getTasksDone(), "tasks done never go down");
        assertTrue(b.getProgress().getEdgesWritten() >= a.getProgress().getEdgesWritten(), "edges never go down");
        assertTrue(b.getPhaseValue() >= a.getPhaseValue(), a.getPhase() + " then " + b.getPhase());
      }
    }
    assertEquals(first.seen(), second.seen());
    assertTrue(first.seen().stream().anyMatch(j -> j.getPhase() == Phase.PHASE_FINALIZING));
    Await.until("no watcher left", OrchestratorUnderTest.DEADLINE, store::watching, n -> n == 0);
  }

  @Test
  void aWatcherThatHangsUpIsDropped() {
    Job job = submit();
    JobStore store = h.bean(JobStore.class);
    int before = store.watching();
    Watching w = Watching.start(h, job.getId());
    Await.until("the watcher registered", OrchestratorUnderTest.DEADLINE, store::watching, n -> n == before + 1);
    w.hangUp();
    Await.until("the watcher dropped", OrchestratorUnderTest.DEADLINE, store::watching, n -> n == before);
    // the job goes on without it
    h.publish(storedAll(job));
    h.awaitPhase(job.getId(), Phase.PHASE_DONE);
  }

  @Test
  void finalizationIsRetriedWhileTheGraphServiceIsUnavailable() {
    h.graph.pruneAnswers.add(Status.UNAVAILABLE.withDescription("restarting"));
    h.graph.pruneAnswers.add(Status.UNAVAILABLE.withDescription("still restarting"));
    Job job = submit();
    h.publish(storedAll(job));
    h.awaitPhase(job.getId(), Phase.PHASE_DONE);
    assertEquals(3, h.graph.pruneCalls(job.getId()));
  }

  @Test
  void anyOtherFinalizationErrorFailsTheJob() {
    h.graph.pruneAnswers.add(Status.FAILED_PRECONDITION.withDescription("the circuit has no edges"));
    Job job = submit();
    h.publish(storedAll(job));
    Job failed = h.awaitPhase(job.getId(), Phase.PHASE_FAILED);
    assertTrue(failed.getError().contains("FAILED_PRECONDITION") && failed.getError().contains("the circuit has no edges"),
        failed.getError());
    assertEquals(1, h.graph.pruneCalls(job.getId()));
    assertFalse(h.graph.counted.contains(job.getId()), "a job whose edges could not be pruned is not counted");
  }

  @Test
  void aCancelledJobStaysCancelled() throws Exception {
    Job job = submit();
    Job cancelled = h.jobs().cancel(CancelJobRequest.newBuilder().setId(job.getId()).build());
    assertEquals(Phase.PHASE_CANCELLED, cancelled.getPhase());
    assertEquals(cancelled, h.get(job.getId()));
    assertEquals(cancelled, h.latest(job.getId()).getJob(), "workers read the cancellation from " + Topics.JOBS);

    h.awaitConsumed(h.publish(storedAll(job)));
    assertEquals(cancelled, h.get(job.getId()), "events after the cancellation change nothing");
    assertEquals(0, h.graph.pruneCalls(job.getId()));

    StatusRuntimeException again = assertThrows(StatusRuntimeException.class,
        () -> h.jobs().cancel(CancelJobRequest.newBuilder().setId(job.getId()).build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, again.getStatus().getCode());
    assertTrue(again.getStatus().getDescription().contains("already ended"), again.getStatus().getDescription());

    // watching an ended job tells it once and ends
    Watching w = Watching.start(h, job.getId());
    w.ended.get(OrchestratorUnderTest.DEADLINE.toSeconds(), TimeUnit.SECONDS);
    assertEquals(List.of(cancelled), w.seen());
  }

  @Test
  void unknownJobsAreNotFound() throws Exception {
    String id = "j-20000101-000000-beef";
    for (Runnable call : List.<Runnable>of(
        () -> h.get(id),
        () -> h.jobs().cancel(CancelJobRequest.newBuilder().setId(id).build()))) {
      StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
      assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
      assertTrue(e.getStatus().getDescription().contains(id), e.getStatus().getDescription());
    }
    Watching w = Watching.start(h, id);
    ExecutionException e = assertThrows(ExecutionException.class, () -> w.ended.get(OrchestratorUnderTest.DEADLINE.toSeconds(), TimeUnit.SECONDS));
    assertEquals(Status.Code.NOT_FOUND, Status.fromThrowable(e.getCause()).getCode());
  }

  @Test
  void listIsNewestFirst() {
    Job older = submit();
    Job newer = submit();
    List<String> ids = h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList().stream().map(Job::getId).toList();
    assertTrue(ids.indexOf(newer.getId()) < ids.indexOf(older.getId()), ids.toString());
    List<Job> jobs = h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList();
    for (int i = 1; i < jobs.size(); i++) {
      assertFalse(JobLifecycle.instant(jobs.get(i).getCreated()).isAfter(JobLifecycle.instant(jobs.get(i - 1).getCreated())));
    }
  }

  /**
   * The same ranked tokens up to float32 rounding: the values agree place by place, and a token in
   * one list but not the other is one that ties the last place.
   */
  private static void assertSameTokens(List<TokenValue> expected, List<TokenValue> actual) {
    double tolerance = 1e-5;
    assertEquals(expected.size(), actual.size());
    if (expected.isEmpty()) return; // a latent that does not fire promotes nothing, in any batch
    Map<Integer, Float> byId = new HashMap<>();
    for (TokenValue t : expected) byId.put(t.getId(), t.getValue());
    float last = expected.get(expected.size() - 1).getValue();
    for (int i = 0; i < actual.size(); i++) {
      TokenValue a = actual.get(i);
      assertEquals(expected.get(i).getValue(), a.getValue(), tolerance, "value at place " + i);
      Float e = byId.get(a.getId());
      if (e != null) assertEquals(e, a.getValue(), tolerance, "token " + a.getId());
      else assertEquals(last, a.getValue(), tolerance, "token " + a.getId() + " is in one list only and does not tie the last place");
    }
  }
}
