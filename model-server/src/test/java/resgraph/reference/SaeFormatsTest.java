package resgraph.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.reference.TinyModels.D;
import static resgraph.reference.TinyModels.JSON;
import static resgraph.reference.TinyModels.T;
import static resgraph.reference.TinyModels.TOKENS;
import static resgraph.reference.TinyModels.identityModel;
import static resgraph.reference.TinyModels.logSoftmaxByHand;
import static resgraph.reference.TinyModels.logitsByHand;
import static resgraph.reference.TinySaes.S;
import static resgraph.reference.TinySaes.W_DEC;
import static resgraph.reference.TinySaes.W_ENC_READOUT;
import static resgraph.reference.TinySaes.identityEncoder;
import static resgraph.reference.TinySaes.legacy;
import static resgraph.reference.TinySaes.vector;
import static resgraph.reference.TinySaes.writeReadout;
import static resgraph.reference.TinySaes.writeSae;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.reference.ReferenceMethod.Normalization;
import resgraph.reference.ReferenceMethod.Normalized;
import resgraph.reference.TinyModels.Entry;
import resgraph.reference.TinyModels.Gpt2Files;

/**
 * The SAE half of METHOD.md: every architecture's activation, each input normalisation and its
 * inverse in step 3, scaling_factor, both cfg.json layouts, centring decisions, folder discovery
 * and what is refused. The model is {@link TinyModels#identityModel}, whose blocks are zero, so
 * the residual at every site is x_0 and the values below are worked out by hand from it:
 *
 * <pre>
 *   x_0[1] = [ 0.75,  1.375, -0.875,  0.75]
 *   x_0[2] = [ 2.5,   0,      0.625,  1.0 ]   mean 1.03125, unbiased std exactly 1.0625
 *   x_0[3] = [ 1.25, -0.875,  0.375,  2.0 ]
 *   x_0[4] = [-0.25,  0,      2.125, -1.5 ]   (T)
 * </pre>
 */
class SaeFormatsTest {

  private static final double TOL = 1e-12;
  private static final String PRE0 = "blocks.0.hook_resid_pre";
  private static final String MID0 = "blocks.0.hook_resid_mid";
  private static final String POST0 = "blocks.0.hook_resid_post";
  private static final String PRE1 = "blocks.1.hook_resid_pre";
  private static final String MID1 = "blocks.1.hook_resid_mid";
  private static final String POST1 = "blocks.1.hook_resid_post";

  @TempDir Path tmp;
  private int folders;

  // ---------------------------------------------------------------------------------------------
  // The activation functions and normalisations, one by one

  @Test
  void topKKeepsTheKLargestRawPreActivationsThenReLUs() {
    assertArrayEquals(new double[] {0, 3, 3, 0, 0},
        ReferenceMethod.topK(new double[] {1, 3, 3, -1, 2}, 2), 0.0);
    // ties: the lower latent index wins
    assertArrayEquals(new double[] {2, 5, 0, 0},
        ReferenceMethod.topK(new double[] {2, 5, 2, 2}, 2), 0.0);
    assertArrayEquals(new double[] {2, 5, 2, 0},
        ReferenceMethod.topK(new double[] {2, 5, 2, 2}, 3), 0.0);
    // fewer than k positive: the selected non-positive entries give 0, nothing else turns on
    assertArrayEquals(new double[] {0, 0.5, 0, 0},
        ReferenceMethod.topK(new double[] {-1, 0.5, -2, -0.5}, 3), 0.0);
    // 0.0 and -0.0 tie too
    assertArrayEquals(new double[] {0, 0, 0},
        ReferenceMethod.topK(new double[] {-0.0, 0.0, -1}, 1), 0.0);
  }

  @Test
  void jumpReluNeedsPreStrictlyAboveTheThreshold() {
    double[] f = ReferenceMethod.jumpRelu(
        new double[] {0.5, 1.0, 1.5, -1.0, 0.25}, new double[] {1, 1, 1, -2, 0});
    assertArrayEquals(new double[] {0, 0, 1.5, 0, 0.25}, f, 0.0);
  }

