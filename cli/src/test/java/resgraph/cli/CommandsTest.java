package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micronaut.context.ApplicationContext;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.ExactAblation;
import resgraph.model.Gpt2Tokenizer;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.Trace;
import resgraph.modelserver.ModelServer;
import resgraph.reference.ReferenceMethod;

/** The resgraph command as a user runs it: arguments in, JSON or one error line out, an exit code. */
class CommandsTest {

  private static final String PROMPT = "The keys to the cabinet are on the table";

  @TempDir static Path dir;
  private static Path model, saes;

  @BeforeAll
  static void generate() {
    Cli.Run r = Cli.resgraph("generate", "--out", dir.resolve("m").toString(), "--layers", "3", "--d-model", "40", "--heads", "5",
        "--d-sae", "300", "--l0", "10", "--seed", "3");
    assertEquals(0, r.code(), r.err());
    model = dir.resolve("m/model");
    saes = dir.resolve("m/saes");
    assertTrue(Files.isRegularFile(model.resolve("model.safetensors")));
    assertTrue(Files.isRegularFile(saes.resolve("blocks.2.hook_resid_pre/sae_weights.safetensors")));
  }

  private static String[] ablate(String... more) {
    List<String> args = new java.util.ArrayList<>(List.of("ablate", "--model", model.toString(), "--saes", saes.toString(),
        "--cache-dir", dir.resolve("cache").toString()));
    args.addAll(List.of(more));
    return args.toArray(String[]::new);
  }

  @Test
  void ablatePrintsEveryCandidatesEffectsAsJson() throws Exception {
    Cli.Run r = Cli.resgraph(ablate("--prompt", PROMPT, "--layer", "1"));
    assertEquals(0, r.code(), r.err());
    JsonNode json = new ObjectMapper().readTree(r.out());
    int[] tokens = Gpt2Tokenizer.encode(PROMPT, true);
    assertArrayEquals(tokens, new ObjectMapper().convertValue(json.get("tokens"), int[].class));
    assertEquals(tokens.length - 1, json.get("target").asInt());
    assertEquals(1, json.get("layer").asInt());
    try (SaeModel m = SaeModel.load(model, saes, null, null, Device.cpu())) {
      Trace t = m.trace(tokens);
      int[] candidates = t.candidates(Site.pre(1), 1, tokens.length - 1);
      List<ExactAblation.Effects> expected = ExactAblation.run(m, t, Site.pre(1), Site.pre(2), candidates, tokens.length - 1, 128);
      assertEquals(candidates.length, json.get("effects").size());
      for (int i = 0; i < candidates.length; i++) {
        JsonNode e = json.get("effects").get(i);
        assertEquals(candidates[i], e.get("latent").asInt());
        JsonNode down = e.get("downstream");
        assertEquals(expected.get(i).downstream().length, down.size());
        for (int k = 0; k < down.size(); k++) {
          assertEquals(expected.get(i).downstream()[k], down.get(k).get(0).asInt());
          assertEquals(expected.get(i).delta()[k], down.get(k).get(1).floatValue(), 1e-7f);
        }
      }
    }
  }

