package resgraph.k8s;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.PersistentVolumeClaim;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import tools.jackson.databind.DeserializationFeature;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Each rendered object as the typed model of its apiVersion and kind, refusing what the model does
 * not know. fabric8's models keep an unknown field in {@code additionalProperties} instead of
 * failing, so every parsed object is walked and any such field fails with its path; the records of
 * the custom resources fail on one at once (FAIL_ON_UNKNOWN_PROPERTIES). A kind not in
 * {@link #KINDS} fails too: nothing reaches a cluster unchecked.
 */
final class StrictParsing {

  /** apiVersion/kind -> its model. */
  static final Map<String, Class<?>> KINDS = Map.ofEntries(
      Map.entry("v1/Namespace", Namespace.class),
      Map.entry("v1/ConfigMap", ConfigMap.class),
      Map.entry("v1/Service", Service.class),
      Map.entry("v1/PersistentVolumeClaim", PersistentVolumeClaim.class),
      Map.entry("apps/v1/Deployment", Deployment.class),
      Map.entry("apps/v1/StatefulSet", StatefulSet.class),
      Map.entry("policy/v1/PodDisruptionBudget", PodDisruptionBudget.class),
      Map.entry("networking.k8s.io/v1/NetworkPolicy", NetworkPolicy.class),
      Map.entry("autoscaling/v2/HorizontalPodAutoscaler", HorizontalPodAutoscaler.class),
      Map.entry("keda.sh/v1alpha1/ScaledObject", Keda.ScaledObject.class),
      Map.entry("kafka.strimzi.io/v1/Kafka", Strimzi.Kafka.class),
      Map.entry("kafka.strimzi.io/v1/KafkaNodePool", Strimzi.KafkaNodePool.class),
      Map.entry("kafka.strimzi.io/v1/KafkaTopic", Strimzi.KafkaTopic.class));

  private static final JsonMapper JSON = JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES).build();

  private StrictParsing() {}

  /** The object as its model; IllegalArgumentException naming the object and every field the model does not know. */
  static Object parse(JsonNode tree) {
    String id = tree.path("apiVersion").asString() + "/" + tree.path("kind").asString();
    String name = id + " " + tree.path("metadata").path("name").asString();
    Class<?> model = KINDS.get(id);
    if (model == null) throw new IllegalArgumentException(name + ": no model for this apiVersion and kind");
    Object parsed;
    try {
      parsed = JSON.treeToValue(tree, model);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
    }
    List<String> unknown = new ArrayList<>();
    collectUnknown(parsed, "", unknown);
    if (!unknown.isEmpty()) throw new IllegalArgumentException(name + ": fields its model does not know: " + unknown);
    return parsed;
  }

  /** Adds the path of every field that a fabric8 model, anywhere under {@code value}, took as unknown. */
  private static void collectUnknown(Object value, String path, List<String> unknown) {
    if (value == null || value instanceof CharSequence || value instanceof Number || value instanceof Boolean || value instanceof Enum
        // values written as one scalar, with deserializers of their own
        || value instanceof Quantity || value instanceof IntOrString) {
      return;
    }
    if (value instanceof Collection<?> items) {
      int i = 0;
      for (Object item : items) collectUnknown(item, path + "[" + i++ + "]", unknown);
    } else if (value instanceof Map<?, ?> map) {
      map.forEach((k, v) -> collectUnknown(v, path + "." + k, unknown));
    } else if (value.getClass().isRecord()) {
      for (RecordComponent c : value.getClass().getRecordComponents()) collectUnknown(invoke(c.getAccessor(), value), path + "." + c.getName(), unknown);
    } else if (value.getClass().getPackageName().startsWith("io.fabric8.")) {
      for (Method getter : value.getClass().getMethods()) {
        if (getter.getParameterCount() != 0 || Modifier.isStatic(getter.getModifiers()) || !getter.getName().startsWith("get")
            || getter.getDeclaringClass() == Object.class) {
          continue;
        }
        Object field = invoke(getter, value);
        if (getter.getName().equals("getAdditionalProperties")) {
          ((Map<?, ?>) field).keySet().forEach(k -> unknown.add(path + "." + k));
        } else {
          collectUnknown(field, path + "." + Character.toLowerCase(getter.getName().charAt(3)) + getter.getName().substring(4), unknown);
        }
      }
    }
  }

  private static Object invoke(Method accessor, Object on) {
    try {
      return accessor.invoke(on);
    } catch (IllegalAccessException | InvocationTargetException e) {
      throw new IllegalStateException("cannot read " + accessor + " of a parsed object", e);
    }
  }
}