  @Test
  void gatedIsTheOpenGateTimesTheReLUOfTheRescaledMagnitude() {
    double[] proj = {1, 1, -1, 2};
    double[] bGate = {0, -2, 2, 0};
    double[] rMag = {0, 0, Math.log(2), Math.log(0.5)};
    double[] bMag = {0.5, 0.5, 3, 0.25};
    // gates 1, -1, 1, 2; magnitudes 1.5, 1.5, -1·2 + 3, 2·0.5 + 0.25
    assertArrayEquals(new double[] {1.5, 0, 1, 1.25},
        ReferenceMethod.gated(proj, bGate, rMag, bMag), 1e-15);
  }

  @Test
  void layerNormDividesByTheUnbiasedStdPlusEpsAndInvertsWithoutEps() {
    // mean 3, deviations -2, -1, 0, 3: squares 14, unbiased variance 14/3
    Normalized n = ReferenceMethod.normalize(Normalization.LAYER_NORM, new double[] {1, 2, 3, 6});
    double std = Math.sqrt(14.0 / 3);
    assertEquals(3.0, n.mean(), 0.0);
    assertEquals(std, n.scale(), 1e-15);
    assertArrayEquals(new double[] {-2 / (std + 1e-5), -1 / (std + 1e-5), 0, 3 / (std + 1e-5)},
        n.y(), 1e-15);
  }

  @Test
  void constantNormRescaleScalesToNormSqrtDAndBack() {
    Normalized n = ReferenceMethod.normalize(
        Normalization.CONSTANT_NORM_RESCALE, new double[] {3, 4, 0, 0});
    // |x| = 5, sqrt(d) = 2: x·2/5, and the inverse multiplies by 5/2
    assertArrayEquals(new double[] {1.2, 1.6, 0, 0}, n.y(), 1e-15);
    assertEquals(2.5, n.scale(), 0.0);
    assertEquals(0.0, n.mean(), 0.0);
    Normalized none = ReferenceMethod.normalize(Normalization.NONE, new double[] {3, 4});
    assertArrayEquals(new double[] {3, 4}, none.y(), 0.0);
    assertEquals(1.0, none.scale(), 0.0);
  }

  // ---------------------------------------------------------------------------------------------
  // From files

