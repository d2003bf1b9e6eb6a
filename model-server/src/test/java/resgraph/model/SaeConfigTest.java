package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import resgraph.model.SaeConfig.Architecture;
import resgraph.model.SaeConfig.Normalization;
import resgraph.model.SaeConfig.Setting;
import resgraph.platform.ResgraphException;

/** cfg.json in the layouts SAELens has written over the years, and what resgraph refuses to guess. */
class SaeConfigTest {

  private static final Path FILE = Path.of("/saes/layer-3/cfg.json");

  private static SaeConfig read(String json) throws Exception {
    JsonNode node = new ObjectMapper().readTree(json.replace('\'', '"'));
    return SaeConfig.of(node, FILE);
  }

  private static String source(SaeConfig c, String setting) {
    return c.settings().stream().filter(s -> s.name().equals(setting)).map(Setting::source).findFirst().orElseThrow();
  }

  private static void refused(String json, String... named) {
    ResgraphException e = assertThrows(ResgraphException.class, () -> read(json));
    assertEquals(ResgraphException.Kind.UNUSABLE_FILE, e.kind());
    assertTrue(e.getMessage().startsWith(FILE.toString()), e.getMessage());
    for (String n : named) assertTrue(e.getMessage().contains(n), "\"" + e.getMessage() + "\" should name " + n);
  }

  @Test
  void theFlatLayoutOfSaeLensFive() throws Exception {
    SaeConfig c = read("{'architecture': 'jumprelu', 'd_in': 64, 'd_sae': 256, 'hook_name': 'blocks.3.hook_resid_mid',"
        + " 'hook_layer': 3, 'hook_head_index': null, 'activation_fn_str': 'relu', 'apply_b_dec_to_input': false,"
        + " 'prepend_bos': true, 'normalize_activations': 'layer_norm',"
        + " 'model_from_pretrained_kwargs': {'center_writing_weights': false}}");
    assertEquals(new Site(3, Site.Kind.MID), c.site());
    assertEquals(Architecture.JUMPRELU, c.architecture());
    assertEquals(Normalization.LAYER_NORM, c.normalization());
    assertFalse(c.applyBDecToInput());
    assertEquals(Boolean.FALSE, c.centerWritingWeights());
    assertEquals("cfg.json normalize_activations", source(c, "normalize_activations"));
    assertEquals("cfg.json apply_b_dec_to_input", source(c, "apply_b_dec_to_input"));
  }

  @Test
  void theMetadataLayoutOfSaeLensSix() throws Exception {
    SaeConfig c = read("{'d_in': 64, 'd_sae': 256, 'dtype': 'float32', 'apply_b_dec_to_input': true,"
        + " 'normalize_activations': 'none', 'reshape_activations': 'none', 'architecture': 'topk', 'k': 16,"
        + " 'metadata': {'model_name': 'gpt2-small', 'hook_name': 'blocks.7.hook_resid_post', 'prepend_bos': false,"
        + " 'model_from_pretrained_kwargs': {'center_writing_weights': true}, 'sae_lens_version': '6.5.0'}}");
    assertEquals(new Site(7, Site.Kind.POST), c.site());
    assertEquals(Architecture.TOPK, c.architecture());
    assertEquals(16, c.k());
    assertFalse(c.prependBos(), "metadata.prepend_bos is read, not defaulted");
    assertEquals(Boolean.TRUE, c.centerWritingWeights(), "metadata.model_from_pretrained_kwargs is read");
    assertEquals("cfg.json metadata.prepend_bos", source(c, "prepend_bos"));
    assertEquals("cfg.json metadata.hook_name", source(c, "hook"));
    assertEquals("gpt2-small", c.fields().path("model_name").asText(), "metadata is merged for recognising releases");
  }

  @Test
  void topKStoredAsAStandardSaeWithATopKActivation() throws Exception {
    // how SAELens before 6 stored OpenAI's GPT-2 SAEs
    SaeConfig c = read("{'architecture': 'standard', 'd_in': 768, 'd_sae': 32768, 'hook_name': 'blocks.0.hook_resid_post',"
        + " 'activation_fn_str': 'topk', 'activation_fn_kwargs': {'k': 32}, 'normalize_activations': 'layer_norm'}");
    assertEquals(Architecture.TOPK, c.architecture());
    assertEquals(32, c.k());
    assertTrue(source(c, "architecture").contains("activation_fn_kwargs"), source(c, "architecture"));
  }

