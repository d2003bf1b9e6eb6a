package resgraph.k8s;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/**
 * One overlay as kubectl renders it: every object as its raw tree and as its typed model
 * ({@link StrictParsing}). Rendered once per overlay for all the tests.
 */
record Manifests(String overlay, List<JsonNode> trees, List<Object> objects) {

  /** The namespace every object lives in. */
  static final String NAMESPACE = "resgraph";

  private static final YAMLMapper YAML = new YAMLMapper();
  private static final Map<String, Manifests> RENDERED = new ConcurrentHashMap<>();

  /** A Deployment or a StatefulSet: what runs pods. */
  record Workload(String kind, String name, Integer replicas, PodTemplateSpec template) {}

  /** A container of one of resgraph's services: an image named resgraph..., running the component its args name. */
  record ServiceContainer(Workload workload, Container container, Services service, ContainerEnv env) {
    String where() {
      return workload.kind() + " " + workload.name() + ", container " + container.getName();
    }

    /** A property's value in this container: as its variable sets it, else the default its service's code gives it. */
    String property(String name) {
      for (Class<?> c : service.reads()) {
        for (ConfigurationCatalog.Read r : ConfigurationCatalog.reads(c)) {
          if (r.name().equals(name)) return env.value(r.variable()).orElse(r.defaultValue());
        }
      }
      throw new AssertionError(service.component + " reads no property " + name);
    }
  }

  /** Every overlay under k8s/overlays, by folder name. */
  static List<String> overlays() {
    try (Stream<Path> dirs = Files.list(Kustomize.root().resolve("overlays"))) {
      return dirs.filter(d -> Files.isRegularFile(d.resolve("kustomization.yaml"))).map(d -> d.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Manifests of(String overlay) {
    return RENDERED.computeIfAbsent(overlay, o -> {
      String yaml = Kustomize.render(Kustomize.root().resolve("overlays").resolve(o));
      List<JsonNode> trees = YAML.readerFor(JsonNode.class).<JsonNode>readValues(yaml).readAll().stream()
          .filter(t -> !t.isNull() && !t.isMissingNode()).toList();
      return new Manifests(o, trees, trees.stream().map(StrictParsing::parse).toList());
    });
  }

  <T> List<T> all(Class<T> kind) {
    return objects.stream().filter(kind::isInstance).map(kind::cast).toList();
  }

  <T extends HasMetadata> Optional<T> named(Class<T> kind, String name) {
    return all(kind).stream().filter(o -> o.getMetadata().getName().equals(name)).findFirst();
  }

  List<Workload> workloads() {
    return Stream.concat(
        all(Deployment.class).stream().map(d -> new Workload("Deployment", d.getMetadata().getName(), d.getSpec().getReplicas(), d.getSpec().getTemplate())),
        all(StatefulSet.class).stream().map(s -> new Workload("StatefulSet", s.getMetadata().getName(), s.getSpec().getReplicas(), s.getSpec().getTemplate())))
        .toList();
  }

  List<ServiceContainer> serviceContainers() {
    List<ServiceContainer> found = new ArrayList<>();
    for (Workload w : workloads()) {
      for (Container c : w.template().getSpec().getContainers()) {
        if (!isResgraphImage(c.getImage())) continue;
        String component = c.getArgs().isEmpty() ? "" : c.getArgs().get(0);
        Services service = Services.byComponent(component)
            .orElseThrow(() -> new AssertionError(overlay + ": " + w.name() + " runs the resgraph image as '" + component + "', no service"));
        found.add(new ServiceContainer(w, c, service, ContainerEnv.of(this, c)));
      }
    }
    return found;
  }

  /** resgraph:TAG, resgraph-gpu:TAG, REGISTRY/resgraph:TAG... */
  static boolean isResgraphImage(String image) {
    return ImageRef.parse(image).name().startsWith("resgraph");
  }

  /** A ConfigMap by the name a pod refers to it by (kustomize's generated name, hash suffix included). */
  ConfigMap configMap(String name) {
    return named(ConfigMap.class, name).orElseThrow(() -> new AssertionError(overlay + ": no ConfigMap " + name));
  }
}