  @Test
  void everyArchitectureFromItsFilesGivesTheHandValues() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    writeSae(saes.resolve("a"), legacy(PRE0, "standard"), identityEncoder());
    ObjectNode topk = legacy(MID0, "topk");
    topk.put("k", 2);
    writeSae(saes.resolve("b"), topk, identityEncoder());
    Map<String, Entry> jump = identityEncoder();
    jump.put("threshold", vector(0.75, 1.0, 0.5, 1.0));
    writeSae(saes.resolve("c"), legacy(POST0, "jumprelu"), jump);
    Map<String, Entry> logJump = identityEncoder();
    logJump.put("log_threshold",
        vector(Math.log(0.625), Math.log(1.25), Math.log(0.5), Math.log(1.5)));
    writeSae(saes.resolve("d"), legacy(MID1, "jumprelu"), logJump);
    Map<String, Entry> gated = identityEncoder();
    gated.remove("b_enc");
    gated.put("b_gate", vector(0, -1, 0.5, 0));
    gated.put("r_mag", vector(0, Math.log(2), 0, 0));
    gated.put("b_mag", vector(0, 0, 0, -1));
    writeSae(saes.resolve("e"), legacy(POST1, "gated"), gated);

    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    assertEquals(List.of(PRE0, MID0, POST0, MID1, POST1), r.hooks());
    assertRows(new double[][] { // ReLU(x)
        {0.75, 1.375, 0, 0.75}, {2.5, 0, 0.625, 1.0}, {1.25, 0, 0.375, 2.0}, {0, 0, 2.125, 0}},
        r.activations(PRE0, TOKENS), 0.0);
    assertRows(new double[][] { // k = 2; at 1 the tie 0.75/0.75 goes to latent 0; at 4 only one > 0
        {0.75, 1.375, 0, 0}, {2.5, 0, 0, 1.0}, {1.25, 0, 0, 2.0}, {0, 0, 2.125, 0}},
        r.activations(MID0, TOKENS), 0.0);
    assertRows(new double[][] { // θ = 0.75, 1, 0.5, 1: 0.75 and 1.0 equal their θ and stay off
        {0, 1.375, 0, 0}, {2.5, 0, 0.625, 0}, {1.25, 0, 0, 2.0}, {0, 0, 2.125, 0}},
        r.activations(POST0, TOKENS), 0.0);
    assertRows(new double[][] { // θ = exp(log_threshold) = 0.625, 1.25, 0.5, 1.5
        {0.75, 1.375, 0, 0}, {2.5, 0, 0.625, 0}, {1.25, 0, 0, 2.0}, {0, 0, 2.125, 0}},
        r.activations(MID1, TOKENS), 0.0);
    assertRows(new double[][] { // gate x + b_gate > 0, magnitude ReLU(x·exp(r_mag) + b_mag)
        {0.75, 2.75, 0, 0}, {2.5, 0, 0.625, 0}, {1.25, 0, 0.375, 1.0}, {0, 0, 2.125, 0}},
        r.activations(POST1, TOKENS), 1e-6); // exp(float32(log 2)) is 2 within 1e-7
  }

  @Test
  void normalisationAndBDecComeBeforeTheEncoder() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Map<String, Entry> tensors = identityEncoder();
    double[] bEnc = {0, 2, 0.5, 0.25};
    tensors.put("b_enc", vector(bEnc));
    tensors.put("b_dec", vector(0.5, 0, 0, 0));
    double[] dev = {1.46875, -1.03125, -0.40625, -0.03125}; // x_0[2] - 1.03125
    double ln = 1.0625 + 1e-5; // unbiased std + eps
    double norm = Math.sqrt(7.640625); // |x_0[2]|
    double centredNorm = Math.sqrt(3.38671875); // |x_0[2] - mean|
    double[] x = {2.5, 0, 0.625, 1.0};

    double[][] expected = new double[5][S];
    String[] modes = {"layer_norm", "layer_norm", "layer_norm", "constant_norm_rescale",
        "constant_norm_rescale"};
    boolean[] centred = {false, true, false, false, true};
    boolean[] applyBDec = {true, true, false, true, true};
    for (int i = 0; i < S; i++) {
      double bDec = 0.5 * (i == 0 ? 1 : 0);
      expected[0][i] = dev[i] / ln - bDec + bEnc[i];
      expected[1][i] = expected[0][i]; // layer_norm removes the mean anyway
      expected[2][i] = dev[i] / ln + bEnc[i];
      expected[3][i] = x[i] * 2 / norm - bDec + bEnc[i];
      expected[4][i] = dev[i] * 2 / centredNorm - bDec + bEnc[i];
    }
    for (int c = 0; c < modes.length; c++) {
      Path saes = tmp.resolve("s" + c);
      ObjectNode cfg = legacy(PRE0, "standard");
      cfg.put("normalize_activations", modes[c]);
      cfg.put("apply_b_dec_to_input", applyBDec[c]);
      cfg.putObject("model_from_pretrained_kwargs").put("center_writing_weights", centred[c]);
      writeSae(saes.resolve("sae"), cfg, tensors);
      double[] f = ReferenceMethod.load(model, saes, null).activations(PRE0, TOKENS)[2];
      assertArrayEquals(ReferenceMethod.relu(expected[c]), f, TOL, "case " + c);
      assertTrue(f[1] > 0 && f[3] > 0, "the case must exercise positive latents");
    }
  }

  @Test
  void stepThreeMapsTheDecoderRowBackToResidualUnits() throws IOException {
    // An identity-encoder SAE at pre0 and an always-on linear readout at pre1; zero blocks, so
    // e[j] = -s_T · f[T,2] · scaling_2 · (W_dec[2] · W_enc1[:, j]) at T = 4, x_0[4] = [-0.25, 0,
    // 2.125, -1.5] (mean 0.09375, squared deviations 6.79296875, squared norm 6.828125).
    Path model = tmp.resolve("m");
    Gpt2Files m = identityModel(2);
    m.write(model);
    int latent = 2;
    double lnStd = Math.sqrt(6.79296875 / 3);
    double[] sTimesF = {
        2.125, // none: s = 1, f = x[2]
        lnStd * 2.03125 / (lnStd + 1e-5), // layer_norm: s = std, f = (x[2] - mean) / (std + eps)
        2.125, // constant_norm_rescale: s = |x|/2, f = x[2]·2/|x|
        2.03125, // the same on c(x): s = |c(x)|/2, f = c(x)[2]·2/|c(x)|
        1.5 * 2.125, // none with scaling_factor 1.5 for latent 2
    };
    String[] modes = {"none", "layer_norm", "constant_norm_rescale", "constant_norm_rescale",
        "none"};
    for (int c = 0; c < modes.length; c++) {
      Path saes = tmp.resolve("s" + c);
      ObjectNode cfg = legacy(PRE0, "standard");
      cfg.put("normalize_activations", modes[c]);
      cfg.putObject("model_from_pretrained_kwargs").put("center_writing_weights", c == 3);
      Map<String, Entry> tensors = identityEncoder();
      if (c == 4) {
        cfg.put("finetuning_scaling_factor", true);
        tensors.put("scaling_factor", vector(1, 1, 1.5, 1));
      }
      writeSae(saes.resolve("a"), cfg, tensors);
      writeReadout(saes.resolve("b"), PRE1);
      ReferenceMethod r = ReferenceMethod.load(model, saes, null);
      double[] e = r.ablate(0, latent, TOKENS, T);
      for (int j = 0; j < 3; j++) {
        double dot = 0;
        for (int k = 0; k < D; k++) {
          dot += W_DEC[latent][k] * W_ENC_READOUT[k][j];
        }
        assertEquals(-sTimesF[c] * dot, e[j], 1e-12, "case " + c + " latent " + j);
      }
      // Step 8 removes the same amount: ln_f of the ablated residual.
      double[] x = {-0.25, 0, 2.125, -1.5};
      double[] ablated = x.clone();
      for (int k = 0; k < D; k++) {
        ablated[k] -= sTimesF[c] * W_DEC[latent][k];
      }
      double[] clean = logSoftmaxByHand(logitsByHand(m, x));
      double[] after = logSoftmaxByHand(logitsByHand(m, ablated));
      double[] effects = r.logitEffects(PRE0, latent, TOKENS, T);
      for (int v = 0; v < effects.length; v++) {
        assertEquals(clean[v] - after[v], effects[v], 1e-12, "case " + c + " token " + v);
      }
    }
  }

  @Test
  void bothCfgLayoutsGiveTheSameSae() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Map<String, Entry> tensors = identityEncoder();
    tensors.put("b_dec", vector(0.25, -0.5, 0, 0.125));
    tensors.put("threshold", vector(0.125, 0.25, 0.125, 0.5));
    // Every setting away from its default, so reading it from the wrong place would show.
    ObjectNode flat = legacy(MID0, "jumprelu");
    flat.put("normalize_activations", "layer_norm");
    flat.put("apply_b_dec_to_input", false);
    flat.put("prepend_bos", false);
    flat.put("activation_fn_str", "relu");
    flat.putObject("model_from_pretrained_kwargs").put("center_writing_weights", true);
    ObjectNode old = flat.deepCopy(); // SAELens 1.x names
    old.set("hook_point", old.remove("hook_name"));
    old.set("activation_fn", old.remove("activation_fn_str"));
    ObjectNode v6 = JSON.createObjectNode();
    v6.put("d_in", D);
    v6.put("d_sae", S);
    v6.put("architecture", "jumprelu");
    v6.put("normalize_activations", "layer_norm");
    v6.put("apply_b_dec_to_input", false);
    v6.put("reshape_activations", "none");
    ObjectNode meta = v6.putObject("metadata");
    meta.put("sae_lens_version", "6.5.1");
    meta.put("hook_name", MID0);
    meta.put("prepend_bos", false);
    meta.putObject("model_from_pretrained_kwargs").put("center_writing_weights", true);

    double[][] reference = null;
    for (ObjectNode cfg : List.of(flat, old, v6)) {
      Path saes = fresh("layout");
      writeSae(saes.resolve("sae"), cfg, tensors);
      ReferenceMethod r = ReferenceMethod.load(model, saes, null);
      assertEquals(List.of(MID0), r.hooks());
      assertFalse(r.prependBos(), cfg.toString());
      assertTrue(r.centered(MID0), cfg.toString());
      double[][] f = r.activations(MID0, TOKENS);
      if (reference == null) {
        reference = f;
        assertTrue(f[0][0] > 0, "position 0 is not a BOS here and fires");
      }
      assertRows(reference, f, 0.0);
    }
  }

  @Test
  void legacyTopKIsAStandardArchitectureWithATopKActivation() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    ObjectNode openai = legacy(POST0, "standard"); // OpenAI's v5 SAEs as SAELens stores them
    openai.put("activation_fn_str", "topk");
    openai.putObject("activation_fn_kwargs").put("k", 2);
    ObjectNode v5 = legacy(POST0, "topk"); // SAELens 5 topk
    v5.putObject("activation_fn_kwargs").put("k", 2);
    ObjectNode v6 = JSON.createObjectNode();
    v6.put("d_in", D);
    v6.put("d_sae", S);
    v6.put("architecture", "topk");
    v6.put("k", 2);
    v6.put("rescale_acts_by_decoder_norm", false);
    v6.putObject("metadata").put("hook_name", POST0);
    double[][] expected = { // x_0[0] = [7.5, 1, -0.75, -0.25] at the BOS
        {7.5, 1.0, 0, 0}, {0.75, 1.375, 0, 0}, {2.5, 0, 0, 1.0}, {1.25, 0, 0, 2.0},
        {0, 0, 2.125, 0}};
    for (ObjectNode cfg : List.of(openai, v5, v6)) {
      Path saes = fresh("topk");
      writeSae(saes.resolve("v5_32k_layer_0.pt"), cfg, identityEncoder());
      assertRows(expected, ReferenceMethod.load(model, saes, null).activations(POST0, TOKENS), 0.0);
    }
    // The same weights as a plain ReLU SAE keep x_0[2][2] = 0.625, which top-2 drops.
    ObjectNode relu = legacy(POST0, "standard");
    Path saes = tmp.resolve("relu");
    writeSae(saes.resolve("sae"), relu, identityEncoder());
    assertEquals(0.625, ReferenceMethod.load(model, saes, null).activations(POST0, TOKENS)[2][2]);
  }

  @Test
  void anAllOnesScalingFactorOrABooleanFalseNormalisationChangesNothing() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path plain = tmp.resolve("plain");
    writeSae(plain.resolve("a"), legacy(PRE0, "standard"), identityEncoder());
    writeReadout(plain.resolve("b"), PRE1);
    Path ones = tmp.resolve("ones");
    ObjectNode cfg = legacy(PRE0, "standard");
    cfg.put("normalize_activations", false);
    Map<String, Entry> tensors = identityEncoder();
    tensors.put("scaling_factor", vector(1, 1, 1, 1));
    writeSae(ones.resolve("a"), cfg, tensors);
    writeReadout(ones.resolve("b"), PRE1);
    ReferenceMethod a = ReferenceMethod.load(model, plain, null);
    ReferenceMethod b = ReferenceMethod.load(model, ones, null);
    for (int i = 0; i < S; i++) {
      assertArrayEquals(a.ablate(0, i, TOKENS, T), b.ablate(0, i, TOKENS, T), 0.0);
    }
    assertRows(a.activations(PRE0, TOKENS), b.activations(PRE0, TOKENS), 0.0);
  }

  @Test
  void centringFollowsEachCfgUnlessForced() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    ObjectNode centred = legacy(PRE0, "standard");
    centred.putObject("model_from_pretrained_kwargs").put("center_writing_weights", true);
    writeSae(saes.resolve("a"), centred, identityEncoder());
    writeSae(saes.resolve("b"), legacy(PRE1, "standard"), identityEncoder()); // says nothing
    ReferenceMethod own = ReferenceMethod.load(model, saes, null);
    assertTrue(own.centered(PRE0));
    assertFalse(own.centered(PRE1));
    // x_0[4] has mean 0.09375: centred, latent 2 reads 2.125 - 0.09375
    assertEquals(2.03125, own.activations(PRE0, TOKENS)[T][2], TOL);
    assertEquals(2.125, own.activations(PRE1, TOKENS)[T][2], 0.0);
    for (boolean forced : new boolean[] {true, false}) {
      ReferenceMethod r = ReferenceMethod.load(model, saes, forced);
      assertEquals(forced, r.centered(PRE0));
      assertEquals(forced, r.centered(PRE1));
      assertEquals(forced ? 2.03125 : 2.125, r.activations(PRE1, TOKENS)[T][2], TOL);
    }
  }

  @Test
  void foldersAreFoundByTheirCfgAndOrderedByTheForwardPass() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    writeSae(saes.resolve("v5_32k_layer_1.pt"), legacy(MID1, "standard"), identityEncoder());
    writeSae(saes.resolve("layer-0-post"), legacy(POST0, "standard"), identityEncoder());
    writeSae(saes.resolve("zzz"), legacy(PRE1, "standard"), identityEncoder());
    writeSae(saes.resolve("aaa"), legacy(PRE0, "standard"), identityEncoder());
    Files.createDirectories(saes.resolve("notes")); // no cfg.json: not an SAE
    Files.writeString(saes.resolve("README.md"), "not an SAE either");
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    // resid_post of 0 and resid_pre of 1 are the same residual; post comes first
    assertEquals(List.of(PRE0, POST0, PRE1, MID1), r.hooks());
    assertEquals(S, r.dSae(MID1));
    assertTrue(r.hasSae(1));
    assertFalse(r.hasSae(2));

    writeSae(saes.resolve("again"), legacy(MID1, "standard"), identityEncoder());
    IOException twice =
        assertThrows(IOException.class, () -> ReferenceMethod.load(model, saes, null));
    assertTrue(twice.getMessage().contains("hook_name " + MID1), twice.getMessage());
  }

  @Test
  void whatCannotBeComputedExactlyIsRefusedByFileAndField() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    refusedCfg(model, "architecture", c -> c.put("architecture", "batchtopk"));
    refusedCfg(model, "activation_fn_str", c -> c.put("activation_fn_str", "tanh-relu"));
    refusedCfg(model, "activation_fn_str", c -> {
      c.put("architecture", "jumprelu");
      c.put("activation_fn_str", "topk");
    });
    refusedCfg(model, "normalize_activations",
        c -> c.put("normalize_activations", "expected_average_only_in"));
    refusedCfg(model, "normalize_activations", c -> c.put("normalize_activations", true));
    refusedCfg(model, "normalize_activations", c -> c.put("normalize_activations", "batch_norm"));
    refusedCfg(model, "k", c -> c.put("architecture", "topk"));
    refusedCfg(model, "activation_fn_kwargs.k", c -> {
      c.put("architecture", "topk");
      c.put("k", 2);
      c.putObject("activation_fn_kwargs").put("k", 3);
    });
    refusedCfg(model, "k", c -> {
      c.put("architecture", "topk");
      c.put("k", S + 1);
    });
    refusedCfg(model, "rescale_acts_by_decoder_norm", c -> {
      c.put("architecture", "topk");
      c.put("k", 2);
      c.put("rescale_acts_by_decoder_norm", true);
    });
    refusedCfg(model, "reshape_activations", c -> c.put("reshape_activations", "hook_z"));
    refusedCfg(model, "hook_name", c -> c.put("hook_name", "blocks.0.hook_mlp_out"));
    refusedCfg(model, "hook_name", c -> c.put("hook_name", "blocks.2.hook_resid_pre"));
    refusedCfg(model, "hook_name", c -> c.remove("hook_name"));
    refusedCfg(model, "d_in", c -> c.put("d_in", D + 1));
    refusedCfg(model, "prepend_bos", c -> c.put("prepend_bos", "yes"));
    refusedCfg(model, "center_writing_weights",
        c -> c.putObject("model_from_pretrained_kwargs").put("center_writing_weights", "yes"));

    refusedTensors(model, "W_skip", "standard", t -> t.put("W_skip", vector(1, 2, 3, 4)));
    refusedTensors(model, "b_enc", "standard", t -> t.remove("b_enc"));
    refusedTensors(model, "W_dec", "standard", t -> t.put("W_dec", vector(1, 2, 3, 4)));
    refusedTensors(model, "threshold", "jumprelu", t -> { });
    refusedTensors(model, "log_threshold", "jumprelu", t -> {
      t.put("threshold", vector(1, 1, 1, 1));
      t.put("log_threshold", vector(0, 0, 0, 0));
    });
    refusedTensors(model, "b_enc", "gated", t -> {
      t.put("b_gate", vector(0, 0, 0, 0));
      t.put("r_mag", vector(0, 0, 0, 0));
      t.put("b_mag", vector(0, 0, 0, 0));
    });
    refusedTensors(model, "finetuning_scaling_factor", "standard",
        t -> t.put("scaling_factor", vector(1, 2, 1, 1)));
    Path saes = tmp.resolve("flag-without-tensor");
    ObjectNode cfg = legacy(PRE0, "standard");
    cfg.put("finetuning_scaling_factor", true);
    writeSae(saes.resolve("sae"), cfg, identityEncoder());
    IOException e = assertThrows(IOException.class, () -> ReferenceMethod.load(model, saes, null));
    assertTrue(e.getMessage().contains("missing tensor scaling_factor"), e.getMessage());

    // A sparsity tensor (SAELens's log feature density) is not part of the computation: accepted.
    Path sparsity = tmp.resolve("sparsity");
    Map<String, Entry> withSparsity = identityEncoder();
    withSparsity.put("sparsity", vector(-1, -2, -3, -4));
    writeSae(sparsity.resolve("sae"), legacy(PRE0, "standard"), withSparsity);
    assertEquals(List.of(PRE0), ReferenceMethod.load(model, sparsity, null).hooks());
  }

  @Test
  void ablationNeedsTwoLoadedSitesInForwardOrder() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    writeSae(saes.resolve("a"), legacy(POST0, "standard"), identityEncoder());
    writeReadout(saes.resolve("b"), PRE1);
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    assertThrows(IllegalArgumentException.class, () -> r.ablate(PRE1, 0, POST0, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(POST0, 0, POST0, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(POST0, 0, MID1, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(POST0, S, PRE1, TOKENS, T));
    assertThrows(IllegalArgumentException.class,
        () -> r.activations("blocks.0.hook_mlp_out", TOKENS));
    assertThrows(IllegalArgumentException.class,
        () -> r.residual("blocks.2.hook_resid_pre", TOKENS));
    // post0 -> pre1 is one residual: nothing runs between them, e = -f·W_dec[i]·W_enc1
    double[] e = r.ablate(POST0, 2, PRE1, TOKENS, T);
    for (int j = 0; j < 3; j++) {
      double dot = 0;
      for (int k = 0; k < D; k++) {
        dot += W_DEC[2][k] * W_ENC_READOUT[k][j];
      }
      assertEquals(-2.125 * dot, e[j], TOL);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  /** A new folder name under tmp for each SAE set a loop writes. */
  private Path fresh(String prefix) {
    return tmp.resolve(prefix + "-" + folders++);
  }

  private void refusedCfg(Path model, String field, Consumer<ObjectNode> change)
      throws IOException {
    ObjectNode cfg = legacy(PRE0, "standard");
    change.accept(cfg);
    Path saes = fresh("refused");
    writeSae(saes.resolve("sae"), cfg, identityEncoder());
    IOException e = assertThrows(IOException.class, () -> ReferenceMethod.load(model, saes, null),
        cfg.toString());
    assertTrue(e.getMessage().contains(saes.resolve("sae").resolve("cfg.json").toString()),
        e.getMessage());
    assertTrue(e.getMessage().contains(field), field + " in: " + e.getMessage());
  }

  private void refusedTensors(Path model, String name, String architecture,
      Consumer<Map<String, Entry>> change) throws IOException {
    Map<String, Entry> tensors = identityEncoder();
    change.accept(tensors);
    Path saes = tmp.resolve("refused-" + name + "-" + architecture);
    writeSae(saes.resolve("sae"), legacy(PRE0, architecture), tensors);
    IOException e = assertThrows(IOException.class, () -> ReferenceMethod.load(model, saes, null),
        name);
    assertTrue(e.getMessage().contains("sae_weights.safetensors"), e.getMessage());
    assertTrue(e.getMessage().contains(name), name + " in: " + e.getMessage());
  }

  /** The last rows of {@code actual} (all but the BOS when one fewer) against {@code expected}. */
  private static void assertRows(double[][] expected, double[][] actual, double tol) {
    int offset = actual.length - expected.length;
    for (int p = 0; p < expected.length; p++) {
      assertArrayEquals(expected[p], actual[p + offset], tol, "position " + (p + offset));
    }
  }
}
