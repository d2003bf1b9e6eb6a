package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.KeyToPath;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.api.model.SecretVolumeSource;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What every pod needs to be run well, and what every resgraph container needs to run at all: its
 * credentials mounted and named, its probes on the plaintext health port, a heap that fits its
 * memory limit, a component the image's entrypoint knows.
 */
class WorkloadsTest {

  /** Where every resgraph container finds the Secret resgraph-credentials, and the file of each of its keys. */
  static final String CREDENTIALS = "/etc/resgraph/credentials";

  static List<String> overlays() {
    return Manifests.overlays();
  }

  private static Stream<Container> containers(Manifests m) {
    return m.workloads().stream().flatMap(w -> w.template().getSpec().getContainers().stream());
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyContainerHasRequestsLimitsProbesAndAPinnedImage(String overlay) {
    List<String> problems = new ArrayList<>();
    containers(Manifests.of(overlay)).forEach(c -> {
      ResourceRequirements r = c.getResources();
      for (String resource : List.of("cpu", "memory")) {
        if (r == null || !r.getRequests().containsKey(resource)) problems.add(c.getName() + ": no " + resource + " request");
        if (r == null || !r.getLimits().containsKey(resource)) problems.add(c.getName() + ": no " + resource + " limit");
      }
      if (c.getReadinessProbe() == null) problems.add(c.getName() + ": no readiness probe");
      if (c.getLivenessProbe() == null) problems.add(c.getName() + ": no liveness probe");
      if (!ImageRef.parse(c.getImage()).pinned()) problems.add(c.getName() + ": image " + c.getImage() + " is not pinned");
    });
    assertEquals(List.of(), problems, overlay);
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void resgraphProbesAskTheHealthPortOverGrpc(String overlay) {
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      Container c = sc.container();
      int health = Integer.parseInt(sc.env().value("RESGRAPH_HEALTH_PORT")
          .orElseThrow(() -> new AssertionError(sc.where() + ": no RESGRAPH_HEALTH_PORT")));
      List<Probe> probes = new ArrayList<>(List.of(c.getReadinessProbe(), c.getLivenessProbe()));
      if (c.getStartupProbe() != null) probes.add(c.getStartupProbe());
      for (Probe p : probes) {
        assertTrue(p.getGrpc() != null && p.getGrpc().getPort() == health, sc.where() + ": a probe not on gRPC port " + health + ": " + p);
      }
      assertTrue(c.getPorts().stream().anyMatch(p -> "health".equals(p.getName()) && p.getContainerPort() == health),
          sc.where() + ": no container port 'health' " + health);
    }
  }

  /**
   * Every resgraph container mounts resgraph-credentials read-only and is told where its token
   * and certificate authority are; those that serve gRPC, where their certificate and key are.
   * Each file named is a key the mounted volume holds.
   */
  @ParameterizedTest
  @MethodSource("overlays")
  void everyServiceIsGivenItsCredentials(String overlay) {
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      VolumeMount mount = sc.container().getVolumeMounts().stream().filter(v -> v.getMountPath().equals(CREDENTIALS)).findFirst()
          .orElseThrow(() -> new AssertionError(sc.where() + ": nothing mounted at " + CREDENTIALS));
      assertTrue(Boolean.TRUE.equals(mount.getReadOnly()), sc.where() + ": credentials mounted writable");
      Volume volume = sc.workload().template().getSpec().getVolumes().stream().filter(v -> v.getName().equals(mount.getName())).findFirst()
          .orElseThrow();
      SecretVolumeSource secret = volume.getSecret();
      assertTrue(secret != null && secret.getSecretName().equals("resgraph-credentials"), sc.where() + ": credentials from " + volume);
      Map<String, String> files = new HashMap<>(Map.of(
          "RESGRAPH_SECURITY_TOKEN_FILE", "token", "RESGRAPH_SECURITY_CA_FILE", "ca.crt"));
      if (sc.service().servesGrpc()) files.putAll(Map.of("RESGRAPH_SECURITY_CERT_FILE", "tls.crt", "RESGRAPH_SECURITY_KEY_FILE", "tls.key"));
      files.forEach((variable, key) -> {
        assertEquals(CREDENTIALS + "/" + key, sc.env().value(variable).orElse(null), sc.where() + ": " + variable);
        boolean holds = secret.getItems().isEmpty() || secret.getItems().stream().map(KeyToPath::getPath).anyMatch(key::equals);
        assertTrue(holds, sc.where() + ": the credentials volume leaves out " + key);
      });
    }
  }

  /** The heap (-Xmx in JAVA_OPTS) leaves room under the memory limit for the JVM's own and native memory. */
  @ParameterizedTest
  @MethodSource("overlays")
  void theHeapFitsTheMemoryLimit(String overlay) {
    Pattern xmx = Pattern.compile("-Xmx(\\d+)([kmgKMG])");
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      Matcher m = xmx.matcher(sc.env().value("JAVA_OPTS").orElse(""));
      assertTrue(m.find(), sc.where() + ": JAVA_OPTS sets no -Xmx; the JVM would take a quarter of the node's memory");
      long heap = Long.parseLong(m.group(1)) << switch (Character.toLowerCase(m.group(2).charAt(0))) {
        case 'k' -> 10;
        case 'm' -> 20;
        default -> 30;
      };
      BigDecimal limit = Quantity.getAmountInBytes(sc.container().getResources().getLimits().get("memory"));
      assertTrue(BigDecimal.valueOf(heap).compareTo(limit.multiply(BigDecimal.valueOf(0.8))) <= 0,
          sc.where() + ": heap " + heap + " bytes is more than 80% of the memory limit " + limit);
    }
  }

  /** Each component a pod names is one the image's entrypoint runs, with that service's main class. */
  @ParameterizedTest
  @MethodSource("overlays")
  void theEntrypointRunsEachComponentsMainClass(String overlay) throws IOException {
    Map<String, String> mains = new HashMap<>();
    Matcher m = Pattern.compile("(?m)^\\s*([a-z-]+)\\) main=([\\w.]+) ;;").matcher(Files.readString(Kustomize.root().resolve("image/component")));
    while (m.find()) mains.put(m.group(1), m.group(2));
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      assertEquals(sc.service().main.getName(), mains.get(sc.service().component), sc.where() + ": k8s/image/component");
    }
  }
}
