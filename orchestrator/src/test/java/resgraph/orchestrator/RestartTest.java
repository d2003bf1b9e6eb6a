package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.testkit.Await;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.Phase;

/** The orchestrator's state lives in Kafka: a new one carries on where the last one stopped. */
class RestartTest extends OrchestratorTest {

  private static Job submit() {
    return h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(3).setTaskBatchSize(20).build());
  }

  private static JobEvent[] stored(Job job, int from, int to) {
    return IntStream.range(from, to).mapToObj(t -> OrchestratorUnderTest.stored(job.getId(), t, 100 + t)).toArray(JobEvent[]::new);
  }

  private static List<Job> list() {
    return h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList();
  }

  @Test
  void aNewOrchestratorAnswersAsTheOldOneAndFinishesItsJobs() throws Exception {
    Job job = submit();
    int n = job.getProgress().getTasksTotal(), half = n / 2;
    h.publish(stored(job, 0, half));
    Job halfway = Await.until("half the tasks counted", OrchestratorUnderTest.DEADLINE, () -> h.get(job.getId()), j -> j.getProgress().getTasksDone() == half);
    List<Job> before = list();

    h.stopOrchestrator();
    h.startOrchestrator();
    assertEquals(before, list());
    assertEquals(halfway, h.get(job.getId()));

    // the first half again (as a redelivery would bring it) and the rest
    h.publish(stored(job, 0, n));
    Job done = h.awaitPhase(job.getId(), Phase.PHASE_DONE);
    assertEquals(n, done.getProgress().getTasksDone());
    assertEquals(IntStream.range(0, n).mapToLong(t -> 100 + t).sum(), done.getProgress().getEdgesWritten());
    assertEquals(1, h.graph.pruneCalls(job.getId()));
  }

  @Test
  void eventsPublishedWhileNoOrchestratorRunsAreCounted() throws Exception {
    Job job = submit();
    h.stopOrchestrator();
    h.publish(stored(job, 0, job.getProgress().getTasksTotal()));
    h.startOrchestrator();
    h.awaitPhase(job.getId(), Phase.PHASE_DONE);
  }

  /** Finalization is idempotent, so a job caught FINALIZING is finalized again: it is pruned at least once. */
  @Test
  void aJobStillFinalizingIsFinalizedByTheNextOrchestrator() throws Exception {
    Status down = Status.UNAVAILABLE.withDescription("down for maintenance");
    h.graph.pruneAnswers.addAll(Collections.nCopies(1000, down));
    Job job = submit();
    h.publish(stored(job, 0, job.getProgress().getTasksTotal()));
    h.awaitPhase(job.getId(), Phase.PHASE_FINALIZING);
    Await.until("a first Prune call", OrchestratorUnderTest.DEADLINE, () -> h.graph.pruneCalls(job.getId()), c -> c >= 1);

    h.stopOrchestrator();
    int calls = h.graph.pruneCalls(job.getId());
    h.graph.pruneAnswers.clear();
    h.startOrchestrator();
    h.awaitPhase(job.getId(), Phase.PHASE_DONE);
    assertTrue(h.graph.pruneCalls(job.getId()) > calls);
  }
}
