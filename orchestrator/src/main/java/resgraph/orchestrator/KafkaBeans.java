package resgraph.orchestrator;

import com.google.protobuf.MessageLite;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Singleton;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.producer.KafkaProducer;
import resgraph.kafka.Clients;
import resgraph.kafka.Topics;

/** Kafka as the orchestrator uses it: resgraph's topics ensured before anything else touches them, one shared producer. */
@Factory
final class KafkaBeans {

  /** The bootstrap servers of a broker on which every resgraph topic exists. */
  record Broker(String bootstrap) {}

  @Singleton
  Broker broker(@Value("${kafka.bootstrap.servers}") String bootstrap,
      @Value("${resgraph.kafka.replication-factor:1}") int replicationFactor) {
    try (Admin admin = Clients.admin(bootstrap)) {
      Topics.ensure(admin, replicationFactor);
    }
    return new Broker(bootstrap);
  }

  /** Job records and tasks both go through it, so one flush covers whatever was sent before. */
  @Singleton
  @Bean(preDestroy = "close")
  KafkaProducer<String, MessageLite> producer(Broker broker) {
    return Clients.producer(broker.bootstrap(), "resgraph-orchestrator");
  }
}
