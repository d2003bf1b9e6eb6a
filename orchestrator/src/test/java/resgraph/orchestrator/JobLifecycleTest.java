package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.Status;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import resgraph.platform.ResgraphException;
import resgraph.platform.grpc.GrpcStatuses;
import resgraph.platform.kafka.JobEvents;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;
import resgraph.v1.Progress;
import resgraph.v1.TaskStored;
import resgraph.v1.Timings;

/** The rules of a job's record, one by one. */
class JobLifecycleTest {

  private static final Instant CREATED = Instant.parse("2026-11-26T12:00:00Z");
  private static final Duration SECOND = Duration.ofSeconds(1);

  private static JobRecord job(Phase phase, int tasks) {
    return JobRecord.newBuilder().setJob(Job.newBuilder().setId("j").setPhase(phase)
        .setProgress(Progress.newBuilder().setTasksTotal(tasks)).setCreated(JobLifecycle.timestamp(CREATED))).build();
  }

  private static JobRecord count(JobRecord r, JobEvent... events) {
    return JobLifecycle.counted(r, List.of(events), CREATED.plusSeconds(10));
  }

  @Test
  void aTaskStoredTwiceCountsOnceWithTheEdgesOfItsFirstReport() {
    JobRecord r = count(job(Phase.PHASE_RUNNING, 4), OrchestratorUnderTest.stored("j", 2, 7), OrchestratorUnderTest.stored("j", 2, 9), OrchestratorUnderTest.stored("j", 0, 1));
    assertEquals(List.of(0, 2), r.getStoredTasksList());
    assertEquals(2, r.getJob().getProgress().getTasksDone());
    assertEquals(8, r.getJob().getProgress().getEdgesWritten());
    // 2 tasks in 10 s, 2 to go
    assertEquals(10.0, r.getJob().getProgress().getEtaSeconds(), 1e-9);
    assertSame(r, count(r, OrchestratorUnderTest.stored("j", 2, 7)), "nothing new: the same record, so nothing is written");
  }

  @Test
  void theLastTaskStoredMakesTheJobFinalizing() {
    JobRecord r = count(job(Phase.PHASE_RUNNING, 2), OrchestratorUnderTest.stored("j", 0, 1), OrchestratorUnderTest.stored("j", 1, 1));
    assertEquals(Phase.PHASE_FINALIZING, r.getJob().getPhase());
    assertEquals(false, r.getJob().getProgress().hasEtaSeconds());
    assertEquals(Phase.PHASE_DONE, JobLifecycle.finalized(r, SECOND, CREATED.plusSeconds(30)).getJob().getPhase());
  }

  @Test
  void timingsAddUpEachStoredTaskOnceAndTheStagesAroundThem() {
    JobRecord r = JobLifecycle.running(job(Phase.PHASE_PLANNING, 2), Duration.ofMillis(1500));
    JobEvent first = JobEvent.newBuilder().setJobId("j").setStored(TaskStored.newBuilder().setTask(0).setEdges(3)
        .setAblateSeconds(2).setWriteSeconds(0.5)).build();
    JobEvent second = JobEvent.newBuilder().setJobId("j").setStored(TaskStored.newBuilder().setTask(1).setEdges(3)
        .setAblateSeconds(1).setWriteSeconds(0.25)).build();
    r = count(r, first, first, second);
    r = JobLifecycle.finalized(r, Duration.ofSeconds(4), CREATED.plusSeconds(30));
    Timings t = r.getJob().getTimings();
    assertEquals(1.5, t.getPlanning(), 1e-9);
    assertEquals(3, t.getAblation(), 1e-9);
    assertEquals(0.75, t.getWriting(), 1e-9);
    assertEquals(4, t.getFinalization(), 1e-9);
    assertEquals(30, t.getWall(), 1e-9);
  }

  @Test
  void aJobWithoutTasksIsFinalizingAsSoonAsItRuns() {
    assertEquals(Phase.PHASE_FINALIZING, JobLifecycle.running(job(Phase.PHASE_PLANNING, 0), SECOND).getJob().getPhase());
    assertEquals(Phase.PHASE_RUNNING, JobLifecycle.running(job(Phase.PHASE_PLANNING, 1), SECOND).getJob().getPhase());
  }

  @Test
  void tasksStoredWhilePlanningFinalizeTheJobOnceItRuns() {
    JobRecord r = count(job(Phase.PHASE_PLANNING, 1), OrchestratorUnderTest.stored("j", 0, 1));
    assertEquals(Phase.PHASE_PLANNING, r.getJob().getPhase());
    assertEquals(Phase.PHASE_FINALIZING, JobLifecycle.running(r, SECOND).getJob().getPhase());
  }

  @Test
  void eventsForTasksTheJobDoesNotHaveAreIgnored() {
    JobRecord r = job(Phase.PHASE_RUNNING, 2);
    assertSame(r, count(r, OrchestratorUnderTest.stored("j", 2, 1), OrchestratorUnderTest.stored("j", -1, 1), OrchestratorUnderTest.failed("j", 5, "no")));
  }

  @Test
  void anEndedJobNeverChanges() {
    for (Phase p : List.of(Phase.PHASE_DONE, Phase.PHASE_FAILED, Phase.PHASE_CANCELLED)) {
      JobRecord r = job(p, 2);
      assertSame(r, count(r, OrchestratorUnderTest.stored("j", 0, 1), OrchestratorUnderTest.failed("j", 1, "no")));
      assertSame(r, count(r, JobEvents.jobFailed("j", "a record of it cannot be read")));
      assertSame(r, JobLifecycle.failed(r, "late"));
      assertSame(r, JobLifecycle.finalized(r, SECOND, CREATED.plusSeconds(30)));
      ResgraphException e = assertThrows(ResgraphException.class, () -> JobLifecycle.cancelled(r));
      assertEquals(Status.Code.FAILED_PRECONDITION, GrpcStatuses.code(e.kind()), "what a client is answered");
    }
  }

  @Test
  void aFailedTaskFailsTheJobAndLaterEventsInTheBatchAreNotCounted() {
    JobRecord r = count(job(Phase.PHASE_RUNNING, 3), OrchestratorUnderTest.stored("j", 0, 1), OrchestratorUnderTest.failed("j", 1, "bad weights"),
        OrchestratorUnderTest.stored("j", 2, 1));
    assertEquals(Phase.PHASE_FAILED, r.getJob().getPhase());
    assertEquals("task 1 failed: bad weights", r.getJob().getError());
    assertEquals(List.of(0), r.getStoredTasksList());
  }

  /** A record of the job that cannot be read fails it whatever task it held; the first such failure is the one it keeps. */
  @Test
  void aFailureOfTheWholeJobFailsItWithItsReasonAndLaterEventsInTheBatchAreNotCounted() {
    JobRecord r = count(job(Phase.PHASE_RUNNING, 3), OrchestratorUnderTest.stored("j", 0, 1), JobEvents.jobFailed("j", "unreadable at offset 7"),
        OrchestratorUnderTest.stored("j", 2, 1), JobEvents.jobFailed("j", "unreadable at offset 8"));
    assertEquals(Phase.PHASE_FAILED, r.getJob().getPhase());
    assertEquals("unreadable at offset 7", r.getJob().getError());
    assertEquals(List.of(0), r.getStoredTasksList());
    assertSame(r, count(r, JobEvents.jobFailed("j", "unreadable at offset 7")), "redelivered, it changes nothing");
  }
}
