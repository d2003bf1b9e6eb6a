package resgraph.orchestrator.kafka;

import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.common.KafkaException;
import resgraph.orchestrator.JobRecordLog;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.CompactedTopicView;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.platform.kafka.Topics;
import resgraph.v1.JobRecord;

/**
 * The jobs' records in the compacted topic resgraph.jobs, keyed by job id: a write is acknowledged
 * by every in-sync replica before it returns; the latest record of each job wins on replay.
 */
@Singleton
final class KafkaJobRecordLog implements JobRecordLog {

  private static final Duration WRITE_TIMEOUT = Duration.ofSeconds(30);

  private final KafkaBroker broker;
  private final KafkaPublisher publisher;

  KafkaJobRecordLog(KafkaBroker broker, KafkaPublisher publisher) {
    this.broker = broker;
    this.publisher = publisher;
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
  public Map<String, JobRecord> replay() {
    return CompactedTopicView.read(broker, Topics.JOBS, JobRecord.getDefaultInstance(), "resgraph-orchestrator-jobs");
  }
}
