package resgraph.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.reference.TinyModels.averagedBlock;
import static resgraph.reference.TinyModels.D;
import static resgraph.reference.TinyModels.EPS;
import static resgraph.reference.TinyModels.f32;
import static resgraph.reference.TinyModels.fillEmbeddings;
import static resgraph.reference.TinyModels.flatten;
import static resgraph.reference.TinyModels.identityModel;
import static resgraph.reference.TinyModels.JSON;
import static resgraph.reference.TinyModels.logitsByHand;
import static resgraph.reference.TinyModels.logSoftmaxByHand;
import static resgraph.reference.TinyModels.mean;
import static resgraph.reference.TinyModels.ones;
import static resgraph.reference.TinyModels.P;
import static resgraph.reference.TinyModels.randomModel;
import static resgraph.reference.TinyModels.T;
import static resgraph.reference.TinyModels.TOKENS;
import static resgraph.reference.TinyModels.u16;
import static resgraph.reference.TinyModels.V;
import static resgraph.reference.TinyModels.wpe;
import static resgraph.reference.TinyModels.writeSafetensors;
import static resgraph.reference.TinyModels.WTE;
import static resgraph.reference.TinyModels.x0;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.reference.TinyModels.Entry;
import resgraph.reference.TinyModels.Gpt2Files;

/**
 * Checks {@link ReferenceMethod}'s model and resid_pre method against hand-computed values on
 * the tiny models of {@link TinyModels}, so that the reference the production tests trust is itself
 * trusted.
 */
class ReferenceMethodTest {

  private static final double TOL = 1e-12;

  private static final double[][] W_DEC0 = {
    {0.5, -0.25, 0.125, 0.75},
    {-0.5, 1.0, 0.25, 0.0},
    {0.25, 0.25, -0.75, 0.5},
    {1.0, 0.0, 0.5, -0.25},
    {0.125, 0.125, 0.125, 0.125},
    {-1.0, 0.5, 0.0, 0.25},
  };
  private static final double[][] W_ENC1 = {
    {0.5, -0.25, 1.0},
    {0.25, 0.75, -0.5},
    {-1.0, 0.5, 0.25},
    {0.125, 0.0, 0.5},
  };

  @TempDir Path tmp;

  // ---------------------------------------------------------------------------------------------
  // Pure functions

  @Test
  void geluNewAtKnownPoints() {
    assertEquals(0.8411919906082768, ReferenceMethod.geluNew(1.0), 1e-15);
    assertEquals(-0.15880800939172324, ReferenceMethod.geluNew(-1.0), 1e-15);
    assertEquals(0.0, ReferenceMethod.geluNew(0.0), 0.0);
  }

  @Test
  void layerNormOfKnownVectors() {
    // mean 2.5, biased variance 1.25: (x - 2.5) / sqrt(1.25) = ±3/sqrt(5), ±1/sqrt(5)
    double[] y = ReferenceMethod.layerNorm(
        new double[] {1, 2, 3, 4}, new double[] {1, 2, 1, 1}, new double[] {0, 0, 0, 1}, 0.0);
    double s = Math.sqrt(5);
    assertArrayEquals(new double[] {-3 / s, 2 * (-1 / s), 1 / s, 3 / s + 1}, y, 1e-15);
    // variance 1 and eps 1 inside the square root: divide by sqrt(2), not by 1 + 1
    double[] z = ReferenceMethod.layerNorm(
        new double[] {3, 1}, new double[] {1, 1}, new double[] {0, 0}, 1.0);
    assertArrayEquals(new double[] {1 / Math.sqrt(2), -1 / Math.sqrt(2)}, z, 1e-15);
  }

  @Test
  void logSoftmaxIsNormalisedAndShiftInvariant() {
    double[] ls = ReferenceMethod.logSoftmax(new double[] {1000, 1001, 999});
    double sum = 0;
    for (double v : ls) {
      sum += Math.exp(v);
    }
    assertEquals(1.0, sum, 1e-15);
    assertArrayEquals(ReferenceMethod.logSoftmax(new double[] {1, 2, 0}), ls, 1e-12);
  }

  // ---------------------------------------------------------------------------------------------
  // safetensors

