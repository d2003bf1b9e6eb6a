package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.time.Instant;
import java.util.List;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import resgraph.orchestrator.kafka.JobEventListener;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.testkit.KafkaProbe.Read;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;
import resgraph.v1.UnreadableRecord;

/**
 * Records of the orchestrator's two topics that cannot be read: each is kept as it was on
 * resgraph.unreadable, the job it is keyed by fails saying where it was and what was wrong, and
 * the other jobs go on.
 */
class UnreadableRecordsTest extends OrchestratorTest {

  /** A varint that never ends: no protobuf parser accepts it. */
  private static final byte[] GARBAGE = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff};

  private static Job submit() {
    return h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(3).setTaskBatchSize(20).build());
  }

  /** Every dead letter of the record at this place. */
  private static List<UnreadableRecord> letters(RecordMetadata at) {
    return h.kafka.readAll(Topics.UNREADABLE, UnreadableRecord.parser(), u -> u.getTopic().equals(at.topic())
        && u.getPartition() == at.partition() && u.getOffset() == at.offset()).stream().map(Read::value).toList();
  }

  /** Checks the one dead letter of the garbage sent to {@code at} under {@code key}, and returns what it says was wrong. */
  private static String keptOnce(RecordMetadata at, String key, String consumer, String type) {
    UnreadableRecord letter = Await.until("the record at " + at + " kept", OrchestratorUnderTest.DEADLINE, () -> letters(at),
        l -> !l.isEmpty()).get(0);
    String problem = letter.getProblem();
    assertTrue(problem.startsWith("the value is not a valid " + type + " ("), problem);
    assertEquals(UnreadableRecord.newBuilder().setTopic(at.topic()).setPartition(at.partition()).setOffset(at.offset()).setKey(key)
        .setValue(ByteString.copyFrom(GARBAGE)).setValueSize(GARBAGE.length).setProblem(problem).setConsumer(consumer).build(), letter);
    assertEquals(1, letters(at).size(), "kept once");
    return problem;
  }

  private static void assertFailedBy(Job job, RecordMetadata at, String problem) {
    assertEquals(Phase.PHASE_FAILED, job.getPhase());
    assertTrue(job.getError().contains("(" + at.topic() + " partition " + at.partition() + " offset " + at.offset() + ", key "
        + job.getId() + "): " + problem), job.getError());
  }

  @Test
  void anUnreadableEventIsKeptFailsItsJobAndTheNextEventIsCounted() {
    Job job = submit(), other = submit();
    RecordMetadata bad = h.kafka.send(Topics.JOB_EVENTS, null, job.getId(), GARBAGE);
    // the next record of the garbage's partition, though another job's: counting it shows the listener went past
    h.kafka.send(Topics.JOB_EVENTS, bad.partition(), other.getId(), OrchestratorUnderTest.stored(other.getId(), 0, 5).toByteArray());

    Job failed = h.awaitPhase(job.getId(), Phase.PHASE_FAILED);
    String problem = keptOnce(bad, job.getId(), JobEventListener.GROUP, "JobEvent");
    assertFailedBy(failed, bad, problem);
    assertEquals(failed, h.latest(job.getId()).getJob(), "recorded, so a restarted orchestrator knows it failed");
    Job counted = Await.until("the other job's event counted", OrchestratorUnderTest.DEADLINE, () -> h.get(other.getId()),
        j -> j.getProgress().getTasksDone() == 1);
    assertEquals(Phase.PHASE_RUNNING, counted.getPhase());

    // garbage again (as a redelivery would bring it): the job has failed already, and stays as it failed
    h.awaitConsumed(h.kafka.send(Topics.JOB_EVENTS, bad.partition(), job.getId(), GARBAGE));
    assertEquals(failed, h.get(job.getId()));
  }

  @Test
  void aJobWhoseLatestRecordIsUnreadableFailsAtTheNextStartAndTheOthersAreAsTheyWere() {
    Job job = submit(), other = submit();
    Job otherBefore = Await.until("the other job running", OrchestratorUnderTest.DEADLINE, () -> h.get(other.getId()),
        j -> j.getPhase() == Phase.PHASE_RUNNING);
    Job running = h.awaitPhase(job.getId(), Phase.PHASE_RUNNING);
    h.stopOrchestrator();
    RecordMetadata bad = h.kafka.send(Topics.JOBS, null, job.getId(), GARBAGE);
    // the next record of the garbage's partition: knowing its job shows the replay went past
    Job after = Job.newBuilder().setId(job.getId() + "-after").setPhase(Phase.PHASE_CANCELLED)
        .setCreated(JobLifecycle.timestamp(Instant.now())).build();
    h.kafka.send(Topics.JOBS, bad.partition(), after.getId(), JobRecord.newBuilder().setJob(after).build().toByteArray());
    h.startOrchestrator();

    Job failed = h.get(job.getId());
    String problem = keptOnce(bad, job.getId(), "resgraph-orchestrator-jobs", "JobRecord");
    assertFailedBy(failed, bad, problem);
    assertEquals(running.getSpec(), failed.getSpec(), "what its last readable record said is kept");
    assertEquals(running.getProgress().getTasksTotal(), failed.getProgress().getTasksTotal());
    assertEquals(otherBefore, h.get(other.getId()));
    assertEquals(after, h.get(after.getId()));
    assertEquals(failed, h.latest(job.getId()).getJob(), "written over the unreadable record");

    // the next start reads the failed record: the job stays as it failed, and nothing is kept again
    h.stopOrchestrator();
    h.startOrchestrator();
    assertEquals(failed, h.get(job.getId()));
    assertEquals(1, letters(bad).size());
  }
}