  @Test
  void oldTrainingDumpsAndTheirDefaults() throws Exception {
    SaeConfig c = read("{'model_name': 'gpt2-small', 'hook_point': 'blocks.5.hook_resid_pre', 'hook_point_layer': 5,"
        + " 'hook_point_head_index': null, 'd_in': 768, 'd_sae': 24576, 'normalize_activations': false}");
    assertEquals(Site.pre(5), c.site());
    assertEquals(Architecture.STANDARD, c.architecture());
    assertEquals(Normalization.NONE, c.normalization());
    assertTrue(c.applyBDecToInput());
    assertTrue(c.prependBos());
    assertNull(c.centerWritingWeights(), "an old dump does not say");
    assertEquals("default (cfg.json does not say)", source(c, "prepend_bos"));
    refused("{'hook_name': 'blocks.0.hook_resid_pre', 'd_in': 8, 'd_sae': 8, 'normalize_activations': true}",
        "normalize_activations", "expected_average_only_in", "norm_scaling_factor");
  }

  @Test
  void whatCannotBeRunIsRefusedNamingTheField() {
    String base = "'d_in': 8, 'd_sae': 16, 'hook_name': 'blocks.0.hook_resid_pre'";
    refused("{'d_in': 8, 'd_sae': 16, 'hook_name': 'blocks.0.attn.hook_z'}", "hook_name", "blocks.0.attn.hook_z", "residual stream");
    refused("{'d_in': 8, 'd_sae': 16}", "hook_name", "missing");
    refused("{" + base + ", 'architecture': 'crosscoder'}", "architecture", "crosscoder");
    refused("{" + base + ", 'architecture': 'batchtopk'}", "architecture", "batchtopk", "jumprelu");
    refused("{" + base + ", 'activation_fn_str': 'tanh-relu'}", "activation_fn_str", "tanh-relu");
    refused("{" + base + ", 'normalize_activations': 'per_token'}", "normalize_activations", "per_token");
    refused("{" + base + ", 'normalize_activations': 'expected_average_only_in'}", "expected_average_only_in");
    refused("{" + base + ", 'architecture': 'topk', 'k': 8, 'activation_fn_kwargs': {'k': 16}}", "k", "16", "agree");
    refused("{" + base + ", 'hook_head_index': 3}", "hook_head_index");
    refused("{" + base + ", 'reshape_activations': 'hook_z'}", "reshape_activations");
    refused("{" + base + ", 'architecture': 'topk'}", "k", "missing");
    refused("{" + base + ", 'rescale_acts_by_decoder_norm': true}", "rescale_acts_by_decoder_norm", "topk");
    refused("{" + base + ", 'prepend_bos': 'yes'}", "prepend_bos", "true or false");
    refused("{'d_in': 8, 'hook_name': 'blocks.0.hook_resid_pre'}", "d_sae");
  }

  @Test
  void centringIsDecidedByOverrideReleaseCfgOrLayerNormAndNeverGuessed() throws Exception {
    SaeConfig silent = read("{'d_in': 8, 'd_sae': 16, 'hook_name': 'blocks.0.hook_resid_pre'}");
    SaeConfig says = read("{'d_in': 8, 'd_sae': 16, 'hook_name': 'blocks.0.hook_resid_pre',"
        + " 'model_from_pretrained_kwargs': {'center_writing_weights': true}}");
    SaeConfig layerNorm = read("{'d_in': 8, 'd_sae': 16, 'hook_name': 'blocks.0.hook_resid_pre', 'normalize_activations': 'layer_norm'}");
    Setting release = new Setting("centering", "on", "release gpt2-small-res-jb (by the folder's name)");

    assertEquals("off", SaeModel.centering(says, false, release).value(), "the command line wins");
    assertEquals("command line (--centering)", SaeModel.centering(says, false, release).source());
    assertEquals(release, SaeModel.centering(silent, null, release));
    assertEquals(new Setting("centering", "on", "cfg.json model_from_pretrained_kwargs.center_writing_weights"),
        SaeModel.centering(says, null, null));
    assertTrue(SaeModel.centering(layerNorm, null, null).source().contains("layer_norm"));
    ResgraphException e = assertThrows(ResgraphException.class, () -> SaeModel.centering(silent, null, null));
    assertTrue(e.getMessage().contains("--centering on") && e.getMessage().contains("--centering off"), e.getMessage());
    assertTrue(e.getMessage().startsWith(FILE.toString()), e.getMessage());
  }
}
