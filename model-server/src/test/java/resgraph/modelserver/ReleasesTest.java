package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.Sae;
import resgraph.model.SaeModel;
import resgraph.model.Shapes;
import resgraph.platform.ResgraphException;

/**
 * SAELens releases found wherever a user keeps them: by name, by the origin a download recorded,
 * in the Hugging Face cache, by a folder's name, by the fields of cfg.json; and a copy that none of
 * these recognise is refused rather than given a guessed centring.
 */
class ReleasesTest {

  @TempDir Path dir;

  /** A hub that cannot be reached: anything these tests find, they find without it. */
  private ModelSources sources(Path huggingFaceCache) {
    return new ModelSources(dir.resolve("cache"), huggingFaceCache, URI.create("http://127.0.0.1:1"), "", HubClient.logging());
  }

  /** The SAEs of a generated model, with cfg.json saying nothing of centring, copied into {@code folder}. */
  private static Path silentCopy(Path folder) throws IOException {
    Path from = Shapes.dir(Shapes.THREE_HEADS).resolve("saes");
    try (Stream<Path> files = Files.walk(from)) {
      for (Path f : files.sorted(Comparator.naturalOrder()).toList()) {
        Path to = folder.resolve(from.relativize(f).toString());
        if (Files.isDirectory(f)) {
          Files.createDirectories(to);
        } else if (f.getFileName().toString().equals("cfg.json")) {
          Files.writeString(to, Files.readString(f).replaceAll("\"model_from_pretrained_kwargs\"\\s*:\\s*\\{[^}]*\\},?", "")
              .replaceAll(",\\s*}", "\n}"));
        } else {
          Files.copy(f, to);
        }
      }
    }
    return folder;
  }

  private static Path model() {
    return Shapes.dir(Shapes.THREE_HEADS).resolve("model");
  }

  @Test
  void aCopyNothingRecognisesIsRefusedNamingTheOption() throws IOException {
    Path copy = silentCopy(dir.resolve("my-saes"));
    ResgraphException e = assertThrows(ResgraphException.class,
        () -> sources(dir.resolve("hf")).open(model().toString(), copy.toString(), null, Device.cpu()));
    assertEquals(ResgraphException.Kind.UNUSABLE_FILE, e.kind());
    assertTrue(e.getMessage().contains("--centering on") && e.getMessage().contains("center_writing_weights"), e.getMessage());
    try (SaeModel m = sources(dir.resolve("hf")).open(model().toString(), copy.toString(), true, Device.cpu()).model()) {
      assertTrue(m.saes().stream().allMatch(s -> s.centered), "--centering on decides");
    }
  }

  @Test
  void aFolderNamedAfterTheReleaseOrItsRepositoryIsThatRelease() throws IOException {
    for (String name : new String[] {"gpt2-small-res-jb", "GPT2-Small-SAEs-Reformatted"}) {
      Path copy = silentCopy(dir.resolve(name));
      ModelSources.Opened opened = sources(dir.resolve("hf")).open(model().toString(), copy.toString(), null, Device.cpu());
      try (SaeModel m = opened.model()) {
        assertEquals("gpt2-small-res-jb", opened.release().orElseThrow().release().name());
        for (Sae s : m.saes()) {
          assertTrue(s.centered, "the release is centred");
          assertTrue(s.cfg.settings().stream().anyMatch(x -> x.name().equals("centering") && x.source().contains("gpt2-small-res-jb")),
              s.cfg.settings().toString());
        }
      }
    }
  }

  @Test
  void aDownloadsRecordedOriginAndAHuggingFaceCacheFolderNameTheirRelease() throws IOException {
    Path downloaded = silentCopy(dir.resolve("anywhere"));
    Files.writeString(downloaded.resolve(ModelSources.ORIGIN), "{\"repo\": \"jbloom/GPT2-Small-SAEs-Reformatted\"}");
    assertEquals(Optional.of("gpt2-small-res-jb"), ModelSources.recognise(downloaded).map(r -> r.release().name()));

    Path snapshot = silentCopy(dir.resolve("hf/models--jbloom--GPT2-Small-OAI-v5-32k-resid-mid-SAEs/snapshots/0123abc"));
    ModelSources.Recognised r = ModelSources.recognise(snapshot).orElseThrow();
    assertEquals("gpt2-small-resid-mid-v5-32k", r.release().name());
    assertTrue(r.how().contains("Hugging Face cache"), r.how());
  }

  @Test
  void cfgJsonFieldsRecogniseAnArbitrarilyNamedCopyOfJosephBloomsSaes() throws IOException {
    Path copy = dir.resolve("whatever");
    for (int l : new int[] {3, 4}) {
      Path sae = Files.createDirectories(copy.resolve("layer" + l));
      // the training-run dump these SAEs carry, which says nothing of centring
      Files.writeString(sae.resolve("cfg.json"), """
          {"model_name": "gpt2-small", "hook_point": "blocks.%d.hook_resid_pre", "hook_point_layer": %d,
           "hook_point_head_index": null, "dataset_path": "Skylion007/openwebtext", "is_dataset_tokenized": false,
           "context_size": 128, "d_in": 768, "expansion_factor": 32, "d_sae": 24576, "b_dec_init_method": "geometric_median",
           "l1_coefficient": 8e-05, "lr": 0.0004, "dtype": "torch.float32"}""".formatted(l, l));
    }
    ModelSources.Recognised r = ModelSources.recognise(copy).orElseThrow();
    assertEquals("gpt2-small-res-jb", r.release().name());
    assertEquals("by its cfg.json files", r.how());
    // the same fields at another width are someone else's SAEs
    Files.writeString(copy.resolve("layer4/cfg.json"), Files.readString(copy.resolve("layer4/cfg.json")).replace("24576", "12288"));
    assertEquals(Optional.empty(), ModelSources.recognise(copy));
  }

  @Test
  void gpt2InTheHuggingFaceCacheIsUsedWithoutDownloading() throws IOException {
    Path repo = dir.resolve("hf/models--openai-community--gpt2");
    Path snapshot = Files.createDirectories(repo.resolve("snapshots/5f91d94bd9cd7190a9f3216ff93cd1dd95f2c7be"));
    Files.createDirectories(repo.resolve("refs"));
    Files.writeString(repo.resolve("refs/main"), "5f91d94bd9cd7190a9f3216ff93cd1dd95f2c7be\n");
    Files.copy(model().resolve("config.json"), snapshot.resolve("config.json"));
    Files.copy(model().resolve("model.safetensors"), snapshot.resolve("model.safetensors"));
    Path saes = Shapes.dir(Shapes.THREE_HEADS).resolve("saes");
    for (String name : new String[] {"gpt2", "openai-community/gpt2"}) {
      assertEquals(snapshot, sources(dir.resolve("hf")).locate(name, saes.toString()).model(), name);
    }
    // not in the cache: the unreachable hub is asked, and says so
    ResgraphException e = assertThrows(ResgraphException.class,
        () -> sources(dir.resolve("empty")).locate("gpt2", saes.toString()));
    assertEquals(ResgraphException.Kind.UNAVAILABLE, e.kind());
    assertTrue(e.getMessage().contains("openai-community/gpt2"), e.getMessage());
  }
}
