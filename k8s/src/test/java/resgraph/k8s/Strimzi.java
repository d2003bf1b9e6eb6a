package resgraph.k8s;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import java.util.List;
import java.util.Map;

/**
 * Strimzi's Kafka, KafkaNodePool and KafkaTopic (kafka.strimzi.io/v1), as far as the manifests
 * use them, field names as in io.strimzi:api. That jar is not used: it is built for Java 21 and
 * on fabric8 7. Parsed refusing any field these records do not name.
 */
final class Strimzi {

  private Strimzi() {}

  record Kafka(String apiVersion, String kind, ObjectMeta metadata, KafkaSpec spec) {}

  record KafkaSpec(ClusterSpec kafka, EntityOperator entityOperator, Exporter kafkaExporter) {}

  record ClusterSpec(List<Listener> listeners, Map<String, Object> config) {}

  /** A listener; Strimzi makes the ingress policy of its port from {@code networkPolicyPeers}. */
  record Listener(String name, int port, String type, boolean tls, List<NetworkPolicyPeer> networkPolicyPeers) {}

  record EntityOperator(TopicOperator topicOperator) {}

  record TopicOperator(ResourceRequirements resources) {}

  record Exporter(String groupRegex, String topicRegex, ResourceRequirements resources) {}

  record KafkaNodePool(String apiVersion, String kind, ObjectMeta metadata, NodePoolSpec spec) {}

  record NodePoolSpec(int replicas, List<String> roles, Storage storage, ResourceRequirements resources, JvmOptions jvmOptions) {}

  record Storage(String type, String size, Boolean deleteClaim) {}

  record JvmOptions(@JsonProperty("-Xms") String xms, @JsonProperty("-Xmx") String xmx) {}

  /** A topic, named by metadata.name; its config values as Kafka reads them (strings or numbers). */
  record KafkaTopic(String apiVersion, String kind, ObjectMeta metadata, TopicSpec spec) {}

  record TopicSpec(Integer partitions, Integer replicas, Map<String, Object> config) {}

  /** The bootstrap Service Strimzi makes for a Kafka: {@code <name>-kafka-bootstrap}. */
  static String bootstrapService(Kafka kafka) {
    return kafka.metadata().getName() + "-kafka-bootstrap";
  }
}
