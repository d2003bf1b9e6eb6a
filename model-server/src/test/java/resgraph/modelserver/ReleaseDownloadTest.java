package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.Sae;
import resgraph.model.SaeConfig;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.SyntheticModel;
import resgraph.reference.ReferenceMethod;
import resgraph.reference.ReferenceSaes;

/**
 * SAELens releases asked for by name, from a local mirror of the hub laid out as the real
 * repositories are (the SAEs written by the reference's own generator, for a 12-layer model of
 * GPT-2 small's depth): each member downloaded once into its folder, the release recognised, its
 * centring and Neuronpedia ids taken from the release table, and the folder recognised again later
 * by the origin recorded in it.
 */
class ReleaseDownloadTest {

  @TempDir static Path dir;
  private static HttpServer hub;
  private static String base;

  @BeforeAll
  static void mirror() throws IOException {
    SyntheticModel.write(SyntheticModel.Spec.builder().layers(12).dModel(32).heads(2).positions(32).dSae(64).l0(4).build(),
        dir.resolve("tiny"), SyntheticModel.Format.PLAIN);
    Path model = dir.resolve("tiny/model");
    List<String> post = new ArrayList<>(), pre = new ArrayList<>();
    for (int l = 0; l < 12; l++) {
      post.add(new Site(l, Site.Kind.POST).hookName());
      pre.add(Site.pre(l).hookName());
    }
    pre.add(new Site(11, Site.Kind.POST).hookName());
    ReferenceSaes.write(model, dir.resolve("hub/jbloom/GPT2-Small-OAI-v5-32k-resid-post-SAEs"), ReferenceSaes.Spec.builder()
        .hooks(post.toArray(String[]::new)).architecture(ReferenceSaes.Architecture.TOPK).layout(ReferenceSaes.Layout.LEGACY_TOPK)
        .normalization(ReferenceMethod.Normalization.LAYER_NORM).prependBos(false).dSae(64).l0(8)
        .folderPattern("v5_32k_layer_{l}.pt").build());
    ReferenceSaes.write(model, dir.resolve("hub/jbloom/GPT2-Small-SAEs-Reformatted"), ReferenceSaes.Spec.builder()
        .hooks(pre.toArray(String[]::new)).layout(ReferenceSaes.Layout.JB_DUMP).dSae(64).l0(4).build());
    Files.createDirectories(dir.resolve("hub/acme"));
    Files.move(model, dir.resolve("hub/acme/tiny-gpt2"));
    hub = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    hub.createContext("/", exchange -> {
      try (exchange) {
        // /{repo}/resolve/main/{path} -> hub/{repo}/{path}
        String path = exchange.getRequestURI().getPath().replaceFirst("/resolve/main/", "/");
        Path file = dir.resolve("hub").resolve(path.substring(1)).normalize();
        if (!file.startsWith(dir.resolve("hub")) || !Files.isRegularFile(file)) {
          exchange.sendResponseHeaders(404, -1);
          return;
        }
        byte[] body = Files.readAllBytes(file);
        exchange.sendResponseHeaders(200, body.length);
        exchange.getResponseBody().write(body);
      }
    });
    hub.start();
    base = "http://127.0.0.1:" + hub.getAddress().getPort();
  }

  @AfterAll
  static void stop() {
    hub.stop(0);
  }

  private static ModelSources sources(String cache) {
    return new ModelSources(dir.resolve(cache), dir.resolve("no-hf-cache"), URI.create(base), "", HubClient.logging());
  }

  @Test
  void openAisTopKSaesLoadByTheirSaeLensName() {
    ModelSources.Opened opened = sources("cache-v5").open("acme/tiny-gpt2", "gpt2-small-resid-post-v5-32k", null, Device.cpu());
    try (SaeModel m = opened.model()) {
      SaeReleases.Release release = opened.release().orElseThrow().release();
      assertEquals("gpt2-small-resid-post-v5-32k", release.name());
      assertEquals(12, m.saes().size());
      Sae sae = m.sae(new Site(3, Site.Kind.POST));
      assertEquals(SaeConfig.Architecture.TOPK, sae.architecture());
      assertEquals(8, sae.cfg.k());
      assertEquals(SaeConfig.Normalization.LAYER_NORM, sae.cfg.normalization());
      assertEquals("gpt2-small/3-res_post_32k-oai", release.member(sae.site()).orElseThrow().neuronpedia());
      assertTrue(sae.cfg.settings().stream().anyMatch(s -> s.name().equals("centering") && s.source().startsWith("release")),
          sae.cfg.settings().toString());
      assertTrue(Files.isRegularFile(dir.resolve("cache-v5/hub/jbloom/GPT2-Small-OAI-v5-32k-resid-post-SAEs/v5_32k_layer_3.pt/cfg.json")),
          "each member in its own folder, named as on the hub");
      // a graph's first hop runs on them
      int[] tokens = m.tokenize("The lighthouse keeper climbed the stairs");
      assertEquals(new Site(4, Site.Kind.POST), m.chain(null, null, List.of()).next(new Site(3, Site.Kind.POST)));
      assertTrue(m.trace(tokens).candidates(new Site(3, Site.Kind.POST), m.firstAblatable(), tokens.length - 1).length > 0);
    }
    // the folder a download made is that release wherever it is loaded from
    Path folder = dir.resolve("cache-v5/hub/jbloom/GPT2-Small-OAI-v5-32k-resid-post-SAEs");
    ModelSources.Recognised again = ModelSources.recognise(folder).orElseThrow();
    assertEquals("gpt2-small-resid-post-v5-32k", again.release().name());
    assertTrue(again.how().contains("downloaded from"), again.how());
  }

  @Test
  void josephBloomsSaesLoadByNameCentredAsTheReleaseTableSays() {
    ModelSources.Opened opened = sources("cache-jb").open("acme/tiny-gpt2", "gpt2-small-res-jb", null, Device.cpu());
    try (SaeModel m = opened.model()) {
      assertEquals(13, m.saes().size(), "resid_pre of every block and resid_post of the last");
      // their cfg.json says nothing of centring: the release table decides
      for (Sae s : m.saes()) assertTrue(s.centered, s + " reads the centred residual");
      SaeReleases.Release release = opened.release().orElseThrow().release();
      assertEquals("gpt2-small/12-res-jb", release.member(new Site(11, Site.Kind.POST)).orElseThrow().neuronpedia());
      assertEquals("gpt2-small/5-res-jb", release.member(Site.pre(5)).orElseThrow().neuronpedia());
    }
  }
}
