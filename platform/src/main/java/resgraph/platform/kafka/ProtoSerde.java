package resgraph.platform.kafka;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Kafka values as protobuf bytes: the same contract in every service and language. Consumers read
 * bytes and parse them in {@link TopicListener}, so that an unreadable record meets its listener's
 * error strategy instead of failing the poll.
 */
public final class ProtoSerde {

  private ProtoSerde() {}

  public static <T extends MessageLite> Serializer<T> serializer() {
    return (topic, message) -> message == null ? null : message.toByteArray();
  }

  /** What is wrong with a value that is not a {@code type}: one wording for every reader's logs and dead letters. */
  static String notA(String type, InvalidProtocolBufferException e) {
    return "the value is not a valid " + type + " (" + e.getMessage() + ")";
  }
}
