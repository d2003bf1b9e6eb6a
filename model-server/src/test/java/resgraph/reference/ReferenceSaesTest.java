package resgraph.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.reference.TinyModels.JSON;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.reference.ReferenceMethod.Normalization;
import resgraph.reference.ReferenceMethod.Sae;
import resgraph.reference.ReferenceMethod.SaeConfig;
import resgraph.reference.ReferenceSaes.Architecture;
import resgraph.reference.ReferenceSaes.Centering;
import resgraph.reference.ReferenceSaes.Dtype;
import resgraph.reference.ReferenceSaes.Layout;
import resgraph.reference.ReferenceSaes.ScalingFactor;
import resgraph.reference.ReferenceSaes.Spec;
import resgraph.reference.TinyModels.Gpt2Files;

/**
 * {@link ReferenceSaes} writes what it is asked for, in the real SAELens layouts, and the SAEs load
 * back into {@link ReferenceMethod} firing about l0 latents per position on prompts they were not
 * calibrated on.
 */
class ReferenceSaesTest {

  private static final int VOCAB = 16;
  private static final int PROMPT = 16;

  @TempDir Path tmp;

  @Test
  void everyArchitectureLoadsBackFiringAboutL0LatentsPerPosition() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    List<Spec> specs = List.of(
        Spec.builder().hooks("blocks.0.hook_resid_pre", "blocks.1.hook_resid_mid",
            "blocks.1.hook_resid_post").centering(Centering.CENTERED).build(),
        Spec.builder().hooks("blocks.1.hook_resid_mid", "blocks.0.hook_resid_pre")
            .architecture(Architecture.JUMPRELU).normalization(Normalization.LAYER_NORM)
            .layout(Layout.V6).centering(Centering.UNCENTERED).prependBos(false).l0(3).build(),
        Spec.builder().hooks("blocks.0.hook_resid_mid", "blocks.1.hook_resid_post")
            .architecture(Architecture.JUMPRELU_LOG_THRESHOLD)
            .normalization(Normalization.CONSTANT_NORM_RESCALE)
            .scalingFactor(ScalingFactor.RANDOM).dSae(48).l0(6).seed(1).build(),
        Spec.builder().hooks("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
            .architecture(Architecture.TOPK).normalization(Normalization.LAYER_NORM)
            .layout(Layout.LEGACY_TOPK).dtype(Dtype.BF16).folderPattern("v5_32k_layer_{l}.pt")
            .l0(5).build(),
        Spec.builder().hooks("blocks.1.hook_resid_pre").architecture(Architecture.GATED)
            .layout(Layout.V6).applyBDecToInput(false).seed(2).build(),
        Spec.builder().layout(Layout.JB_DUMP).scalingFactor(ScalingFactor.ONES).build());
    for (int c = 0; c < specs.size(); c++) {
      Spec spec = specs.get(c);
      Path saes = tmp.resolve("s" + c);
      ReferenceSaes.write(model, saes, spec);
      // The JB dump says nothing about centring; it imitates a release that needs it.
      ReferenceMethod r = ReferenceMethod.load(model, saes,
          spec.layout() == Layout.JB_DUMP ? Boolean.TRUE : null);
      List<String> hooks = spec.hooks().isEmpty()
          ? List.of("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre") : spec.hooks();
      assertEquals(new TreeSet<>(hooks), new TreeSet<>(r.hooks()), "case " + c);
      assertEquals(spec.prependBos(), r.prependBos());
      for (String hook : hooks) {
        assertEquals(spec.centering() == Centering.CENTERED || spec.layout() == Layout.JB_DUMP,
            r.centered(hook), "case " + c + " " + hook);
        assertEquals(spec.dSae(), r.dSae(hook));
        int[] counts = activeCounts(r, hook);
        double mean = Arrays.stream(counts).average().orElseThrow();
        String what = "case " + c + " " + hook + ": mean L0 " + mean + " for " + spec.l0();
        if (spec.architecture() == Architecture.TOPK) {
          assertTrue(Arrays.stream(counts).allMatch(n -> n <= spec.l0()), what);
          assertTrue(mean >= 0.8 * spec.l0(), what);
        } else {
          assertTrue(mean >= 0.7 * spec.l0() && mean <= 1.3 * spec.l0(), what);
        }
      }
    }
  }

