package resgraph.platform.kafka;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A compacted topic as a map from key to latest value: read from the beginning of every partition
 * (in no group: every reader needs every key) to the end the topic has when it starts, then, if
 * asked to, kept current on a thread of its own. A record with no value removes its key.
 *
 * <p>A value that is not valid protobuf has nothing to apply: it is logged, and its key keeps the
 * last value read. Whether that is still the key's value is for the topic's owner to decide, so
 * the view also says which keys' latest record could not be read ({@link Contents#unreadable});
 * a later value or removal of the key supersedes that record.
 *
 * @param <V> the topic's values
 */
public final class CompactedTopicView<V extends MessageLite> implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(CompactedTopicView.class);
  private static final Duration POLL = Duration.ofMillis(500);

  private final String topic;
  private final Parser<V> parser;
  private final KafkaConsumer<String, byte[]> consumer;
  private final List<TopicPartition> partitions;
  private final String typeName;
  private final Map<String, V> values = new ConcurrentHashMap<>();
  private final Map<String, Unreadable> unreadable = new ConcurrentHashMap<>();
  /** Readers waiting for the view to reach the end the topic had when they asked. */
  private final Queue<CompletableFuture<Void>> syncs = new ConcurrentLinkedQueue<>();
  private final Thread thread;
  private volatile boolean running = true;
  private volatile RuntimeException failure;

  @SuppressWarnings("unchecked")
  private CompactedTopicView(KafkaBroker broker, String topic, V prototype, String name) {
    this.topic = topic;
    this.parser = (Parser<V>) prototype.getParserForType();
    this.typeName = prototype.getClass().getSimpleName();
    this.consumer = broker.consumer(null, name, Map.of());
    this.partitions = consumer.partitionsFor(topic).stream().map(p -> new TopicPartition(p.topic(), p.partition())).toList();
    this.thread = new Thread(this::follow, name);
    consumer.assign(partitions);
    consumer.seekToBeginning(partitions);
  }

  /** A record that could not be read, and why. */
  public record Unreadable(ConsumerRecord<String, byte[]> record, String problem) {}

  /**
   * What the topic holds: every key's latest readable value, and the keys whose latest record
   * could not be read (such a key is in {@code values} too when an earlier record of it could).
   */
  public record Contents<V>(Map<String, V> values, Map<String, Unreadable> unreadable) {}

  /** What the topic holds now: the topic read once to its end. */
  public static <V extends MessageLite> Contents<V> read(KafkaBroker broker, String topic, V prototype, String name) {
    try (CompactedTopicView<V> view = new CompactedTopicView<>(broker, topic, prototype, name)) {
      view.readToEnd();
      return new Contents<>(Map.copyOf(view.values), Map.copyOf(view.unreadable));
    }
  }

  /** The topic read to its end now, then followed until {@link #close}. */
  public static <V extends MessageLite> CompactedTopicView<V> follow(KafkaBroker broker, String topic, V prototype, String name) {
    CompactedTopicView<V> view = new CompactedTopicView<>(broker, topic, prototype, name);
    try {
      view.readToEnd();
    } catch (RuntimeException e) {
      view.consumer.close();
      throw e;
    }
    view.thread.start();
    return view;
  }

  /**
   * The key's latest value as read so far.
   *
   * @throws IllegalStateException once the topic can no longer be read: a reader that cannot tell
   *     the current value from an old one stops rather than go on guessing
   */
  public Optional<V> get(String key) {
    if (failure != null) throw new IllegalStateException("cannot read " + topic + ": " + failure.getMessage(), failure);
    return Optional.ofNullable(values.get(key));
  }

  /**
   * The key's latest value, having first read everything the topic held when asked if the key is
   * not known yet (a value written just before this call is then found). Waits at most
   * {@code timeout} for that.
   */
  public Optional<V> getCurrent(String key, Duration timeout) {
    Optional<V> known = get(key);
    if (known.isPresent()) return known;
    CompletableFuture<Void> synced = new CompletableFuture<>();
    syncs.add(synced);
    consumer.wakeup();
    try {
      synced.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (ExecutionException | TimeoutException e) {
      LOG.warn("could not read {} to its end within {} s: {}", topic, timeout.toSeconds(), e.toString());
    }
    return get(key);
  }

  /** Every key's latest value as read so far. */
  public Map<String, V> snapshot() {
    return Map.copyOf(values);
  }

  private void readToEnd() {
    Map<TopicPartition, Long> end = consumer.endOffsets(partitions);
    while (!reached(end)) poll();
    LOG.info("read {} keys from {}", values.size(), topic);
  }

  private boolean reached(Map<TopicPartition, Long> end) {
    return end.entrySet().stream().allMatch(e -> consumer.position(e.getKey()) >= e.getValue());
  }

  private void poll() {
    for (ConsumerRecord<String, byte[]> r : consumer.poll(POLL)) {
      if (r.value() == null) {
        values.remove(r.key());
        unreadable.remove(r.key());
        continue;
      }
      try {
        values.put(r.key(), parser.parseFrom(r.value()));
        unreadable.remove(r.key());
      } catch (InvalidProtocolBufferException e) {
        String problem = ProtoSerde.notA(typeName, e);
        unreadable.put(r.key(), new Unreadable(r, problem));
        LOG.warn("{}-{} offset {} (key {}) cannot be read; the key keeps the last value read: {}",
            r.topic(), r.partition(), r.offset(), r.key(), problem);
      }
    }
  }

  private void follow() {
    try {
      while (running) {
        try {
          poll();
        } catch (WakeupException woken) {
          if (!running) return; // close() asked
        }
        if (!syncs.isEmpty()) sync();
      }
    } catch (RuntimeException e) {
      failure = e;
      LOG.error("stopped reading {}", topic, e);
      syncs.forEach(s -> s.completeExceptionally(e));
    } finally {
      consumer.close();
    }
  }

  /** Reads to the end the topic has now, and tells whoever asked for that. */
  private void sync() {
    List<CompletableFuture<Void>> waiting = List.copyOf(syncs);
    syncs.removeAll(waiting);
    Map<TopicPartition, Long> end = null;
    while (running) {
      try {
        if (end == null) end = consumer.endOffsets(partitions);
        if (reached(end)) break;
        poll();
      } catch (WakeupException woken) {
        // another reader asking (served by the next sync), or close()
      }
    }
    waiting.forEach(s -> s.complete(null));
  }

  @Override
  public void close() {
    running = false;
    if (thread.getState() == Thread.State.NEW) {
      consumer.close();
      return;
    }
    consumer.wakeup();
    try {
      thread.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
