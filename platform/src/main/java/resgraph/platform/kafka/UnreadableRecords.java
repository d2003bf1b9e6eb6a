package resgraph.platform.kafka;

import com.google.protobuf.ByteString;
import jakarta.inject.Singleton;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.v1.UnreadableRecord;

/**
 * Records their consumers cannot read (no value, or not the protobuf their topic carries), kept as
 * they were on resgraph.unreadable, each an {@link UnreadableRecord} saying where it was and what
 * was wrong, keyed as it was; and the job its key names failed, so that it ends with the reason
 * instead of waiting forever for what the record held. Every listener gives its unreadable records
 * up through {@link #giveUp}, which is how each topic's consumers dead-letter in one way.
 */
@Singleton
public final class UnreadableRecords {

  private static final Logger LOG = LoggerFactory.getLogger(UnreadableRecords.class);
  /** Room left in a dead letter for what Kafka adds around it (batch and record headers, the key's length). */
  private static final int ENVELOPE_BYTES = 1 << 10;

  /** How a job is failed: by telling the orchestrator ({@link JobEvents#failed(String, String)}), or by the orchestrator itself. */
  @FunctionalInterface
  public interface FailJob {
    void fail(String jobId, String reason);
  }

  private final KafkaPublisher publisher;

  UnreadableRecords(KafkaPublisher publisher) {
    this.publisher = publisher;
  }

  /**
   * The give-up of a listener's unreadable records: each kept, then the job its key names failed
   * through {@code failJob} (a job already ended stays as it is, so a redelivered record changes
   * nothing). A record whose key names no job is kept and logged.
   *
   * @param consumer the listener's consumer group, which the dead letter names
   */
  public <V> GiveUp<V> giveUp(String consumer, FailJob failJob) {
    return (r, none, problem, attempts) -> {
      keep(r, problem, consumer);
      Optional<String> job = Topics.jobOf(r.topic(), r.key());
      if (job.isPresent()) {
        LOG.warn("{}-{} offset {} cannot be read, kept on {}; failing job {}: {}", r.topic(), r.partition(), r.offset(),
            Topics.UNREADABLE, job.get(), problem);
        failJob.fail(job.get(), reason(r, problem));
      } else {
        LOG.error("{}-{} offset {} cannot be read, kept on {}; its key ({}) names no job to fail: {}", r.topic(), r.partition(),
            r.offset(), Topics.UNREADABLE, r.key(), problem);
      }
    };
  }

  /**
   * Publishes the record's dead letter and returns once the broker has it.
   *
   * @throws org.apache.kafka.common.KafkaException as {@link KafkaPublisher#await} does
   */
  public void keep(ConsumerRecord<String, byte[]> record, String problem, String consumer) {
    publisher.publish(Topics.UNREADABLE, record.key(), letter(record, problem, consumer));
  }

  /** The reason its job fails with: where the record was, what was wrong, and where it is kept. */
  public static String reason(ConsumerRecord<String, byte[]> r, String problem) {
    return "a record of this job cannot be read (" + r.topic() + " partition " + r.partition() + " offset " + r.offset()
        + ", key " + r.key() + "): " + problem + "; it is kept on " + Topics.UNREADABLE;
  }

  /**
   * The dead letter, holding as much of the value as a message may: a record of the largest size
   * a topic takes, wrapped whole, would be refused, and its consumer could then never move past it.
   */
  static UnreadableRecord letter(ConsumerRecord<String, byte[]> r, String problem, String consumer) {
    UnreadableRecord.Builder letter = UnreadableRecord.newBuilder().setTopic(r.topic()).setPartition(r.partition())
        .setOffset(r.offset()).setKey(r.key() == null ? "" : r.key()).setProblem(problem).setConsumer(consumer);
    byte[] value = r.value() == null ? new byte[0] : r.value();
    // the key twice: in the letter, and as its record's key
    int room = Topics.MAX_MESSAGE_BYTES - ENVELOPE_BYTES - letter.build().getSerializedSize() - letter.getKeyBytes().size();
    return letter.setValueSize(value.length).setValue(ByteString.copyFrom(value, 0, Math.max(0, Math.min(value.length, room)))).build();
  }
}