  @Test
  void readsF32F16AndBf16AsTheExpectedDoubles() throws IOException {
    Map<String, Entry> entries = new LinkedHashMap<>();
    entries.put("half", new Entry("F16", new int[] {7},
        u16(0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF, 0xFC00, 0x8000)));
    entries.put("brain", new Entry("BF16", new int[] {2, 2}, u16(0x3F80, 0xC020, 0x4049, 0x0001)));
    entries.put("single", new Entry("F32", new int[] {2}, f32(0.1, -3.5)));
    entries.put("mask", new Entry("BOOL", new int[] {2}, new byte[] {1, 0}));
    Path file = tmp.resolve("t.safetensors");
    writeSafetensors(file, entries);

    Map<String, ReferenceMethod.Tensor> t = ReferenceMethod.readSafetensors(file);
    assertArrayEquals(
        new double[] {1.0, -2.0, 0.333251953125, Math.scalb(1.0, -24), 65504.0,
            Double.NEGATIVE_INFINITY, -0.0},
        t.get("half").data(), 0.0);
    assertEquals(Double.doubleToLongBits(-0.0), Double.doubleToLongBits(t.get("half").data()[6]));
    assertArrayEquals(new int[] {2, 2}, t.get("brain").shape());
    assertArrayEquals(
        new double[] {1.0, -2.5, 3.140625, Math.scalb(1.0, -133)}, t.get("brain").data(), 0.0);
    assertArrayEquals(new double[] {(double) 0.1f, -3.5}, t.get("single").data(), 0.0);
    assertEquals(0.10000000149011612, t.get("single").data()[0], 0.0);
    assertNull(t.get("mask").data(), "an unsupported dtype is kept without data, not an error");
    assertFalse(t.containsKey("__metadata__"));
  }

  @Test
  void halfPrecisionWeightsGiveTheSameModel() throws IOException {
    Gpt2Files f32 = identityModel(2);
    Path a = tmp.resolve("f32");
    f32.write(a);
    Gpt2Files mixed = identityModel(2);
    mixed.dtypes.put("wte.weight", "BF16");
    mixed.dtypes.put("wpe.weight", "F16");
    mixed.dtypes.put("ln_f.weight", "F16");
    Path b = tmp.resolve("mixed");
    mixed.write(b);
    ReferenceMethod ra = ReferenceMethod.load(a, null, false);
    ReferenceMethod rb = ReferenceMethod.load(b, null, false);
    assertArrayEquals(ra.residuals(TOKENS)[0], rb.residuals(TOKENS)[0]);
    assertArrayEquals(ra.logProbs(TOKENS, T), rb.logProbs(TOKENS, T), 0.0);
    assertEquals(WTE[2][2] + wpe()[4][2], rb.residuals(TOKENS)[0][4][2], 0.0);
  }

  // ---------------------------------------------------------------------------------------------
  // The model

  @Test
  void zeroWeightBlockAddsOnlyTheOutputBiases() throws IOException {
    // Non-default n_inner, a transformer. prefix and a mask buffer must all be handled.
    Gpt2Files m = new Gpt2Files(1, D, 2, V, P, 6);
    m.prefix = "transformer.";
    m.maskBuffers = true;
    fillEmbeddings(m);
    double[] attnBias = {0.25, -0.5, 0.125, 1.0};
    double[] mlpBias = {-1.0, 0.75, 0.5, -0.125};
    Arrays.fill(m.get("h.0.ln_1.weight"), 0.5);
    Arrays.fill(m.get("h.0.ln_1.bias"), 0.25);
    Arrays.fill(m.get("h.0.attn.c_attn.bias"), 0.375); // q, k, v biases only
    m.put("h.0.attn.c_proj.bias", attnBias);
    Arrays.fill(m.get("h.0.ln_2.weight"), 2.0);
    Arrays.fill(m.get("h.0.mlp.c_fc.bias"), 1.5); // gelu_new(1.5) times a zero c_proj
    m.put("h.0.mlp.c_proj.bias", mlpBias);
    m.write(tmp.resolve("m"));

    ReferenceMethod r = ReferenceMethod.load(tmp.resolve("m"), null, false);
    assertEquals(1, r.nLayer());
    double[][][] x = r.residuals(TOKENS);
    assertEquals(2, x.length);
    double[][] wpe = wpe();
    for (int p = 0; p < TOKENS.length; p++) {
      for (int k = 0; k < D; k++) {
        double x0 = WTE[TOKENS[p]][k] + wpe[p][k];
        assertEquals(x0, x[0][p][k], 0.0, "x_0 = wte[t] + wpe[p]");
        assertEquals(x0 + attnBias[k] + mlpBias[k], x[1][p][k], TOL, "x_1 = x_0 + biases");
      }
    }
  }

