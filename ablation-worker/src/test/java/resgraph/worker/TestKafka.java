package resgraph.worker;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.InvalidProtocolBufferException;
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
import java.util.function.BooleanSupplier;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
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
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import resgraph.kafka.Clients;

/** The broker as the tests see it: raw sends, reads of whole topics, and the workers' group. */
final class TestKafka implements AutoCloseable {

  /** A record read back: its key, its value parsed, and where it was. */
  record Read<T>(String key, T value, int partition, long offset) {}

  private static final Duration POLL = Duration.ofMillis(100);

  private final String bootstrap;
  private final KafkaProducer<String, byte[]> producer;
  private final Admin admin;

  TestKafka(String bootstrap) {
    this.bootstrap = bootstrap;
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    this.producer = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
    this.admin = Clients.admin(bootstrap);
  }

  Admin admin() {
    return admin;
  }

  /** Sends and waits for the broker; a null partition lets the key choose. */
  RecordMetadata send(String topic, Integer partition, String key, byte[] value) {
    try {
      return producer.send(new ProducerRecord<>(topic, partition, key, value)).get();
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("cannot send to " + topic, e);
    }
  }

  /** Every record now in the topic whose value satisfies {@code match}. */
  <T> List<Read<T>> readAll(String topic, Parser<T> parser, Predicate<T> match) {
    try (KafkaConsumer<String, byte[]> c = consumer(null)) {
      List<TopicPartition> partitions = partitions(c, topic);
      c.assign(partitions);
      c.seekToBeginning(partitions);
      Map<TopicPartition, Long> end = c.endOffsets(partitions);
      List<Read<T>> out = new ArrayList<>();
      while (!end.entrySet().stream().allMatch(e -> c.position(e.getKey()) >= e.getValue())) {
        for (ConsumerRecord<String, byte[]> r : c.poll(POLL)) {
          T value = parse(parser, r.value());
          if (match.test(value)) out.add(new Read<>(r.key(), value, r.partition(), r.offset()));
        }
      }
      return out;
    }
  }

  /** Reads the topic until {@code count} records satisfy {@code match}; fails after {@code timeout}. */
  <T> List<Read<T>> await(String topic, Parser<T> parser, Predicate<T> match, int count, Duration timeout) {
    Instant deadline = Instant.now().plus(timeout);
    try (KafkaConsumer<String, byte[]> c = consumer(null)) {
      List<TopicPartition> partitions = partitions(c, topic);
      c.assign(partitions);
      c.seekToBeginning(partitions);
      List<Read<T>> out = new ArrayList<>();
      while (out.size() < count) {
        if (Instant.now().isAfter(deadline)) fail("only " + out.size() + " of " + count + " records on " + topic + " within " + timeout);
        for (ConsumerRecord<String, byte[]> r : c.poll(POLL)) {
          T value = parse(parser, r.value());
          if (match.test(value)) out.add(new Read<>(r.key(), value, r.partition(), r.offset()));
        }
      }
      return out;
    }
  }

  /** The workers' committed offset of each partition (absent: none yet). */
  Map<TopicPartition, Long> committed() {
    try {
      return admin.listConsumerGroupOffsets(TaskLoop.GROUP).partitionsToOffsetAndMetadata().get().entrySet().stream()
          .filter(e -> e.getValue() != null)
          .collect(Collectors.toMap(Map.Entry::getKey, e -> e.getValue().offset()));
    } catch (InterruptedException | ExecutionException e) {
      throw new IllegalStateException("cannot read the workers' offsets", e);
    }
  }

  /** Whether the workers' group has committed past every one of these records. */
  boolean committedPast(Collection<RecordMetadata> records) {
    Map<TopicPartition, Long> committed = committed();
    return records.stream().allMatch(r -> committed.getOrDefault(new TopicPartition(r.topic(), r.partition()), 0L) > r.offset());
  }

  /**
   * What a new member of the workers' group would be handed: for every partition of the topic
   * with records after the group's committed offset, how many.
   */
  Map<TopicPartition, Long> left(String topic) {
    try (KafkaConsumer<String, byte[]> c = consumer(TaskLoop.GROUP)) {
      List<TopicPartition> partitions = partitions(c, topic);
      Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Set.copyOf(partitions));
      return c.endOffsets(partitions).entrySet().stream()
          .filter(e -> e.getValue() > (committed.get(e.getKey()) == null ? 0 : committed.get(e.getKey()).offset()))
          .collect(Collectors.toMap(Map.Entry::getKey,
              e -> e.getValue() - (committed.get(e.getKey()) == null ? 0 : committed.get(e.getKey()).offset())));
    }
  }

  /** The workers' group once it is stable with {@code members} members, each holding partitions. */
  ConsumerGroupDescription awaitGroup(int members, Duration timeout) {
    ConsumerGroupDescription[] last = new ConsumerGroupDescription[1];
    awaitTrue("the group " + TaskLoop.GROUP + " stable with " + members + " members", timeout, () -> {
      try {
        last[0] = admin.describeConsumerGroups(List.of(TaskLoop.GROUP)).all().get().get(TaskLoop.GROUP);
      } catch (InterruptedException | ExecutionException e) {
        throw new IllegalStateException(e);
      }
      return last[0].groupState() == GroupState.STABLE && last[0].members().size() == members
          && last[0].members().stream().noneMatch(m -> m.assignment().topicPartitions().isEmpty());
    });
    return last[0];
  }

  /** Polls {@code condition} until it holds; fails naming {@code what} after {@code timeout}. */
  static void awaitTrue(String what, Duration timeout, BooleanSupplier condition) {
    Instant deadline = Instant.now().plus(timeout);
    while (!condition.getAsBoolean()) {
      if (Instant.now().isAfter(deadline)) fail("not within " + timeout + ": " + what);
      try {
        Thread.sleep(100); // the condition is on another process (the broker): nothing to wait on instead
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  private KafkaConsumer<String, byte[]> consumer(String group) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    return new KafkaConsumer<>(p, new StringDeserializer(), new ByteArrayDeserializer());
  }

  private static List<TopicPartition> partitions(KafkaConsumer<?, ?> c, String topic) {
    return c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
  }

  private static <T> T parse(Parser<T> parser, byte[] bytes) {
    try {
      return parser.parseFrom(bytes);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("a record the workers wrote is not valid protobuf", e);
    }
  }

  @Override
  public void close() {
    producer.close();
    admin.close();
  }
}
