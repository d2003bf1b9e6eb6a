package resgraph.platform.kafka;

import com.google.protobuf.MessageLite;
import jakarta.inject.Singleton;
import java.util.HashMap;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * The Kafka cluster as a service uses it. Its first use makes sure every resgraph topic exists, so
 * no setup step is needed and no client of a service ever sees a topic missing; then it makes the
 * service's clients.
 */
@Singleton
public final class KafkaBroker {

  private final KafkaConfig config;

  KafkaBroker(KafkaConfig config) {
    this.config = config;
    try (Admin admin = KafkaClients.admin(config.bootstrapServers())) {
      Topics.ensure(admin, config.replicationFactor());
    }
  }

  public String bootstrapServers() {
    return config.bootstrapServers();
  }

  /** A producer of protobuf values that never loses or duplicates a send it reports done (see {@link KafkaClients#producer}). */
  public <V extends MessageLite> KafkaProducer<String, V> producer(String clientId) {
    return KafkaClients.producer(config.bootstrapServers(), clientId);
  }

  /**
   * A consumer of raw values that commits only when told to; {@code group} null assigns its
   * partitions itself. The values are parsed by whoever reads them, so that one that is not what
   * it should be is that reader's to handle, not an exception inside poll.
   */
  public KafkaConsumer<String, byte[]> consumer(String group, String clientId, Map<String, Object> settings) {
    Map<String, Object> all = new HashMap<>(settings);
    all.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    return KafkaClients.consumer(config.bootstrapServers(), group, new ByteArrayDeserializer(), all);
  }
}
