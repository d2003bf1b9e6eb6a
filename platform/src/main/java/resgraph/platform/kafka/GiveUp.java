package resgraph.platform.kafka;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.slf4j.LoggerFactory;

/**
 * What a listener does with a record it will never process: make that durable (a dead letter, a
 * failed job) or only log it. The record's offset is committed once this returns.
 *
 * @param <V> the listener's values
 */
@FunctionalInterface
public interface GiveUp<V> {

  /**
   * @param value the record's value, or null for a record that could not be read
   * @param attempts how many times its work was tried (0 for a record that could not be read)
   * @throws org.apache.kafka.common.errors.RetriableException when giving up could not be made
   *     durable in time: the record is then tried again
   */
  void giveUp(ConsumerRecord<String, byte[]> record, V value, String reason, int attempts) throws Exception;

  /** Logs the record and moves past it: it carries nothing that can be done, and nobody to tell. */
  static <V> GiveUp<V> skip() {
    return (r, value, reason, attempts) -> LoggerFactory.getLogger(GiveUp.class).error("skipping {}-{} offset {} (key {}): {}",
        r.topic(), r.partition(), r.offset(), r.key(), reason);
  }
}
