package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/** Every overlay renders, and every object it renders is one a typed model accepts whole, in the namespace. */
class RenderingTest {

  static List<String> overlays() {
    return Manifests.overlays();
  }

  @Test
  void theOverlaysAreTheLaptopAndTheGpuPools() {
    assertTrue(overlays().containsAll(List.of("dev", "gpu")), "overlays: " + overlays());
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyObjectParsesStrictlyAndLivesInTheNamespace(String overlay) {
    Manifests m = Manifests.of(overlay);
    assertEquals(m.trees().size(), m.objects().size());
    for (JsonNode tree : m.trees()) {
      String kind = tree.path("kind").asString();
      String namespace = tree.path("metadata").path("namespace").asString();
      if (kind.equals("Namespace")) continue;
      assertEquals(Manifests.NAMESPACE, namespace, overlay + ": " + kind + " " + tree.path("metadata").path("name").asString());
    }
    assertEquals(List.of(Manifests.NAMESPACE), m.all(Namespace.class).stream().map(n -> n.getMetadata().getName()).toList());
    assertTrue(m.objects().stream().allMatch(o -> !(o instanceof HasMetadata h) || h.getMetadata().getName() != null));
  }

  private static final YAMLMapper YAML = new YAMLMapper();

  private static Object parse(String yaml) {
    return StrictParsing.parse(YAML.readTree(yaml));
  }

  @Test
  void aFieldNoModelKnowsFailsWithItsPath() {
    IllegalArgumentException deep = assertThrows(IllegalArgumentException.class, () -> parse("""
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: x}
        spec:
          selector: {matchLabels: {a: b}}
          template:
            metadata: {labels: {a: b}}
            spec:
              containers: [{name: x, image: x:1, resource: {limits: {cpu: "1"}}}]
        """));
    assertTrue(deep.getMessage().contains(".spec.template.spec.containers[0].resource"), deep.getMessage());
    IllegalArgumentException custom = assertThrows(IllegalArgumentException.class, () -> parse("""
        apiVersion: kafka.strimzi.io/v1
        kind: KafkaTopic
        metadata: {name: t}
        spec: {partition: 3}
        """));
    assertTrue(custom.getMessage().contains("partition"), custom.getMessage());
    IllegalArgumentException kind = assertThrows(IllegalArgumentException.class, () -> parse("""
        apiVersion: kafka.strimzi.io/v1beta2
        kind: KafkaTopic
        metadata: {name: t}
        """));
    assertTrue(kind.getMessage().contains("no model"), kind.getMessage());
  }
}
