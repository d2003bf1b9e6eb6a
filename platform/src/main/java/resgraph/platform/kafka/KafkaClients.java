package resgraph.platform.kafka;

import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka clients configured the way every resgraph process needs them (services through
 * {@link KafkaBroker}, tests and tools directly).
 */
public final class KafkaClients {

  private KafkaClients() {}

  /**
   * A producer that never loses or duplicates a send it reports as done: all in-sync replicas
   * acknowledge, retries are idempotent. Values are protobufs.
   */
  public static <V extends com.google.protobuf.MessageLite> KafkaProducer<String, V> producer(
      String bootstrap, String clientId) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.CLIENT_ID_CONFIG, clientId);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, Topics.MAX_MESSAGE_BYTES);
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
    p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
    Serializer<V> values = ProtoSerde.serializer();
    return new KafkaProducer<>(p, new StringSerializer(), values);
  }

  /**
   * A consumer that commits only when told to (after its records' work is durable elsewhere), so
   * a crash redelivers instead of losing. {@code group} null means no group: the caller assigns
   * partitions itself. A member's session is short (6 s; the broker's minimum), so that a member
   * that died hands its partitions on within seconds: with Kafka's default of 45 s a restarted
   * orchestrator or graph service waited that long for the partitions its killed self had held.
   * Heartbeats have a thread of their own, so a long batch does not end the session.
   */
  public static <V> KafkaConsumer<String, V> consumer(
      String bootstrap, String group, Deserializer<V> values, Map<String, Object> extra) {
    Properties p = new Properties();
    p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    if (group != null) p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6_000);
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 2_000);
    p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, Topics.MAX_MESSAGE_BYTES + (1 << 20));
    p.put(ConsumerConfig.FETCH_MAX_BYTES_CONFIG, Topics.MAX_MESSAGE_BYTES + (1 << 20));
    p.putAll(extra);
    return new KafkaConsumer<>(p, new StringDeserializer(), values);
  }

  public static Admin admin(String bootstrap) {
    return Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
        AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000));
  }
}
