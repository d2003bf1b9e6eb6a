package resgraph.platform.kafka;

import com.google.protobuf.MessageLite;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.kafka.TopicListener.Received;

/**
 * {@link TopicListener}'s work by the poll: each poll's records are processed as one batch, then
 * committed. If the batch failed, every partition is sought back to its first record of the poll
 * and the listener waits out its backoff before polling again, so no unprocessed record is ever
 * committed and the listener stays in its group meanwhile; what the failed attempt did finish
 * comes again and is found done.
 */
final class PollWork<V extends MessageLite> implements TopicListener.Work {

  private static final Logger LOG = LoggerFactory.getLogger(TopicListener.class);

  private final TopicListener<V> listener;
  private final TopicListener.BatchHandler<V> handler;

  PollWork(TopicListener<V> listener, TopicListener.BatchHandler<V> handler) {
    this.listener = listener;
    this.handler = handler;
  }

  @Override
  public void loop() throws InterruptedException {
    int failures = 0;
    while (listener.running()) {
      ConsumerRecords<String, byte[]> records;
      try {
        records = listener.consumer.poll(listener.idlePoll);
      } catch (WakeupException e) {
        throw e;
      } catch (KafkaException e) {
        // the client retries what is transient itself; a listener that died here would leave its records unprocessed
        Duration wait = listener.errors.retry().delay(++failures);
        LOG.warn("{}: polling {} failed, retrying in {} ms: {}", listener.name, listener.topic, wait.toMillis(), e.toString());
        if (!listener.pause(wait)) return;
        continue;
      }
      if (records.isEmpty()) continue;
      Exception failure = process(records);
      if (failure == null) {
        failures = 0;
        commit(records);
      } else {
        Duration wait = listener.errors.retry().delay(++failures);
        LOG.warn("{}: a batch of {} records failed, retrying in {} ms (attempt {}): {}", listener.name, records.count(),
            wait.toMillis(), failures, failure.toString());
        for (TopicPartition tp : records.partitions()) listener.consumer.seek(tp, records.records(tp).get(0).offset());
        if (!listener.pause(wait)) return;
      }
    }
  }

  /** Gives up the unreadable records, hands the rest to the handler and gives up what it refuses; returns what failed, if anything. */
  private Exception process(ConsumerRecords<String, byte[]> records) throws InterruptedException {
    List<Received<V>> received = new ArrayList<>();
    for (ConsumerRecord<String, byte[]> r : records) received.add(listener.read(r));
    try {
      List<V> values = new ArrayList<>();
      for (Received<V> r : received) {
        if (r.value() == null) {
          listener.errors.unreadable().giveUp(r.raw(), null, r.problem(), 0);
        } else {
          values.add(r.value());
        }
      }
      Map<V, String> refused = values.isEmpty() ? Map.of() : handler.handle(values);
      for (Received<V> r : received) {
        String reason = r.value() == null ? null : refused.get(r.value());
        if (reason != null) listener.errors.refused().giveUp(r.raw(), r.value(), reason, 1);
      }
      return null;
    } catch (InterruptedException e) {
      throw e;
    } catch (Exception e) {
      return e;
    }
  }

  private void commit(ConsumerRecords<String, byte[]> records) {
    Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
    for (TopicPartition tp : records.partitions()) {
      List<ConsumerRecord<String, byte[]>> in = records.records(tp);
      done.put(tp, new OffsetAndMetadata(in.get(in.size() - 1).offset() + 1));
    }
    listener.commit(done);
  }

  /** A poll's work holds no partition across polls: nothing to do when the group moves them. */
  @Override
  public Optional<ConsumerRebalanceListener> rebalance() {
    return Optional.empty();
  }

  @Override
  public void closed() {}
}
