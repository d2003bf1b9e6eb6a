package resgraph.platform.kafka;

import com.google.protobuf.MessageLite;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.TopicListener.Received;

/**
 * {@link TopicListener}'s work by the poll: each poll's records are processed (one by one on a few
 * threads, or as one batch), then every partition is committed up to its first record not done.
 * If one failed, every partition is sought back to that record and the listener waits out its
 * backoff before polling again, so no unprocessed record is ever committed and the listener stays
 * in its group meanwhile; the records after it that were done come again and are found done.
 */
final class PollWork<V extends MessageLite> implements TopicListener.Work {

  private static final Logger LOG = LoggerFactory.getLogger(TopicListener.class);

  /** Processes a poll's records; says, for each record that failed, why. */
  private interface Processing<V> {
    Map<ConsumerRecord<String, byte[]>, Throwable> process(List<Received<V>> records) throws InterruptedException;
  }

  private final TopicListener<V> listener;
  private final Processing<V> processing;
  private final ExecutorService threads;

  private PollWork(TopicListener<V> listener, Processing<V> processing, ExecutorService threads) {
    this.listener = listener;
    this.processing = processing;
    this.threads = threads;
  }

  static <V extends MessageLite> PollWork<V> records(TopicListener<V> l, TopicListener.RecordHandler<V> handler, int parallelism) {
    ExecutorService threads = Executors.newFixedThreadPool(parallelism, r -> new Thread(r, l.name + "-worker"));
    return new PollWork<>(l, records -> {
      Map<ConsumerRecord<String, byte[]>, Future<?>> running = new LinkedHashMap<>();
      for (Received<V> r : records) running.put(r.raw(), threads.submit(() -> handleOne(l, handler, r)));
      Map<ConsumerRecord<String, byte[]>, Throwable> failed = new HashMap<>();
      for (Map.Entry<ConsumerRecord<String, byte[]>, Future<?>> e : running.entrySet()) {
        try {
          e.getValue().get();
        } catch (ExecutionException x) {
          failed.put(e.getKey(), x.getCause());
        }
      }
      return failed;
    }, threads);
  }

  static <V extends MessageLite> PollWork<V> batches(TopicListener<V> l, TopicListener.BatchHandler<V> handler) {
    return new PollWork<>(l, records -> {
      List<V> values = new ArrayList<>();
      for (Received<V> r : records) {
        if (r.value() != null) values.add(r.value());
      }
      Map<ConsumerRecord<String, byte[]>, Throwable> failed = new HashMap<>();
      try {
        for (Received<V> r : records) {
          if (r.value() == null) l.errors.unreadable().giveUp(r.raw(), null, r.problem(), 0);
        }
        if (!values.isEmpty()) handler.handle(values);
      } catch (InterruptedException e) {
        throw e;
      } catch (Exception e) {
        for (Received<V> r : records) {
          if (r.value() != null) failed.put(r.raw(), e);
        }
      }
      return failed;
    }, null);
  }

  /** One record: a value to handle, or one to give up; what is thrown is worth retrying. */
  private static <V extends MessageLite> Void handleOne(TopicListener<V> l, TopicListener.RecordHandler<V> handler, Received<V> r)
      throws Exception {
    if (r.value() == null) {
      l.errors.unreadable().giveUp(r.raw(), null, r.problem(), 0);
      return null;
    }
    try {
      handler.handle(r.key(), r.value());
    } catch (ResgraphException e) {
      if (e.kind().isTransient()) throw e;
      l.errors.refused().giveUp(r.raw(), r.value(), e.getMessage(), 1);
    }
    return null;
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
      List<Received<V>> received = new ArrayList<>();
      for (ConsumerRecord<String, byte[]> r : records) received.add(listener.read(r));
      if (settle(records, processing.process(received))) {
        failures = 0;
      } else {
        Duration wait = listener.errors.retry().delay(++failures);
        LOG.warn("{}: retrying in {} ms (attempt {})", listener.name, wait.toMillis(), failures);
        if (!listener.pause(wait)) return;
      }
    }
  }

  /** Commits each partition up to its first failed record and seeks back to that one; true if none failed. */
  private boolean settle(ConsumerRecords<String, byte[]> records, Map<ConsumerRecord<String, byte[]>, Throwable> failed) {
    Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
    for (TopicPartition tp : records.partitions()) {
      for (ConsumerRecord<String, byte[]> r : records.records(tp)) {
        Throwable failure = failed.get(r);
        if (failure != null) {
          LOG.warn("{}: {} offset {} (key {}) failed, will retry: {}", listener.name, tp, r.offset(), r.key(), failure.toString());
          listener.consumer.seek(tp, r.offset());
          break;
        }
        done.put(tp, new OffsetAndMetadata(r.offset() + 1));
      }
    }
    listener.commit(done);
    return failed.isEmpty();
  }

  /** A poll's work holds no partition across polls: nothing to do when the group moves them. */
  @Override
  public Optional<ConsumerRebalanceListener> rebalance() {
    return Optional.empty();
  }

  @Override
  public void closed() {
    if (threads != null) threads.shutdownNow();
  }
}
