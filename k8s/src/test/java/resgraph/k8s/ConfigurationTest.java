package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.micronaut.context.annotation.ConfigurationProperties;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import resgraph.platform.ServiceApplication;
import resgraph.platform.kafka.KafkaConfig;

/**
 * The manifests configure the services with what their code reads: every variable a resgraph
 * container is given is a property its service reads (Micronaut's environment convention:
 * RESGRAPH_MODEL_SERVER_ADDRESS is resgraph.model-server.address) or one of
 * {@link #THIRD_PARTY}; and every configuration record of the service, built from what the
 * container is given, passes its own checks, so nothing required is missing.
 */
class ConfigurationTest {

  /** A variable read by something other than the service's configuration: who reads it, and which components get it. */
  record ThirdParty(String readBy, Set<String> components) {}

  static final Map<String, ThirdParty> THIRD_PARTY = Map.of(
      "JAVA_OPTS", new ThirdParty("the image's entrypoint, k8s/image/component, as the java command's options",
          Set.of("model-server", "ablation-worker", "graph-service", "orchestrator")),
      "MALLOC_ARENA_MAX", new ThirdParty("glibc's malloc (local-cluster's Launcher sets it for every component)",
          Set.of("model-server", "ablation-worker", "graph-service", "orchestrator")),
      "MALLOC_MMAP_THRESHOLD_", new ThirdParty("glibc's malloc (local-cluster's Launcher sets it for every component)",
          Set.of("model-server", "ablation-worker", "graph-service", "orchestrator")),
      "GLIBC_TUNABLES", new ThirdParty("glibc's malloc (local-cluster's Launcher sets it for every component)",
          Set.of("model-server", "ablation-worker", "graph-service", "orchestrator")),
      "DJL_CACHE_DIR", new ThirdParty("DJL (ai.djl.util.Utils.getCacheDir): where it unpacks libtorch and its JNI library",
          Set.of("model-server")));

  static List<String> overlays() {
    return Manifests.overlays();
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyVariableIsReadByTheServiceItIsGivenTo(String overlay) {
    List<String> unread = new ArrayList<>();
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      Set<String> read = new TreeSet<>();
      for (Class<?> c : sc.service().reads()) ConfigurationCatalog.reads(c).forEach(r -> read.add(r.variable()));
      for (String variable : sc.env().settings().keySet()) {
        ThirdParty other = THIRD_PARTY.get(variable);
        boolean allowed = other != null && other.components().contains(sc.service().component);
        if (!read.contains(variable) && !allowed) unread.add(sc.where() + ": " + variable);
      }
    }
    assertEquals(List.of(), unread, overlay + ": variables no code of their service reads");
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyConfigurationRecordAcceptsWhatItIsGiven(String overlay) {
    List<String> refused = new ArrayList<>();
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      for (Class<?> c : sc.service().reads()) {
        if (!c.isAnnotationPresent(ConfigurationProperties.class) || !c.isRecord()) continue;
        Map<String, String> values = new HashMap<>();
        for (ConfigurationCatalog.Read r : ConfigurationCatalog.reads(c)) {
          // a Secret's or the pod's own value stands for itself: set, and not ours to read here
          ContainerEnv.Setting s = sc.env().settings().get(r.variable());
          if (s != null) values.put(r.name(), s.value() == null ? "from-" + s.name() : s.value());
        }
        try {
          ConfigurationCatalog.bind(c, values);
        } catch (IllegalArgumentException e) {
          refused.add(sc.where() + ": " + c.getSimpleName() + ": " + e.getMessage());
        }
      }
    }
    assertEquals(List.of(), refused, overlay + ": configuration the services would refuse at start");
  }

  @Test
  void aMissingRequiredPropertyIsRefused() {
    Map<String, String> none = Map.of();
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> ConfigurationCatalog.bind(KafkaConfig.class, none));
    assertTrue(e.getMessage().contains("kafka.bootstrap.servers"), e.getMessage());
  }

  @Test
  void theThirdPartyVariablesAreAllUsed() throws IOException {
    for (String variable : THIRD_PARTY.keySet()) {
      boolean used = overlays().stream().flatMap(o -> Manifests.of(o).serviceContainers().stream())
          .anyMatch(sc -> sc.env().settings().containsKey(variable));
      assertTrue(used, variable + " is allowed but set nowhere: drop it from THIRD_PARTY");
    }
    String entrypoint = Files.readString(Kustomize.root().resolve("image/component"));
    assertTrue(entrypoint.contains("$JAVA_OPTS"), "k8s/image/component no longer passes JAVA_OPTS to java");
  }

  /**
   * Every class of a service's module, or of the platform, that reads configuration is in the
   * service table, so none is left out of the checks above.
   */
  @Test
  void theServiceTableKnowsEveryClassThatReadsConfiguration() {
    Set<Class<?>> listed = new HashSet<>();
    for (Services s : Services.values()) listed.addAll(s.reads());
    List<String> missing = new ArrayList<>();
    for (Class<?> module : Stream.concat(Stream.of(ServiceApplication.class), Stream.of(Services.values()).map(s -> s.main)).toList()) {
      for (Class<?> c : classesBeside(module)) {
        if (ConfigurationCatalog.readsConfiguration(c) && !listed.contains(c)) missing.add(c.getName());
      }
    }
    assertEquals(List.of(), missing, "classes reading configuration that no service in Services lists");
  }

  /** The classes of the jar or folder a class was loaded from, but Micronaut's generated ones ($...). */
  private static List<Class<?>> classesBeside(Class<?> c) {
    Path where;
    try {
      where = Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
    List<String> names = new ArrayList<>();
    try {
      if (Files.isDirectory(where)) {
        try (Stream<Path> files = Files.walk(where)) {
          files.map(f -> where.relativize(f).toString()).forEach(names::add);
        }
      } else {
        try (JarFile jar = new JarFile(where.toFile())) {
          jar.stream().map(e -> e.getName()).forEach(names::add);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<Class<?>> classes = new ArrayList<>();
    for (String name : names) {
      String file = name.substring(name.lastIndexOf('/') + 1);
      if (!name.endsWith(".class") || file.startsWith("$") || name.startsWith("META-INF")) continue;
      try {
        classes.add(Class.forName(name.substring(0, name.length() - ".class".length()).replace('/', '.'), false, c.getClassLoader()));
      } catch (ClassNotFoundException e) {
        fail("cannot load " + name + " beside " + c.getName());
      }
    }
    return classes;
  }
}
