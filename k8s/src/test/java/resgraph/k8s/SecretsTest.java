package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * No secret is in a manifest: no Secret object; no variable named like a secret (…PASSWORD…,
 * …TOKEN…, …KEY…, …SECRET…) with a value written out, in a container or a ConfigMap it takes,
 * unless it names a file (…_FILE=/path, as the services read theirs); no field whose name ends in
 * such a word holding a string; nothing shaped like a key, a certificate or a token anywhere. The
 * operator creates the Secrets (README.md); the manifests only refer to them.
 */
class SecretsTest {

  static final Pattern SECRET_VARIABLE = Pattern.compile("(?i).*(PASSWORD|PASSWD|TOKEN|KEY|SECRET|CREDENTIAL|AUTH).*");
  static final Pattern FILE_VARIABLE = Pattern.compile("(?i).*_(FILE|PATH)");
  /** A field named for what it holds: password, apiKey, token... (not secretName, automountServiceAccountToken's boolean, a Secret's key). */
  static final Pattern SECRET_FIELD = Pattern.compile("(?i)(.*[._-])?(password|passwd|token|secret|api[_-]?key|private[_-]?key|credentials?)");
  /** PEM blocks, JSON web tokens, Hugging Face and GitHub tokens. */
  static final Pattern SECRET_SHAPE = Pattern.compile("-----BEGIN|eyJ[\\w-]{8,}\\.eyJ|\\bhf_[A-Za-z0-9]{20,}|\\bgh[pousr]_[A-Za-z0-9]{20,}");

  static List<String> overlays() {
    return Manifests.overlays();
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void noSecretIsWrittenInAManifest(String overlay) {
    Manifests m = Manifests.of(overlay);
    List<String> found = new ArrayList<>();
    for (JsonNode tree : m.trees()) {
      String object = tree.path("kind").asString() + " " + tree.path("metadata").path("name").asString();
      if (tree.path("kind").asString().equals("Secret")) found.add(object + ": a Secret");
      scan(tree, object, found);
    }
    for (ConfigMap c : m.all(ConfigMap.class)) c.getData().forEach((k, v) -> variable("ConfigMap " + c.getMetadata().getName(), k, v, found));
    for (Manifests.Workload w : m.workloads()) {
      for (Container c : w.template().getSpec().getContainers()) {
        for (EnvVar v : c.getEnv()) variable(w.name() + "/" + c.getName(), v.getName(), v.getValue(), found);
      }
    }
    assertEquals(List.of(), found, overlay);
  }

  private static void variable(String where, String name, String value, List<String> found) {
    if (value == null || !SECRET_VARIABLE.matcher(name).matches()) return;
    if (FILE_VARIABLE.matcher(name).matches() && value.startsWith("/")) return;
    found.add(where + ": " + name + " has its value written out: take it from a Secret, or name a file");
  }

  /** Fields named for a secret that hold a string, and strings shaped like one. */
  private static void scan(JsonNode node, String path, List<String> found) {
    if (node.isObject()) {
      for (Map.Entry<String, JsonNode> field : node.properties()) {
        if (field.getValue().isString() && SECRET_FIELD.matcher(field.getKey()).matches()) found.add(path + "." + field.getKey() + ": holds a secret");
        scan(field.getValue(), path + "." + field.getKey(), found);
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) scan(node.get(i), path + "[" + i + "]", found);
    } else if (node.isString() && SECRET_SHAPE.matcher(node.asString()).find()) {
      found.add(path + ": shaped like a secret");
    }
  }

  @Test
  void aSecretWrittenOutIsFound() {
    List<String> found = new ArrayList<>();
    scan(JsonMapper.shared().readTree("{\"stringData\": {\"password\": \"hunter2\"}, \"data\": {\"tls.key\": \"-----BEGIN PRIVATE KEY-----\"}}"), "x", found);
    variable("x", "NEO4J_AUTH", "neo4j/hunter2", found);
    variable("x", "HF_TOKEN", "hf_abc", found);
    variable("x", "NEO4J_PASSWORD_FILE", "/etc/resgraph/neo4j/password", found);
    assertEquals(4, found.size(), found.toString());
  }
}
