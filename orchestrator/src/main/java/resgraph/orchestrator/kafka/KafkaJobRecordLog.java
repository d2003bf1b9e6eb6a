package resgraph.orchestrator.kafka;

import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.common.KafkaException;
import resgraph.orchestrator.JobRecordLog;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.CompactedTopicView;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.platform.kafka.Topics;
import resgraph.platform.kafka.UnreadableRecords;
import resgraph.v1.JobRecord;

/**
 * The jobs' records in the compacted topic resgraph.jobs, keyed by job id: a write is acknowledged
 * by every in-sync replica before it returns; the latest record of each job wins on replay.
 *
 * <p>A job's latest record that cannot be read is kept as it was on resgraph.unreadable by the
 * replay, before the store decides what becomes of the job ({@link resgraph.orchestrator.JobStore}).
 * The replay is that topic's one reader that keeps such records: the workers and the graph service
 * follow the topic, and a copy from each of them at each of their starts would be noise. A record
 * a later one of the same job superseded is only logged: it no longer holds any job's state, and
 * kept at every start it would be kept again at the next, until compaction removed it.
 */
@Singleton
final class KafkaJobRecordLog implements JobRecordLog {

  private static final Duration WRITE_TIMEOUT = Duration.ofSeconds(30);

  /** The replay's name as a Kafka client, and as the reader its unreadable records name. */
  private static final String REPLAY = "resgraph-orchestrator-jobs";

  private final KafkaBroker broker;
  private final KafkaPublisher publisher;
  private final UnreadableRecords unreadable;

  KafkaJobRecordLog(KafkaBroker broker, KafkaPublisher publisher, UnreadableRecords unreadable) {
    this.broker = broker;
    this.publisher = publisher;
    this.unreadable = unreadable;
  }

  @Override
  public void write(JobRecord record) {
    String id = record.getJob().getId();
    try {
      KafkaPublisher.await(publisher.send(Topics.JOBS, id, record), WRITE_TIMEOUT);
    } catch (KafkaException e) {
      throw ResgraphException.unavailable("cannot record job " + id + " in Kafka topic " + Topics.JOBS + ": " + e.getMessage(), e);
    }
  }

  @Override
  public Replayed replay() {
    CompactedTopicView.Contents<JobRecord> read = CompactedTopicView.read(broker, Topics.JOBS, JobRecord.getDefaultInstance(), REPLAY);
    Map<String, String> reasons = new HashMap<>();
    read.unreadable().forEach((id, u) -> {
      unreadable.keep(u.record(), u.problem(), REPLAY);
      reasons.put(id, UnreadableRecords.reason(u.record(), u.problem()));
    });
    return new Replayed(read.values(), reasons);
  }
}