  @Test
  void attentionIsCausalPerHeadAndScaledByTheHeadSize() throws IOException {
    // q = k = v = ln_1(x) and c_proj = I, two heads of size 2, no MLP.
    Gpt2Files m = new Gpt2Files(1, D, 2, V, P, 4 * D);
    fillEmbeddings(m);
    Arrays.fill(m.get("h.0.ln_1.weight"), 1.0);
    for (int k = 0; k < D; k++) {
      m.set("h.0.attn.c_attn.weight", k, k, 1.0);
      m.set("h.0.attn.c_attn.weight", k, D + k, 1.0);
      m.set("h.0.attn.c_attn.weight", k, 2 * D + k, 1.0);
      m.set("h.0.attn.c_proj.weight", k, k, 1.0);
    }
    m.write(tmp.resolve("m"));
    ReferenceMethod r = ReferenceMethod.load(tmp.resolve("m"), null, false);
    double[][][] x = r.residuals(TOKENS);

    double[][] u = new double[TOKENS.length][];
    for (int p = 0; p < TOKENS.length; p++) {
      u[p] = ReferenceMethod.layerNorm(x[0][p], ones(D), new double[D], EPS);
    }
    for (int p = 0; p < TOKENS.length; p++) {
      double[] expected = x[0][p].clone();
      for (int head = 0; head < 2; head++) {
        int c0 = 2 * head;
        double[] scores = new double[p + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= p; j++) {
          scores[j] = (u[p][c0] * u[j][c0] + u[p][c0 + 1] * u[j][c0 + 1]) / Math.sqrt(2);
          max = Math.max(max, scores[j]);
        }
        double total = 0;
        for (int j = 0; j <= p; j++) {
          total += Math.exp(scores[j] - max);
        }
        for (int j = 0; j <= p; j++) {
          double w = Math.exp(scores[j] - max) / total;
          expected[c0] += w * u[j][c0];
          expected[c0 + 1] += w * u[j][c0 + 1];
        }
      }
      assertArrayEquals(expected, x[1][p], TOL, "position " + p);
    }
  }

  @Test
  void mlpIsCProjOfGeluNewOfCFcOfLn2() throws IOException {
    // No attention; c_fc sends u = ln_2(x) to [u, -u, 0, 0] + b_fc, c_proj reads back
    // 1·h[k] + 0.5·h[d+k]; so x_1 = x_0 + gelu_new(u + b_fc) + 0.5·gelu_new(-u + b_fc') + b_proj.
    Gpt2Files m = new Gpt2Files(1, D, 2, V, P, 4 * D);
    fillEmbeddings(m);
    double[] ln2Weight = {1.0, 2.0, 0.5, 1.0};
    double[] ln2Bias = {0.0, 0.25, 0.0, -0.5};
    m.put("h.0.ln_2.weight", ln2Weight);
    m.put("h.0.ln_2.bias", ln2Bias);
    double[] fcBias = new double[4 * D];
    for (int k = 0; k < D; k++) {
      m.set("h.0.mlp.c_fc.weight", k, k, 1.0);
      m.set("h.0.mlp.c_fc.weight", k, D + k, -1.0);
      m.set("h.0.mlp.c_proj.weight", k, k, 1.0);
      m.set("h.0.mlp.c_proj.weight", D + k, k, 0.5);
      m.set("h.0.mlp.c_proj.weight", 2 * D + k, k, 3.0); // reads hidden units that stay gelu(0) = 0
      fcBias[k] = 0.125 * k;
      fcBias[D + k] = -0.25;
    }
    m.put("h.0.mlp.c_fc.bias", fcBias);
    double[] projBias = {0.5, 0.0, -0.25, 0.125};
    m.put("h.0.mlp.c_proj.bias", projBias);
    m.write(tmp.resolve("m"));
    ReferenceMethod r = ReferenceMethod.load(tmp.resolve("m"), null, false);
    double[][][] x = r.residuals(TOKENS);
    for (int p = 0; p < TOKENS.length; p++) {
      double[] u = ReferenceMethod.layerNorm(x[0][p], ln2Weight, ln2Bias, EPS);
      for (int k = 0; k < D; k++) {
        double expected = x[0][p][k]
            + ReferenceMethod.geluNew(u[k] + fcBias[k])
            + 0.5 * ReferenceMethod.geluNew(-u[k] + fcBias[D + k])
            + projBias[k];
        assertEquals(expected, x[1][p][k], TOL, "position " + p + " coordinate " + k);
      }
    }
  }

