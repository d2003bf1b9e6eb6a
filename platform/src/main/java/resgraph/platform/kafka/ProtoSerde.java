package resgraph.platform.kafka;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;

/** Kafka values as protobuf bytes: the same contract in every service and language. */
public final class ProtoSerde {

  private ProtoSerde() {}

  public static <T extends MessageLite> Serializer<T> serializer() {
    return (topic, message) -> message == null ? null : message.toByteArray();
  }

  /** Fails with the topic's name on bytes that are not a {@code T}, rather than handing on garbage. */
  public static <T extends MessageLite> Deserializer<T> deserializer(Parser<T> parser) {
    return (topic, bytes) -> {
      if (bytes == null) return null;
      try {
        return parser.parseFrom(bytes);
      } catch (InvalidProtocolBufferException e) {
        throw new SerializationException("a message on " + topic + " is not valid protobuf: " + e.getMessage(), e);
      }
    };
  }
}
