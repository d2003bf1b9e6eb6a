package resgraph.platform.kafka;

import com.google.protobuf.MessageLite;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.InterruptException;

/**
 * A service's one producer: every record it writes goes through here, so one flush covers
 * whatever was sent before. A send is durable once {@link #await} returns: every in-sync replica
 * has it.
 */
@Singleton
public final class KafkaPublisher {

  private final KafkaProducer<String, MessageLite> producer;

  KafkaPublisher(KafkaBroker broker, KafkaConfig config) {
    this.producer = broker.producer(config.clientId());
  }

  /** Sends without waiting; {@link #await} the result. */
  public Future<RecordMetadata> send(String topic, String key, MessageLite value) {
    return producer.send(new ProducerRecord<>(topic, key, value));
  }

  /** Sends and returns once the broker has it. */
  public void publish(String topic, String key, MessageLite value) {
    await(send(topic, key, value));
  }

  /** Sends every record, flushes, and returns once the broker has them all. */
  public void publishAll(String topic, List<? extends Keyed> records) {
    List<Future<RecordMetadata>> sent = records.stream()
        .map(r -> producer.send(new ProducerRecord<>(topic, r.partition(), r.key(), r.value()))).toList();
    producer.flush();
    sent.forEach(KafkaPublisher::await);
  }

  /** How many partitions {@code topic} has (from the producer's metadata, fetched once). */
  public int partitions(String topic) {
    return producer.partitionsFor(topic).size();
  }

  /** A record to publish. */
  public interface Keyed {
    String key();

    MessageLite value();

    /** The partition to write to; null: the one the key hashes to. */
    default Integer partition() {
      return null;
    }
  }

  /**
   * Waits for the broker's acknowledgement (at most the producer's delivery timeout, 2 minutes).
   *
   * @throws KafkaException what the broker answered: a {@link org.apache.kafka.common.errors.RetriableException}
   *     when it could not take the record in time, another when it never will (too large, say)
   */
  public static RecordMetadata await(Future<RecordMetadata> sent) {
    return await(sent, null);
  }

  /** {@link #await(Future)}, for at most {@code timeout} (null: the producer's own); running out is a RetriableException. */
  public static RecordMetadata await(Future<RecordMetadata> sent, Duration timeout) {
    try {
      return timeout == null ? sent.get() : sent.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      throw new org.apache.kafka.common.errors.TimeoutException("no acknowledgement within " + timeout.toSeconds() + " s", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof KafkaException k) throw k;
      throw new KafkaException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptException(e);
    }
  }

  @PreDestroy
  void close() {
    producer.close(Duration.ofSeconds(10));
  }
}