  @Test
  void laterTokensDoNotChangeEarlierPositions() throws IOException {
    Gpt2Files m = randomModel(2, 7);
    m.write(tmp.resolve("m"));
    ReferenceMethod r = ReferenceMethod.load(tmp.resolve("m"), null, false);
    int[] a = {5, 1, 3, 0, 2};
    int[] b = {5, 1, 3, 0, 4};
    double[][][] xa = r.residuals(a);
    double[][][] xb = r.residuals(b);
    double[][][] prefix = r.residuals(Arrays.copyOf(a, 4));
    for (int l = 0; l <= 2; l++) {
      for (int p = 0; p < 4; p++) {
        assertArrayEquals(xa[l][p], xb[l][p], 0.0, "layer " + l + " position " + p);
        assertArrayEquals(xa[l][p], prefix[l][p], 0.0, "layer " + l + " position " + p);
      }
      assertFalse(Arrays.equals(xa[l][4], xb[l][4]), "the changed token itself moves, layer " + l);
    }
    assertArrayEquals(r.logProbs(a, 3), r.logProbs(b, 3), 0.0);
    assertFalse(Arrays.equals(r.logProbs(a, 4), r.logProbs(b, 4)));
    // residuals hands out copies: scribbling on one must not leak into the next call
    xa[1][0][0] = 1e9;
    assertNotEquals(1e9, r.residuals(a)[1][0][0]);
  }

  @Test
  void logProbsAreTheTiedUnembeddingOfLnF() throws IOException {
    Gpt2Files m = identityModel(2);
    m.write(tmp.resolve("m"));
    ReferenceMethod r = ReferenceMethod.load(tmp.resolve("m"), null, false);
    double[] x0 = x0(TOKENS, T);
    double[] expected = logSoftmaxByHand(logitsByHand(m, x0));
    double[] actual = r.logProbs(TOKENS, T);
    assertEquals(V, actual.length);
    assertArrayEquals(expected, actual, TOL);
    double sum = 0;
    for (double v : actual) {
      sum += Math.exp(v);
    }
    assertEquals(1.0, sum, 1e-12);
  }

  // ---------------------------------------------------------------------------------------------
  // SAEs and the method

  @Test
  void activationsFollowTheEncoderFormula() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path withBDec = tmp.resolve("s1");
    sae0().write(withBDec, 0);
    SaeFiles s1 = sae1();
    s1.write(withBDec, 1);
    Path withoutBDec = tmp.resolve("s2");
    sae0().write(withoutBDec, 0);
    SaeFiles s1NoBDec = sae1();
    s1NoBDec.applyBDecToInput = false;
    s1NoBDec.write(withoutBDec, 1);