  @Test
  void jumpReluThresholdsArePositiveAndTheJumpTurnsSomePositivePreActivationsOff()
      throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path saes = tmp.resolve("s");
    ReferenceSaes.write(model, saes, Spec.builder().hooks("blocks.1.hook_resid_mid")
        .architecture(Architecture.JUMPRELU).normalization(Normalization.LAYER_NORM).build());
    ReferenceMethod.Config config = ReferenceMethod.readConfig(model.resolve("config.json"));
    Sae sae = ReferenceMethod.readSae(saes.resolve("blocks.1.hook_resid_mid"), config, null);
    assertTrue(Arrays.stream(sae.threshold()).allMatch(t -> t > 0));
    // The same weights without the jump: ReLU(pre).
    SaeConfig c = sae.cfg();
    Sae relu = new Sae(new SaeConfig(c.site(), c.d_in(), c.d_sae(),
        ReferenceMethod.Architecture.STANDARD, 0, c.normalize_activations(),
        c.apply_b_dec_to_input(), c.prepend_bos(), false, null), false, sae.W_enc(), sae.b_enc(),
        sae.W_dec(), sae.b_dec(), null, null, null, null, null);
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    int jumped = 0;
    int positive = 0;
    for (int[] tokens : prompts(r.prependBos(), 5)) {
      double[][] x = r.residual("blocks.1.hook_resid_mid", tokens);
      for (int p = 1; p < tokens.length; p++) {
        double[] f = ReferenceMethod.encode(sae, x[p]);
        double[] pre = ReferenceMethod.encode(relu, x[p]);
        for (int i = 0; i < f.length; i++) {
          jumped += f[i] > 0 ? 1 : 0;
          positive += pre[i] > 0 ? 1 : 0;
        }
      }
    }
    assertTrue(positive > 1.5 * jumped && jumped > 0, positive + " positive, " + jumped + " on");
  }

  @Test
  void legacyCfgHasEveryOptionAtTheTopLevel() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path saes = tmp.resolve("s");
    ReferenceSaes.write(model, saes, Spec.builder().hooks("blocks.1.hook_resid_mid")
        .architecture(Architecture.JUMPRELU_LOG_THRESHOLD).normalization(Normalization.LAYER_NORM)
        .centering(Centering.CENTERED).scalingFactor(ScalingFactor.RANDOM).prependBos(false)
        .applyBDecToInput(false).dSae(24).l0(3).build());
    Path dir = saes.resolve("blocks.1.hook_resid_mid");
    JsonNode cfg = JSON.readTree(dir.resolve("cfg.json").toFile());
    assertFalse(cfg.has("metadata"));
    assertEquals("jumprelu", cfg.get("architecture").asText());
    assertEquals("blocks.1.hook_resid_mid", cfg.get("hook_name").asText());
    assertEquals(1, cfg.get("hook_layer").asInt());
    assertEquals("relu", cfg.get("activation_fn_str").asText());
    assertEquals(8, cfg.get("d_in").asInt());
    assertEquals(24, cfg.get("d_sae").asInt());
    assertEquals("layer_norm", cfg.get("normalize_activations").asText());
    assertFalse(cfg.get("apply_b_dec_to_input").asBoolean());
    assertFalse(cfg.get("prepend_bos").asBoolean());
    assertTrue(cfg.get("finetuning_scaling_factor").asBoolean());
    assertTrue(cfg.get("model_from_pretrained_kwargs").get("center_writing_weights").asBoolean());

    Map<String, ReferenceMethod.Tensor> t =
        ReferenceMethod.readSafetensors(dir.resolve("sae_weights.safetensors"));
    assertEquals(Set.of("W_enc", "b_enc", "W_dec", "b_dec", "log_threshold", "scaling_factor"),
        t.keySet());
    assertArrayEquals(new int[] {8, 24}, t.get("W_enc").shape());
    assertArrayEquals(new int[] {24, 8}, t.get("W_dec").shape());
    assertArrayEquals(new int[] {24}, t.get("log_threshold").shape());
    assertTrue(t.values().stream().allMatch(x -> x.dtype().equals("F32")));
    double[] scaling = t.get("scaling_factor").data();
    assertTrue(Arrays.stream(scaling).allMatch(s -> s >= 0.5 && s <= 1.5));
    assertTrue(Arrays.stream(scaling).anyMatch(s -> Math.abs(s - 1) > 0.1), "not all ones");
    double[] row = t.get("W_dec").data();
    double norm = 0;
    for (int k = 0; k < 8; k++) {
      norm += row[k] * row[k];
    }
    assertEquals(1.0, norm, 1e-6, "decoder rows are unit directions");
  }

  @Test
  void legacyTopKIsStoredAsOpenAisV5SaesAreInBf16() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path saes = tmp.resolve("s");
    ReferenceSaes.write(model, saes, Spec.builder()
        .hooks("blocks.0.hook_resid_post", "blocks.1.hook_resid_post")
        .architecture(Architecture.TOPK).normalization(Normalization.LAYER_NORM)
        .layout(Layout.LEGACY_TOPK).dtype(Dtype.BF16).folderPattern("v5_32k_layer_{l}.pt")
        .l0(5).build());
    assertEquals(Set.of("v5_32k_layer_0.pt", "v5_32k_layer_1.pt"), folders(saes));
    Path dir = saes.resolve("v5_32k_layer_1.pt");
    JsonNode cfg = JSON.readTree(dir.resolve("cfg.json").toFile());
    assertEquals("standard", cfg.get("architecture").asText());
    assertEquals("topk", cfg.get("activation_fn_str").asText());
    assertEquals(5, cfg.get("activation_fn_kwargs").get("k").asInt());
    assertFalse(cfg.has("k"));
    assertEquals("blocks.1.hook_resid_post", cfg.get("hook_name").asText());
    assertFalse(cfg.has("model_from_pretrained_kwargs"), "centering UNSTATED by default");
    Map<String, ReferenceMethod.Tensor> t =
        ReferenceMethod.readSafetensors(dir.resolve("sae_weights.safetensors"));
    assertEquals(Set.of("W_enc", "b_enc", "W_dec", "b_dec"), t.keySet());
    assertTrue(t.values().stream().allMatch(x -> x.dtype().equals("BF16")));
  }

  @Test
  void v6CfgKeepsTheSaesOwnFieldsOnTopAndTheRestUnderMetadata() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path saes = tmp.resolve("s");
    ReferenceSaes.write(model, saes, Spec.builder().hooks("blocks.0.hook_resid_pre")
        .architecture(Architecture.GATED).layout(Layout.V6).centering(Centering.UNCENTERED)
        .build());
    Path dir = saes.resolve("blocks.0.hook_resid_pre");
    JsonNode cfg = JSON.readTree(dir.resolve("cfg.json").toFile());
    assertEquals(Set.of("d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input",
        "normalize_activations", "reshape_activations", "architecture", "metadata"), keys(cfg));
    assertEquals("gated", cfg.get("architecture").asText());
    JsonNode meta = cfg.get("metadata");
    assertEquals("blocks.0.hook_resid_pre", meta.get("hook_name").asText());
    assertTrue(meta.get("prepend_bos").asBoolean());
    assertFalse(meta.get("model_from_pretrained_kwargs").get("center_writing_weights").asBoolean());
    assertTrue(meta.has("sae_lens_version"));
    assertEquals(Set.of("W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"),
        ReferenceMethod.readSafetensors(dir.resolve("sae_weights.safetensors")).keySet());

    Path topk = tmp.resolve("topk");
    ReferenceSaes.write(model, topk, Spec.builder().hooks("blocks.0.hook_resid_pre")
        .architecture(Architecture.TOPK).layout(Layout.V6).l0(3).build());
    JsonNode top = JSON.readTree(topk.resolve("blocks.0.hook_resid_pre/cfg.json").toFile());
    assertEquals("topk", top.get("architecture").asText());
    assertEquals(3, top.get("k").asInt());
    assertFalse(top.get("rescale_acts_by_decoder_norm").asBoolean());
    assertFalse(top.get("metadata").has("model_from_pretrained_kwargs"));
  }

  @Test
  void v6AndLegacyLayoutsOfOneSeedAreTheSameSae() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path legacy = tmp.resolve("legacy");
    Path v6 = tmp.resolve("v6");
    Spec.Builder spec = Spec.builder().hooks("blocks.0.hook_resid_mid")
        .architecture(Architecture.JUMPRELU).normalization(Normalization.CONSTANT_NORM_RESCALE)
        .centering(Centering.CENTERED).seed(9);
    ReferenceSaes.write(model, legacy, spec.build());
    ReferenceSaes.write(model, v6, spec.layout(Layout.V6).build());
    assertArrayEquals(
        Files.readAllBytes(legacy.resolve("blocks.0.hook_resid_mid/sae_weights.safetensors")),
        Files.readAllBytes(v6.resolve("blocks.0.hook_resid_mid/sae_weights.safetensors")));
    ReferenceMethod a = ReferenceMethod.load(model, legacy, null);
    ReferenceMethod b = ReferenceMethod.load(model, v6, null);
    int[] tokens = prompts(true, 1).get(0);
    assertArrayEquals(a.activations("blocks.0.hook_resid_mid", tokens),
        b.activations("blocks.0.hook_resid_mid", tokens));
    assertTrue(b.centered("blocks.0.hook_resid_mid"));
  }

  @Test
  void jbDumpLooksLikeTheRealGpt2SmallResJbCfg() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Path saes = tmp.resolve("s");
    ReferenceSaes.write(model, saes, Spec.builder().hooks("blocks.1.hook_resid_pre")
        .layout(Layout.JB_DUMP).dSae(32).build());
    JsonNode cfg = JSON.readTree(saes.resolve("blocks.1.hook_resid_pre/cfg.json").toFile());
    assertEquals("gpt2-small", cfg.get("model_name").asText());
    assertEquals("blocks.1.hook_resid_pre", cfg.get("hook_point").asText());
    assertEquals(1, cfg.get("hook_point_layer").asInt());
    assertEquals(32, cfg.get("d_sae").asInt());
    assertEquals(4, cfg.get("expansion_factor").asInt());
    assertEquals(8e-05, cfg.get("l1_coefficient").asDouble());
    assertEquals(0.0004, cfg.get("lr").asDouble());
    assertEquals(128, cfg.get("context_size").asInt());
    assertEquals("Skylion007/openwebtext", cfg.get("dataset_path").asText());
    assertEquals(3e8, cfg.get("total_training_tokens").asDouble());
    assertEquals("geometric_median", cfg.get("b_dec_init_method").asText());
    assertEquals("torch.float32", cfg.get("dtype").asText());
    for (String absent : List.of("hook_name", "model_from_pretrained_kwargs", "metadata",
        "architecture", "prepend_bos", "apply_b_dec_to_input", "normalize_activations")) {
      assertFalse(cfg.has(absent), absent);
    }
    // It loads with SAELens's defaults: a standard SAE, BOS, b_dec applied, no normalisation.
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    assertEquals(List.of("blocks.1.hook_resid_pre"), r.hooks());
    assertTrue(r.prependBos());
    assertFalse(r.centered("blocks.1.hook_resid_pre"), "the cfg says nothing; the caller decides");
  }

  @Test
  void theSeedDecidesEveryByte() throws IOException {
    Path model = tmp.resolve("m");
    smallModel().write(model);
    Spec.Builder spec = Spec.builder().architecture(Architecture.GATED).seed(7);
    List<byte[]> files = new ArrayList<>();
    for (Spec s : List.of(spec.build(), spec.build(), spec.seed(8).build())) {
      Path saes = tmp.resolve("s" + files.size());
      ReferenceSaes.write(model, saes, s);
      files.add(
          Files.readAllBytes(saes.resolve("blocks.1.hook_resid_pre/sae_weights.safetensors")));
    }
    assertArrayEquals(files.get(0), files.get(1));
    assertFalse(Arrays.equals(files.get(0), files.get(2)));
  }

  @Test
  void contradictorySpecsAreRefused() throws IOException {
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().layout(Layout.LEGACY_TOPK).build());
    assertThrows(IllegalArgumentException.class, () -> Spec.builder().layout(Layout.JB_DUMP)
        .normalization(Normalization.LAYER_NORM).build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().layout(Layout.JB_DUMP).centering(Centering.CENTERED).build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().layout(Layout.V6).scalingFactor(ScalingFactor.RANDOM).build());
    assertThrows(IllegalArgumentException.class, () -> Spec.builder().dSae(8).l0(8).build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().architecture(Architecture.GATED).dSae(8).l0(4).build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().hooks("blocks.0.hook_mlp_out").build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().hooks("blocks.0.hook_resid_pre", "blocks.0.hook_resid_pre").build());
    assertThrows(IllegalArgumentException.class,
        () -> Spec.builder().folderPattern("sae_{kind}").build());
    Path model = tmp.resolve("m");
    smallModel().write(model);
    assertThrows(IllegalArgumentException.class, () -> ReferenceSaes.write(model, tmp.resolve("a"),
        Spec.builder().hooks("blocks.0.hook_resid_pre", "blocks.0.hook_resid_post")
            .folderPattern("layer_{l}").build()));
    assertThrows(IllegalArgumentException.class, () -> ReferenceSaes.write(model, tmp.resolve("b"),
        Spec.builder().hooks("blocks.2.hook_resid_pre").build()));
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /** Two layers, d = 8, two heads, 16 tokens and positions, weights multiples of 1/8. */
  private static Gpt2Files smallModel() {
    Gpt2Files m = new Gpt2Files(2, 8, 2, VOCAB, PROMPT, 32);
    Random random = new Random(3);
    for (Map.Entry<String, double[]> e : m.values.entrySet()) {
      boolean gain = e.getKey().matches(".*ln_.*weight");
      double[] v = e.getValue();
      for (int k = 0; k < v.length; k++) {
        v[k] = (gain ? 8 : 0) + random.nextInt(9) - 4;
        v[k] /= 8;
      }
    }
    return m;
  }

  /** Random prompts the SAEs were not calibrated on (BOS = the last token when asked). */
  private static List<int[]> prompts(boolean bos, int count) {
    Random random = new Random(1234);
    List<int[]> prompts = new ArrayList<>();
    for (int n = 0; n < count; n++) {
      int[] tokens = random.ints(PROMPT, 0, VOCAB).toArray();
      if (bos) {
        tokens[0] = VOCAB - 1;
      }
      prompts.add(tokens);
    }
    return prompts;
  }

  /** The number of active latents at every measured position of 8 fresh prompts. */
  private static int[] activeCounts(ReferenceMethod r, String hook) {
    int first = r.prependBos() ? 1 : 0;
    List<Integer> counts = new ArrayList<>();
    for (int[] tokens : prompts(r.prependBos(), 8)) {
      double[][] f = r.activations(hook, tokens);
      for (int p = first; p < f.length; p++) {
        counts.add((int) Arrays.stream(f[p]).filter(v -> v > 0).count());
      }
    }
    return counts.stream().mapToInt(Integer::intValue).toArray();
  }

  private static Set<String> folders(Path dir) throws IOException {
    try (var children = Files.list(dir)) {
      return new TreeSet<>(children.map(p -> p.getFileName().toString()).toList());
    }
  }

  private static Set<String> keys(JsonNode node) {
    Set<String> keys = new TreeSet<>();
    node.fieldNames().forEachRemaining(keys::add);
    return keys;
  }
}
