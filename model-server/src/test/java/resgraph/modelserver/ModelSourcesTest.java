package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.net.URI;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.SyntheticModel;
import resgraph.platform.ResgraphException;

/** Names that are not folders: synthetic models built in memory, and names that mean nothing. */
class ModelSourcesTest {

  @TempDir Path cache;

  private ModelSources sources() {
    return new ModelSources(cache, cache.resolve("hf"), URI.create("http://127.0.0.1:1"), "", HubClient.logging());
  }

  @Test
  void syntheticNamesBuildTheGeneratorsModelsInMemory() {
    ModelSources.Opened demo = sources().open("synthetic:demo:5", "synthetic:demo:5", null, Device.cpu());
    try (var m = demo.model()) {
      assertEquals(SyntheticModel.Spec.demo().n_layer(), m.config().n_layer());
      assertEquals(SyntheticModel.Spec.demo().d_sae(), m.sae(resgraph.model.Site.pre(0)).d_sae());
      assertEquals("(in memory)", demo.modelPath());
    }
    assertEquals(5, ModelSources.synthetic("synthetic:gpt2-small:5").seed());
    assertEquals(768, ModelSources.synthetic("synthetic:gpt2-small").n_embd());
  }

  @Test
  void badSyntheticNamesAreRefusedWithTheReason() {
    ResgraphException mixed = assertThrows(ResgraphException.class, () -> sources().open("synthetic:demo", "demo", null, Device.cpu()));
    assertEquals(ResgraphException.Kind.BAD_REQUEST, mixed.kind());
    ResgraphException shape = assertThrows(ResgraphException.class, () -> ModelSources.synthetic("synthetic:gpt5"));
    assertEquals(ResgraphException.Kind.NOT_FOUND, shape.kind());
    assertTrue(shape.getMessage().contains("gpt5"), shape.getMessage());
    ResgraphException seed = assertThrows(ResgraphException.class, () -> ModelSources.synthetic("synthetic:demo:x"));
    assertTrue(seed.getMessage().contains("seed"), seed.getMessage());
  }
}