    ReferenceMethod r = ReferenceMethod.load(model, withBDec, false);
    ReferenceMethod rNo = ReferenceMethod.load(model, withoutBDec, false);
    assertTrue(r.hasSae(0) && r.hasSae(1));
    assertFalse(r.hasSae(2));
    assertEquals(6, r.dSae(0));
    assertEquals(3, r.dSae(1));
    double[][] f = r.activations(1, TOKENS);
    double[][] fNo = rNo.activations(1, TOKENS);
    assertEquals(TOKENS.length, f.length);
    for (int p = 0; p < TOKENS.length; p++) {
      double[] x = x0(TOKENS, p); // zero blocks: x_1 = x_0
      assertArrayEquals(encodeByHand(s1, x, false), f[p], TOL);
      assertArrayEquals(encodeByHand(s1NoBDec, x, false), fNo[p], TOL);
      assertFalse(Arrays.equals(f[p], fNo[p]), "b_dec must matter when applied");
      // latents 0..3 of SAE0 read one coordinate each: f = ReLU(x_k)
      double[] f0 = r.activations(0, TOKENS)[p];
      for (int k = 0; k < D; k++) {
        assertEquals(Math.max(0, x[k]), f0[k], 0.0);
      }
      assertEquals(0.0, f0[4], 0.0, "latent 4 never fires");
      assertEquals(p == 0 ? x[0] - 3 : 0.0, f0[5], 0.0, "latent 5 fires only at position 0");
    }
  }

  @Test
  void centredAndUncentredEncodesDiffer() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    sae0().write(saes, 0);
    SaeFiles s1 = sae1();
    s1.write(saes, 1);
    ReferenceMethod plain = ReferenceMethod.load(model, saes, false);
    ReferenceMethod centred = ReferenceMethod.load(model, saes, true);
    double[] x = x0(TOKENS, T);
    assertNotEquals(0.0, mean(x), "the test needs a residual with nonzero mean");
    double[] fc = centred.activations(1, TOKENS)[T];
    assertArrayEquals(encodeByHand(s1, x, true), fc, TOL);
    assertArrayEquals(encodeByHand(s1, x, false), plain.activations(1, TOKENS)[T], TOL);
    assertFalse(Arrays.equals(fc, plain.activations(1, TOKENS)[T]));
  }

  @Test
  void candidatesAreTheLatentsFiringAtAblatablePositionsUpToTheTarget() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path bos = tmp.resolve("bos");
    sae0().write(bos, 0);
    sae1().write(bos, 1);
    Path noBos = tmp.resolve("nobos");
    SaeFiles a = sae0();
    a.prependBos = false;
    a.write(noBos, 0);
    SaeFiles b = sae1();
    b.prependBos = false;
    b.write(noBos, 1);

    ReferenceMethod r = ReferenceMethod.load(model, bos, false);
    assertTrue(r.prependBos());
    for (int target = 1; target < TOKENS.length; target++) {
      List<Integer> expected = new ArrayList<>();
      for (int i = 0; i < D; i++) { // latents 0..3 fire where x_0[p][i] > 0
        for (int p = 1; p <= target; p++) {
          if (x0(TOKENS, p)[i] > 0) {
            expected.add(i);
            break;
          }
        }
      }
      int[] c = r.candidates(0, TOKENS, target);
      assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), c,
          "target " + target);
    }
    // x_0[1] = [0.75, 1.375, -0.875, 0.75]: latent 2 first fires at position 2
    assertArrayEquals(new int[] {0, 1, 3}, r.candidates(0, TOKENS, 1));
    assertArrayEquals(new int[] {0, 1, 2, 3}, r.candidates(0, TOKENS, 2));

    ReferenceMethod rNo = ReferenceMethod.load(model, noBos, false);
    assertFalse(rNo.prependBos());
    assertArrayEquals(new int[] {0, 1, 3, 5}, rNo.candidates(0, TOKENS, 1),
        "without BOS, position 0 is ablatable and latent 5 fires there");
    assertArrayEquals(new int[] {0, 1, 5}, rNo.candidates(0, TOKENS, 0));
  }

  @Test
  void ablationThroughAnIdentityBlockIsMinusFTimesWDecDotWEnc() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    SaeFiles s0 = sae0();
    s0.write(saes, 0);
    SaeFiles s1 = sae1(); // b_enc = 100: every latent stays on, so encode_1 is affine here
    s1.write(saes, 1);

    for (boolean centred : new boolean[] {false, true}) {
      ReferenceMethod r = ReferenceMethod.load(model, saes, centred);
      int nonzero = 0;
      for (int target = 1; target < TOKENS.length; target++) {
        // Zero blocks: x_1 = x_0 and x'_1 = x'_0 = x_0 - f_0[T,i]·W_dec0[i] at the target.
        double[] x = x0(TOKENS, target);
        double[] f0 = encodeByHand(s0, x, centred);
        for (int i = 0; i < 6; i++) {
          double[] e = r.ablate(0, i, TOKENS, target);
          assertEquals(3, e.length);
          // The centring of encode_1 also centres the removed direction.
          double dirMean = centred ? mean(W_DEC0[i]) : 0.0;
          for (int j = 0; j < 3; j++) {
            double dot = 0;
            for (int k = 0; k < D; k++) {
              dot += (W_DEC0[i][k] - dirMean) * W_ENC1[k][j];
            }
            double expected = -f0[i] * dot;
            assertEquals(expected, e[j], 1e-10,
                "centred " + centred + " target " + target + " latent " + i + " -> " + j);
            if (expected != 0) {
              nonzero++;
            }
          }
        }
      }
      assertTrue(nonzero >= 6, "the test must exercise nonzero effects");
    }
  }

  @Test
  void ablationAppliesAtEveryAblatablePositionButNotAtBos() throws IOException {
    // ln_1 = plain normalisation, q = k = 0 (uniform causal average), v = I, c_proj = I, no MLP:
    // x_1[T] = x_0[T] + mean_{j <= T} LN(x_0[j]), so ablations at every position j reach T.
    Gpt2Files m = identityModel(2);
    Arrays.fill(m.get("h.0.ln_1.weight"), 1.0);
    for (int k = 0; k < D; k++) {
      m.set("h.0.attn.c_attn.weight", k, 2 * D + k, 1.0);
      m.set("h.0.attn.c_proj.weight", k, k, 1.0);
    }
    Path model = tmp.resolve("m");
    m.write(model);
    SaeFiles s0 = sae0();
    SaeFiles s1 = sae1();
    s1.bEnc = new double[] {0.0, -0.5, 0.25}; // some latents off: exercise the ReLU too
    Path bos = tmp.resolve("bos");
    s0.write(bos, 0);
    s1.write(bos, 1);
    Path noBos = tmp.resolve("nobos");
    s0.prependBos = false;
    s1.prependBos = false;
    s0.write(noBos, 0);
    s1.write(noBos, 1);

    int latent = 0; // fires at position 0 (the BOS) and at later positions
    int target = 3;
    double[][] results = new double[2][];
    for (int first = 0; first <= 1; first++) {
      ReferenceMethod r = ReferenceMethod.load(model, first == 1 ? bos : noBos, false);
      double[][] xClean = new double[target + 1][];
      double[][] xAbl = new double[target + 1][];
      for (int p = 0; p <= target; p++) {
        xClean[p] = x0(TOKENS, p);
        xAbl[p] = xClean[p].clone();
        if (p >= first) {
          double f = encodeByHand(s0, xClean[p], false)[latent];
          for (int k = 0; k < D; k++) {
            xAbl[p][k] -= f * W_DEC0[latent][k];
          }
        }
      }
      double[] expected = new double[3];
      double[] fClean = encodeByHand(s1, averagedBlock(xClean), false);
      double[] fAbl = encodeByHand(s1, averagedBlock(xAbl), false);
      for (int j = 0; j < 3; j++) {
        expected[j] = fAbl[j] - fClean[j];
      }
      results[first] = r.ablate(0, latent, TOKENS, target);
      assertArrayEquals(expected, results[first], 1e-10, "first ablatable position " + first);
      assertArrayEquals(fClean, r.activations(1, TOKENS)[target], 1e-12);
    }
    assertFalse(Arrays.equals(results[0], results[1]), "ablating at the BOS must make a difference");
  }

  @Test
  void aLatentThatNeverFiresHasExactlyZeroEffects() throws IOException {
    Path model = tmp.resolve("m");
    randomModel(2, 11).write(model);
    Path saes = tmp.resolve("s");
    sae0().write(saes, 0);
    sae1().write(saes, 1);
    ReferenceMethod r = ReferenceMethod.load(model, saes, false);
    assertArrayEquals(new double[3], r.ablate(0, 4, TOKENS, T), 0.0);
    assertArrayEquals(new double[V], r.logitEffects(0, 4, TOKENS, T), 0.0);
    // Step 2's claim: every latent outside the candidates changes nothing, exactly.
    int[] candidates = r.candidates(0, TOKENS, T);
    int outside = 0;
    for (int i = 0; i < 6; i++) {
      if (Arrays.binarySearch(candidates, i) < 0) {
        assertArrayEquals(new double[3], r.ablate(0, i, TOKENS, T), 0.0, "latent " + i);
        outside++;
      }
    }
    assertTrue(outside >= 2, "latents 4 and 5 at least");
    assertFalse(Arrays.stream(candidates).anyMatch(c -> c == 5), "the BOS-only latent");
  }

  @Test
  void positionsAfterTheTargetDoNotMatter() throws IOException {
    Path model = tmp.resolve("m");
    randomModel(2, 3).write(model);
    Path saes = tmp.resolve("s");
    sae0().write(saes, 0);
    sae1().write(saes, 1);
    ReferenceMethod r = ReferenceMethod.load(model, saes, false);
    int[] other = {5, 1, 3, 4, 4};
    for (int i = 0; i < 4; i++) {
      assertArrayEquals(r.ablate(0, i, TOKENS, 2), r.ablate(0, i, other, 2), 0.0);
      assertArrayEquals(r.logitEffects(0, i, TOKENS, 2), r.logitEffects(0, i, other, 2), 0.0);
    }
  }

  @Test
  void logitEffectsAreCleanMinusAblatedLogProbs() throws IOException {
    Gpt2Files m = identityModel(2);
    Path model = tmp.resolve("m");
    m.write(model);
    Path saes = tmp.resolve("s");
    SaeFiles s0 = sae0();
    s0.write(saes, 0);
    sae1().write(saes, 1);
    ReferenceMethod r = ReferenceMethod.load(model, saes, false);
    double[] x = x0(TOKENS, T);
    int latent = 2; // x_0[T] = [-0.25, 0, 2.125, -1.5]: only coordinate 2 is positive
    double f = encodeByHand(s0, x, false)[latent];
    assertTrue(f > 0);
    double[] xAbl = x.clone();
    for (int k = 0; k < D; k++) {
      xAbl[k] -= f * W_DEC0[latent][k];
    }
    double[] clean = logSoftmaxByHand(logitsByHand(m, x));
    double[] ablated = logSoftmaxByHand(logitsByHand(m, xAbl));
    double[] expected = new double[V];
    for (int v = 0; v < V; v++) {
      expected[v] = clean[v] - ablated[v];
    }
    assertArrayEquals(expected, r.logitEffects(0, latent, TOKENS, T), 1e-12);
    // The last layer's SAE needs no SAE above it for logit effects.
    assertEquals(V, r.logitEffects(1, 0, TOKENS, T).length);
  }

  @Test
  void badArgumentsAreRefused() throws IOException {
    Path model = tmp.resolve("m");
    identityModel(2).write(model);
    Path saes = tmp.resolve("s");
    sae0().write(saes, 0);
    sae1().write(saes, 1);
    ReferenceMethod r = ReferenceMethod.load(model, saes, false);
    assertThrows(IllegalArgumentException.class, () -> r.ablate(1, 0, TOKENS, T)); // no SAE at 2
    assertThrows(IllegalArgumentException.class, () -> r.ablate(-1, 0, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(0, 6, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(0, -1, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(0, 0, TOKENS, TOKENS.length));
    assertThrows(IllegalArgumentException.class, () -> r.ablate(0, 0, TOKENS, 0)); // the BOS
    assertThrows(IllegalArgumentException.class, () -> r.candidates(0, TOKENS, -1));
    assertThrows(IllegalArgumentException.class, () -> r.logitEffects(0, 6, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.logitEffects(2, 0, TOKENS, T));
    assertThrows(IllegalArgumentException.class, () -> r.logProbs(TOKENS, TOKENS.length));
    assertThrows(IllegalArgumentException.class, () -> r.residuals(new int[] {0, V}));
    assertThrows(IllegalArgumentException.class, () -> r.residuals(new int[P + 1]));
    assertThrows(IllegalArgumentException.class, () -> r.dSae(2));
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> r.ablate(0, 0, TOKENS, 0));
    assertTrue(e.getMessage().contains("BOS"), e.getMessage());
    assertEquals(V, r.logProbs(TOKENS, 0).length, "clean log-probs at position 0 are fine");

    Path wrong = tmp.resolve("wrong");
    SaeFiles narrow = new SaeFiles(3, 2);
    narrow.write(wrong, 0);
    IOException io = assertThrows(IOException.class, () -> ReferenceMethod.load(model, wrong, false));
    assertTrue(io.getMessage().contains("d_in"), io.getMessage());
  }

  // ---------------------------------------------------------------------------------------------
  // Hand computations

  private static double[] encodeByHand(SaeFiles sae, double[] x, boolean centred) {
    double shift = centred ? mean(x) : 0.0;
    double[] f = new double[sae.s];
    for (int j = 0; j < sae.s; j++) {
      double pre = sae.bEnc[j];
      for (int k = 0; k < sae.d; k++) {
        double bDec = sae.applyBDecToInput ? sae.bDec[k] : 0.0;
        pre += (x[k] - shift - bDec) * sae.wEnc[k][j];
      }
      f[j] = Math.max(0.0, pre);
    }
    return f;
  }

  // ---------------------------------------------------------------------------------------------
  // Tiny models and SAEs

  /**
   * SAE0 (S = 6): latents 0..3 read coordinates 0..3 (f = ReLU(x_k)), latent 4 never fires,
   * latent 5 fires only where x_0 > 3, i.e. at position 0.
   */
  private static SaeFiles sae0() {
    SaeFiles s = new SaeFiles(D, 6);
    for (int k = 0; k < D; k++) {
      s.wEnc[k][k] = 1.0;
      s.wEnc[k][4] = 1.0;
    }
    s.wEnc[0][5] = 1.0;
    s.bEnc[4] = -1000.0;
    s.bEnc[5] = -3.0;
    s.wDec = W_DEC0;
    return s;
  }

  /** SAE1 (S = 3): always on (b_enc = 100) and a nonzero b_dec. */
  private static SaeFiles sae1() {
    SaeFiles s = new SaeFiles(D, 3);
    s.wEnc = W_ENC1;
    s.bEnc = new double[] {100.0, 100.0, 100.0};
    s.bDec = new double[] {0.5, -0.25, 0.0, 1.0};
    s.wDec = new double[][] {{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}};
    return s;
  }

  /** One SAELens SAE folder. */
  private static final class SaeFiles {
    final int d;
    final int s;
    double[][] wEnc;
    double[] bEnc;
    double[][] wDec;
    double[] bDec;
    boolean applyBDecToInput = true;
    boolean prependBos = true;

    SaeFiles(int d, int s) {
      this.d = d;
      this.s = s;
      wEnc = new double[d][s];
      bEnc = new double[s];
      wDec = new double[s][d];
      bDec = new double[d];
    }

    void write(Path saesDir, int layer) throws IOException {
      Path dir = saesDir.resolve("blocks." + layer + ".hook_resid_pre");
      Files.createDirectories(dir);
      ObjectNode cfg = JSON.createObjectNode();
      cfg.put("d_in", d);
      cfg.put("d_sae", s);
      cfg.put("architecture", "standard");
      cfg.put("normalize_activations", "none");
      cfg.put("hook_name", "blocks." + layer + ".hook_resid_pre");
      cfg.put("apply_b_dec_to_input", applyBDecToInput);
      cfg.put("prepend_bos", prependBos);
      cfg.putObject("model_from_pretrained_kwargs").put("center_writing_weights", false);
      JSON.writeValue(dir.resolve("cfg.json").toFile(), cfg);
      Map<String, Entry> entries = new LinkedHashMap<>();
      entries.put("W_enc", new Entry("F32", new int[] {d, s}, f32(flatten(wEnc))));
      entries.put("b_enc", new Entry("F32", new int[] {s}, f32(bEnc)));
      entries.put("W_dec", new Entry("F32", new int[] {s, d}, f32(flatten(wDec))));
      entries.put("b_dec", new Entry("F32", new int[] {d}, f32(bDec)));
      writeSafetensors(dir.resolve("sae_weights.safetensors"), entries);
    }
  }

}