  @Test
  void ablateNamedLatentsAtATargetAgainstARemoteServerMatchesInProcess() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path credentials = dir.resolve("credentials");
    resgraph.cluster.Credentials.keep(credentials);
    Map<String, Object> props = new HashMap<>(Map.of("grpc.server.port", port, "grpc.server.host", "127.0.0.1",
        "resgraph.cache-dir", dir.resolve("cache").toString()));
    props.putAll(resgraph.platform.grpc.SecurityConfig.fromFolder(credentials));
    try (ApplicationContext server = ModelServer.start(props)) {
      String[] args = {"--prompt", PROMPT, "--layer", "0", "--target", "4", "--latents", "1,2,3"};
      Cli.Run local = Cli.resgraph(ablate(args));
      List<String> remote = new java.util.ArrayList<>(List.of(ablate(args)));
      remote.addAll(List.of("--server", "127.0.0.1:" + port, "--credentials", credentials.toString()));
      Cli.Run viaServer = Cli.resgraph(remote.toArray(String[]::new));
      assertEquals(0, local.code(), local.err());
      assertEquals(0, viaServer.code(), viaServer.err());
      assertEquals(local.out(), viaServer.out());
      JsonNode json = new ObjectMapper().readTree(local.out());
      assertEquals(4, json.get("target").asInt());
      assertEquals(3, json.get("effects").size());
      assertEquals(2, json.get("effects").get(1).get("latent").asInt());
    }
  }

  /**
   * ablate at resid_mid and resid_post sites, each effect e[i, j] against an independent float64
   * implementation of METHOD.md reading the same files: after an attention alone, an MLP alone, and
   * across whole blocks when --sites skips sites; TopK SAEs with layer-normed inputs, at GPT-2's
   * magnitudes.
   */
  @Test
  void ablateAtASiteMatchesTheIndependentReferenceEdgeByEdge() throws Exception {
    Path out = dir.resolve("sites");
    Cli.Run g = Cli.resgraph("generate", "--out", out.toString(), "--layers", "3", "--d-model", "40", "--heads", "5",
        "--d-sae", "200", "--l0", "8", "--seed", "5", "--sites", "mid,post", "--architecture", "topk",
        "--normalization", "layer_norm", "--realistic");
    assertEquals(0, g.code(), g.err());
    ReferenceMethod reference = ReferenceMethod.load(out.resolve("model"), out.resolve("saes"), null);
    int[] tokens = Gpt2Tokenizer.encode(PROMPT, true);
    int target = tokens.length - 1;
    // the site ablated, the chain if any, and where the effects must be measured
    String[][] runs = {
        {"1m", null, "blocks.1.hook_resid_post"}, // the next SAE: block 1's MLP alone
        {"0p", "0p,1m", "blocks.1.hook_resid_mid"}, // block 1's attention alone
        {"1m", "0m,1m,2p", "blocks.2.hook_resid_post"}, // block 1's MLP, then all of block 2
    };
    for (String[] run : runs) {
      List<String> args = new java.util.ArrayList<>(List.of("ablate", "--model", out.resolve("model").toString(),
          "--saes", out.resolve("saes").toString(), "--cache-dir", dir.resolve("cache").toString(), "--prompt", PROMPT,
          "--site", run[0]));
      if (run[1] != null) args.addAll(List.of("--sites", run[1]));
      Cli.Run r = Cli.resgraph(args.toArray(String[]::new));
      assertEquals(0, r.code(), r.err());
      JsonNode json = new ObjectMapper().readTree(r.out());
      String from = json.get("site").asText(), to = json.get("measured_at").asText();
      assertEquals(Site.parse(run[0]).hookName(), from);
      assertEquals(run[2], to);
      assertArrayEquals(reference.candidates(from, tokens, target), json.get("effects").findValues("latent").stream()
          .mapToInt(JsonNode::asInt).toArray(), "the latents ablated at " + from);
      int compared = 0;
      for (JsonNode e : json.get("effects")) {
        double[] expected = reference.ablate(from, e.get("latent").asInt(), to, tokens, target);
        double[] ours = new double[expected.length];
        for (JsonNode d : e.get("downstream")) ours[d.get(0).asInt()] = d.get(1).asDouble();
        double largest = java.util.Arrays.stream(expected).map(Math::abs).max().orElse(0);
        for (int j = 0; j < expected.length; j++) {
          // float32 in the JSON and in the linear maps: relative 2e-4, and a millionth of the largest
          double tolerance = 2e-4 * Math.abs(expected[j]) + 1e-6 * largest;
          assertTrue(Math.abs(ours[j] - expected[j]) <= tolerance, from + "." + e.get("latent") + " -> " + to + "." + j
              + ": ours " + ours[j] + ", reference " + expected[j]);
          if (expected[j] != 0) compared++;
        }
      }
      assertTrue(compared > 0, "no nonzero effects from " + from + " to " + to);
    }
  }

  @Test
  void badInputIsOneLineAndAnExitCode() {
    assertFails(Cli.resgraph(ablate("--prompt", PROMPT, "--layer", "7")), 1, "layer 7");
    assertFails(Cli.resgraph(ablate("--prompt", "", "--layer", "0")), 1, "empty");
    assertFails(Cli.resgraph(ablate("--prompt", PROMPT, "--layer", "0", "--latents", "300")), 1, "latent 300");
    assertFails(Cli.resgraph(ablate("--prompt", PROMPT, "--layer", "0", "--target", "99")), 1, "target position 99");
    assertFails(Cli.resgraph(ablate("--prompt", PROMPT, "--layer", "0", "--strategy", "fast")), 2, "--strategy");
    assertFails(Cli.resgraph(ablate("--layer", "0")), 2, "--prompt");
    assertFails(Cli.resgraph("ablate", "--model", dir.resolve("nowhere").toString(), "--saes", saes.toString(),
        "--prompt", PROMPT, "--layer", "0"), 1, "no model folder");
    assertFails(Cli.resgraph("generate", "--out", dir.resolve("x").toString(), "--heads", "7", "--d-model", "40"), 2,
        "not a multiple");
  }

  /**
   * The hub path as a new user meets it: a repository id downloaded from a mirror (--hub-url) once,
   * with its progress on the terminal, then ablated; and with no hub to reach, one line saying so.
   */
  @Test
  void hubRepositoriesDownloadFromAMirrorWithProgressOrSayWhyNot() throws Exception {
    com.sun.net.httpserver.HttpServer mirror = com.sun.net.httpserver.HttpServer.create(
        new java.net.InetSocketAddress(java.net.InetAddress.getLoopbackAddress(), 0), 0);
    Map<String, Path> repos = Map.of("acme/tiny-gpt2", model, "acme/tiny-saes", saes);
    mirror.createContext("/", exchange -> {
      try (exchange) {
        String[] parts = exchange.getRequestURI().getPath().substring(1).split("/resolve/main/", 2);
        java.util.Optional<Path> file = parts.length < 2 || !repos.containsKey(parts[0]) ? java.util.Optional.empty()
            : java.util.Optional.of(repos.get(parts[0]).resolve(parts[1])).filter(Files::isRegularFile);
        if (exchange.getRequestURI().getPath().equals("/api/models/acme/tiny-saes/tree/main")) {
          StringBuilder list = new StringBuilder("[");
          try (var walk = Files.walk(saes)) {
            for (Path f : walk.filter(Files::isRegularFile).toList()) {
              list.append(list.length() > 1 ? "," : "").append("{\"type\":\"file\",\"path\":\"")
                  .append(saes.relativize(f)).append("\"}");
            }
          }
          byte[] body = list.append(']').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
        } else if (file.isEmpty()) {
          exchange.sendResponseHeaders(404, -1);
        } else {
          byte[] body = Files.readAllBytes(file.get());
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
        }
      }
    });
    mirror.start();
    try {
      String url = "http://127.0.0.1:" + mirror.getAddress().getPort();
      Cli.Run r = Cli.resgraph("ablate", "--model", "acme/tiny-gpt2", "--saes", "acme/tiny-saes", "--hub-url", url,
          "--cache-dir", dir.resolve("hub-cache").toString(), "--prompt", PROMPT, "--layer", "0", "--latents", "1,2");
      assertEquals(0, r.code(), r.err());
      assertTrue(r.err().contains("downloading acme/tiny-gpt2 model.safetensors [") && r.err().contains("100%"),
          "the download shows its progress: " + r.err());
      assertEquals(2, new ObjectMapper().readTree(r.out()).get("effects").size());
    } finally {
      mirror.stop(0);
    }
    int closed;
    try (ServerSocket s = new ServerSocket(0)) {
      closed = s.getLocalPort();
    }
    Cli.Run offline = Cli.resgraph("ablate", "--model", "gpt2", "--saes", "gpt2-small-res-jb", "--hub-url", "http://127.0.0.1:" + closed,
        "--cache-dir", dir.resolve("empty-cache").toString(), "--prompt", PROMPT, "--layer", "0");
    assertFails(offline, 1, "cannot reach http://127.0.0.1:" + closed);
    assertTrue(offline.err().contains("openai-community/gpt2"), offline.err());
  }

  private static void assertFails(Cli.Run r, int code, String words) {
    assertEquals(code, r.code(), r.out() + r.err());
    assertTrue(r.out().isEmpty(), "nothing on stdout: " + r.out());
    String[] lines = r.err().strip().split("\n");
    String last = lines[lines.length - 1];
    assertTrue(last.startsWith("resgraph: ") && last.contains(words), "error line: " + r.err());
    assertTrue(!r.err().contains("\tat "), "no stack trace: " + r.err());
  }
}
