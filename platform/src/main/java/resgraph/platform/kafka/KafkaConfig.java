package resgraph.platform.kafka;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.context.annotation.Property;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * The Kafka cluster a service uses.
 *
 * @param bootstrapServers {@code kafka.bootstrap.servers} (env KAFKA_BOOTSTRAP_SERVERS), host:port[,host:port...]; required
 * @param replicationFactor {@code resgraph.kafka.replication-factor} (1): of the topics a service creates when they are missing
 * @param clientId {@code resgraph.kafka.client-id} (resgraph): how a service's producer names itself to the broker
 */
@ConfigurationProperties("resgraph.kafka")
public record KafkaConfig(
    @Nullable @Property(name = "kafka.bootstrap.servers") String bootstrapServers,
    @Bindable(defaultValue = "1") int replicationFactor,
    @Bindable(defaultValue = "resgraph") String clientId) {

  public KafkaConfig {
    if (bootstrapServers == null || bootstrapServers.isBlank()) {
      throw new IllegalArgumentException("set kafka.bootstrap.servers (-Dkafka.bootstrap.servers=host:port, or KAFKA_BOOTSTRAP_SERVERS)");
    }
    if (replicationFactor < 1) throw new IllegalArgumentException("resgraph.kafka.replication-factor must be at least 1, not " + replicationFactor);
  }
}
