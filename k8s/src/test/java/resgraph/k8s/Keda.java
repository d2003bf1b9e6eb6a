package resgraph.k8s;

import io.fabric8.kubernetes.api.model.ObjectMeta;
import java.util.List;

/**
 * KEDA's ScaledObject (keda.sh/v1alpha1), as far as the manifests use it: fabric8 has no model of
 * it, and these records are parsed refusing any field they do not name, so a misspelt field
 * fails here instead of being ignored by KEDA.
 */
final class Keda {

  private Keda() {}

  record ScaledObject(String apiVersion, String kind, ObjectMeta metadata, Spec spec) {}

  record Spec(Target scaleTargetRef, Integer minReplicaCount, Integer maxReplicaCount, Integer pollingInterval,
      Integer cooldownPeriod, List<Trigger> triggers) {}

  /** A Deployment of the same namespace, by name. */
  record Target(String name) {}

  /** A trigger; the manifests use the kafka scaler alone, whose metadata this types. */
  record Trigger(String type, KafkaMetadata metadata) {}

  /** The kafka scaler's settings: all strings, as KEDA reads them. */
  record KafkaMetadata(String bootstrapServers, String consumerGroup, String topic, String lagThreshold,
      String offsetResetPolicy, String allowIdleConsumers) {}
}
