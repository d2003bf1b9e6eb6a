package resgraph.testkit;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import resgraph.platform.kafka.KafkaClients;

/** The broker as a test sees it: sends of any bytes, reads of whole topics, and what a consumer group has committed. */
public final class KafkaProbe implements AutoCloseable {

  /** A record read back: its key, its value parsed, and where it was. */
  public record Read<T>(String key, T value, int partition, long offset) {}

  private static final Duration POLL = Duration.ofMillis(100);

  private final String bootstrap;
  private final KafkaProducer<String, byte[]> producer;
  private final Admin admin;

  public KafkaProbe(String bootstrap) {
    this.bootstrap = bootstrap;
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, 64 << 20);
    this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    this.admin = KafkaClients.admin(bootstrap);
  }

  public Admin admin() {
    return admin;
  }

  /** Sends bytes as they are and waits for the broker; a null partition lets the key choose. */
  public RecordMetadata send(String topic, Integer partition, String key, byte[] value) {
    try {
      return producer.send(new ProducerRecord<>(topic, partition, key, value)).get();
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("cannot send to " + topic, e);
    }
  }

  /** Sends a message keyed as given and waits for the broker. */
  public RecordMetadata publish(String topic, String key, MessageLite value) {
    return send(topic, null, key, value.toByteArray());
  }

  /** Sends every message, keyed by {@code key}, in one flush (so in one batch of the producer's), and waits for the broker. */
  public <V extends MessageLite> List<RecordMetadata> publishAll(String topic, List<V> values, Function<V, String> key) {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (V v : values) sent.add(producer.send(new ProducerRecord<>(topic, key.apply(v), v.toByteArray())));
    producer.flush();
    List<RecordMetadata> out = new ArrayList<>();
    try {
      for (Future<RecordMetadata> f : sent) out.add(f.get());
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("cannot send to " + topic, e);
    }
    return out;
  }

  /** Every record now in the topic whose value satisfies {@code match}, read to the end the topic has when asked. */
  public <T> List<Read<T>> readAll(String topic, Parser<T> parser, Predicate<T> match) {
    try (KafkaConsumer<String, byte[]> c = consumer()) {
      List<TopicPartition> partitions = partitions(c, topic);
      c.assign(partitions);
      c.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = c.endOffsets(partitions);
      List<Read<T>> out = new ArrayList<>();
      while (!end.entrySet().stream().allMatch(e -> c.position(e.getKey()) >= e.getValue())) take(c, parser, match, out);
      return out;
    }
  }

  /** Reads the topic until {@code count} records satisfy {@code match}; fails after {@code timeout}. */
  public <T> List<Read<T>> await(String topic, Parser<T> parser, Predicate<T> match, int count, Duration timeout) {
    Instant deadline = Instant.now().plus(timeout);
    try (KafkaConsumer<String, byte[]> c = consumer()) {
      List<TopicPartition> partitions = partitions(c, topic);
      c.assign(partitions);
      c.seekToBeginning(partitions);
      List<Read<T>> out = new ArrayList<>();
      while (out.size() < count) {
        if (Instant.now().isAfter(deadline)) {
          org.junit.jupiter.api.Assertions.fail("only " + out.size() + " of " + count + " records on " + topic + " within " + timeout
              + ": " + out);
        }
        take(c, parser, match, out);
      }
      return out;
    }
  }

  /** The latest value of {@code key} on a topic (the record a compacted topic keeps), or null. */
  public <T> T latest(String topic, Parser<T> parser, String key) {
    T last = null;
    for (Read<T> r : readAll(topic, parser, v -> true)) if (key.equals(r.key())) last = r.value();
    return last;
  }

  /** The sum of a topic's end offsets: grows with every record written to it. */
  public long endOffset(String topic) {
    try (KafkaConsumer<String, byte[]> c = consumer()) {
      return c.endOffsets(partitions(c, topic)).values().stream().mapToLong(Long::longValue).sum();
    }
  }

  /** The group's committed offset of each partition (absent: none yet). */
  public Map<TopicPartition, Long> committed(String group) {
    try {
      return admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get().entrySet().stream()
          .filter(e -> e.getValue() != null)
          .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("cannot read the offsets of " + group, e);
    }
  }

  /** Whether the group has committed past every one of these records. */
  public boolean committedPast(String group, Collection<RecordMetadata> records) {
    Map<TopicPartition, Long> committed = committed(group);
    return records.stream().allMatch(r -> committed.getOrDefault(new TopicPartition(r.topic(), r.partition()), -1L) > r.offset());
  }

  /** Waits until the group has committed past every one of these records: they were processed, or given up. */
  public void awaitCommittedPast(String group, Collection<RecordMetadata> records, Duration timeout) {
    Await.until(group + " committing past " + records.size() + " records", timeout, () -> committedPast(group, records));
  }

  /**
   * What a new member of the group would be handed: for every partition of the topic with records
   * after the group's committed offset, how many.
   */
  public Map<TopicPartition, Long> left(String group, String topic) {
    try (KafkaConsumer<String, byte[]> c = consumer()) {
      List<TopicPartition> partitions = partitions(c, topic);
      Map<TopicPartition, OffsetAndMetadata> committed;
      try {
        committed = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
      } catch (InterruptedException | ExecutionException e) {
        throw new IllegalStateException("cannot read the offsets of " + group, e);
      }
      return c.endOffsets(Set.copyOf(partitions)).entrySet().stream()
          .filter(e -> e.getValue() > offset(committed.get(e.getKey())))
          .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue() - offset(committed.get(e.getKey()))));
    }
  }

  /** The group once it is stable with {@code members} members, each holding partitions. */
  public ConsumerGroupDescription awaitGroup(String group, int members, Duration timeout) {
    return Await.until("the group " + group + " stable with " + members + " members", timeout, () -> {
      try {
        return admin.describeConsumerGroups(List.of(group)).all().get().get(group);
      } catch (InterruptedException | ExecutionException e) {
        throw new IllegalStateException(e);
      }
    }, g -> g.groupState() == GroupState.STABLE && g.members().size() == members
        && g.members().stream().noneMatch(m -> m.assignment().topicPartitions().isEmpty()));
  }

  private static long offset(OffsetAndMetadata o) {
    return o == null ? 0 : o.offset();
  }

  private <T> void take(KafkaConsumer<String, byte[]> c, Parser<T> parser, Predicate<T> match, List<Read<T>> out) {
    for (ConsumerRecord<String, byte[]> r : c.poll(POLL)) {
      T value = parse(parser, r.value());
      if (value != null && match.test(value)) out.add(new Read<>(r.key(), value, r.partition(), r.offset()));
    }
  }

  private KafkaConsumer<String, byte[]> consumer() {
    return KafkaClients.consumer(bootstrap, null, new ByteArrayDeserializer(), Map.of());
  }

  private static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
    return c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
  }

  /** The value parsed; null for one that is not a {@code T} (tests put such records on purpose). */
  private static <T> T parse(Parser<T> parser, byte[] bytes) {
    if (bytes == null) return null;
    try {
      return parser.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      return null;
    }
  }

  @Override
  public void close() {
    producer.close(Duration.ofSeconds(5));
    admin.close();
  }
}
