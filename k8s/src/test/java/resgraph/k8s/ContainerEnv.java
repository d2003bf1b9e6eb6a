package resgraph.k8s;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvFromSource;
import io.fabric8.kubernetes.api.model.EnvVar;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** A container's environment as the kubelet sets it: the ConfigMaps it takes whole (envFrom), then its own env, which wins. */
record ContainerEnv(Map<String, Setting> settings) {

  /** A variable: its literal value, or null when it comes from elsewhere (a Secret, the pod's own fields), as {@code source} says. */
  record Setting(String name, String value, String source) {}

  static ContainerEnv of(Manifests m, Container c) {
    Map<String, Setting> settings = new LinkedHashMap<>();
    for (EnvFromSource from : c.getEnvFrom()) {
      if (from.getConfigMapRef() == null) throw new AssertionError(c.getName() + " takes variables from something not a ConfigMap: " + from);
      String name = from.getConfigMapRef().getName();
      m.configMap(name).getData().forEach((k, v) -> settings.put(k, new Setting(k, v, "ConfigMap " + name)));
    }
    for (EnvVar v : c.getEnv()) {
      settings.put(v.getName(), v.getValueFrom() == null ? new Setting(v.getName(), v.getValue(), "env")
          : new Setting(v.getName(), null, v.getValueFrom().toString()));
    }
    return new ContainerEnv(settings);
  }

  Optional<String> value(String name) {
    return Optional.ofNullable(settings.get(name)).map(Setting::value);
  }
}
