package resgraph.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.reference.TinyModels.D;
import static resgraph.reference.TinyModels.EPS;
import static resgraph.reference.TinyModels.T;
import static resgraph.reference.TinyModels.TOKENS;
import static resgraph.reference.TinyModels.V;
import static resgraph.reference.TinyModels.averagedBlock;
import static resgraph.reference.TinyModels.f32;
import static resgraph.reference.TinyModels.flatten;
import static resgraph.reference.TinyModels.identityModel;
import static resgraph.reference.TinyModels.logSoftmaxByHand;
import static resgraph.reference.TinyModels.logitsByHand;
import static resgraph.reference.TinyModels.ones;
import static resgraph.reference.TinyModels.x0;
import static resgraph.reference.TinySaes.W_DEC;
import static resgraph.reference.TinySaes.W_ENC_READOUT;
import static resgraph.reference.TinySaes.identityEncoder;
import static resgraph.reference.TinySaes.legacy;
import static resgraph.reference.TinySaes.vector;
import static resgraph.reference.TinySaes.writeReadout;
import static resgraph.reference.TinySaes.writeSae;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.reference.TinyModels.Entry;
import resgraph.reference.TinyModels.Gpt2Files;

/**
 * resid_pre, resid_mid and resid_post, and ablations between any two of them. The model mixes
 * positions in its attention and is nonlinear per position in its MLP, each half simple enough to
 * write out by hand:
 *
 * <pre>
 *   attention half  A(x)[p] = x[p] + mean_{j <= p} LN(x[j])        (q = k = 0, v = c_proj = I)
 *   MLP half        M(x)[p] = x[p] + gain · gelu_new(LN(x[p]))     (c_fc = I, c_proj = gain · I)
 * </pre>
 *
 * Sources are identity-encoder SAEs (latent i reads coordinate i) and targets always-on linear
 * readouts, so e[j] = (x'_to[T] - x_to[T]) · W_ENC_READOUT[:, j].
 */
class HookSitesTest {

  private static final double TOL = 1e-12;

  private static String hook(int layer, String kind) {
    return "blocks." + layer + ".hook_resid_" + kind;
  }

  @TempDir Path tmp;

  @Test
  void midAndPostAreTheResidualsAfterAttentionAndAfterTheMlp() throws IOException {
    // Zero weights: attention adds its c_proj bias, the MLP its c_proj bias.
    Gpt2Files m = identityModel(2);
    double[][] attnBias = {{0.25, -0.5, 0.125, 1.0}, {-0.125, 0.0, 0.5, 0.25}};
    double[][] mlpBias = {{-1.0, 0.75, 0.5, -0.125}, {0.375, -0.25, 0.0, 0.5}};
    for (int l = 0; l < 2; l++) {
      m.put("h." + l + ".attn.c_proj.bias", attnBias[l]);
      m.put("h." + l + ".mlp.c_proj.bias", mlpBias[l]);
    }
    Path model = tmp.resolve("m");
    m.write(model);
    ReferenceMethod r = ReferenceMethod.load(model, null, null);
    for (int p = 0; p < TOKENS.length; p++) {
      double[] x = x0(TOKENS, p);
      for (int l = 0; l < 2; l++) {
        assertArrayEquals(x, r.residual(hook(l, "pre"), TOKENS)[p], TOL, "pre " + l);
        x = add(x, attnBias[l]);
        assertArrayEquals(x, r.residual(hook(l, "mid"), TOKENS)[p], TOL, "mid " + l);
        x = add(x, mlpBias[l]);
        assertArrayEquals(x, r.residual(hook(l, "post"), TOKENS)[p], TOL, "post " + l);
      }
    }
    // resid_post of l is resid_pre of l+1; the last resid_post is the residual before ln_f.
    assertArrayEquals(r.residual(hook(1, "pre"), TOKENS), r.residual(hook(0, "post"), TOKENS));
    double[][] last = r.residual(hook(1, "post"), TOKENS);
    assertArrayEquals(r.residuals(TOKENS)[2], last);
    assertArrayEquals(logSoftmaxByHand(logitsByHand(m, last[T])), r.logProbs(TOKENS, T), TOL);
  }

  @Test
  void theMixingModelsHalvesAreWhatTheHandSays() throws IOException {
    Path model = tmp.resolve("m");
    mixingModel(2, 1.0).write(model);
    ReferenceMethod r = ReferenceMethod.load(model, null, null);
    double[][] mid = attnByHand(clean(TOKENS.length));
    assertRows(mid, r.residual(hook(0, "mid"), TOKENS), TOL);
    assertRows(mlpByHand(mid, 1.0), r.residual(hook(0, "post"), TOKENS), TOL);
  }

  @Test
  void preToMidRunsTheAttentionOnly() throws IOException {
    // Latent 0 fires at positions 1, 2, 3 (x_0[p][0] > 0) but not at T: its effect at mid
    // arrives through attention only.
    int latent = 0;
    double[] expected = new double[3];
    for (double gain : new double[] {1.0, 3.0}) {
      Path model = tmp.resolve("m" + gain);
      mixingModel(2, gain).write(model);
      Path saes = tmp.resolve("s" + gain);
      writeSae(saes.resolve("a"), legacy(hook(0, "pre"), "standard"), identityEncoder());
      writeReadout(saes.resolve("b"), hook(0, "mid"));
      writeReadout(saes.resolve("c"), hook(0, "post"));
      ReferenceMethod r = ReferenceMethod.load(model, saes, null);

      double[][] x = clean(T + 1);
      double[][] ablated = ablateByHand(x, new double[4], latent);
      double[] e = r.ablate(hook(0, "pre"), latent, hook(0, "mid"), TOKENS, T);
      assertArrayEquals(readoutChange(attnByHand(x), attnByHand(ablated)), e, 1e-10);
      assertNotEquals(0.0, e[0]);
      if (gain == 1.0) {
        expected = e;
      } else {
        assertArrayEquals(expected, e, 0.0, "changing the MLP must not change pre -> mid");
        double[] post = r.ablate(hook(0, "pre"), latent, hook(0, "post"), TOKENS, T);
        assertArrayEquals(
            readoutChange(mlpByHand(attnByHand(x), gain), mlpByHand(attnByHand(ablated), gain)),
            post, 1e-10);
        assertFalse(Arrays.equals(e, post), "pre -> post does run the MLP");
      }
    }
  }

  @Test
  void midToPostIsPerPosition() throws IOException {
    Path model = tmp.resolve("m");
    mixingModel(2, 1.0).write(model);
    double[][] mid = attnByHand(clean(T + 1));
    // Latent 4 reads a coordinate that is larger at some position before T than at T, with the
    // bias between the two: it fires before T and not at T.
    int k = -1;
    double bias = 0;
    for (int c = 0; c < D && k < 0; c++) {
      double before = Double.NEGATIVE_INFINITY;
      for (int p = 1; p < T; p++) {
        before = Math.max(before, mid[p][c]);
      }
      if (before > mid[T][c] + 0.25) {
        k = c;
        bias = -(before + mid[T][c]) / 2;
      }
    }
    assertTrue(k >= 0, "the mixing model needs such a coordinate");
    Path saes = tmp.resolve("s");
    ObjectNode cfg = legacy(hook(0, "mid"), "standard");
    cfg.put("d_sae", 5);
    writeSae(saes.resolve("a"), cfg, fiveLatents(k, bias));
    writeReadout(saes.resolve("b"), hook(0, "post"));
    writeReadout(saes.resolve("c"), hook(1, "mid"));
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    assertTrue(Arrays.stream(r.candidates(hook(0, "mid"), TOKENS, T)).anyMatch(i -> i == 4));
    assertEquals(0.0, r.activations(hook(0, "mid"), TOKENS)[T][4], 0.0);

    assertArrayEquals(new double[3], r.ablate(hook(0, "mid"), 4, hook(0, "post"), TOKENS, T), 0.0,
        "active only before T: no effect through the MLP, exactly");
    double[] throughAttention = r.ablate(hook(0, "mid"), 4, hook(1, "mid"), TOKENS, T);
    assertNotEquals(0.0, throughAttention[0], "the next attention carries it to T");

    // A latent active at T: M(x'[T]) - M(x[T]), position T alone.
    int latent = 2;
    assertTrue(mid[T][latent] > 0);
    double[] xT = mid[T];
    double[] xAblated = xT.clone();
    for (int c = 0; c < D; c++) {
      xAblated[c] -= mid[T][latent] * W_DEC[latent][c];
    }
    double[] expected = readoutChange(mlpByHand(new double[][] {xT}, 1.0)[0],
        mlpByHand(new double[][] {xAblated}, 1.0)[0]);
    assertArrayEquals(expected, r.ablate(hook(0, "mid"), latent, hook(0, "post"), TOKENS, T),
        1e-10);
  }

  @Test
  void midToMidPostToPostAndPreToPreAcrossTwoBlocks() throws IOException {
    Path model = tmp.resolve("m");
    Gpt2Files m = mixingModel(3, 1.0);
    m.write(model);
    Path saes = tmp.resolve("s");
    writeSae(saes.resolve("a"), legacy(hook(0, "pre"), "standard"), identityEncoder());
    writeSae(saes.resolve("b"), legacy(hook(0, "mid"), "standard"), identityEncoder());
    writeSae(saes.resolve("c"), legacy(hook(0, "post"), "standard"), identityEncoder());
    writeReadout(saes.resolve("d"), hook(1, "mid"));
    writeReadout(saes.resolve("e"), hook(1, "post"));
    writeReadout(saes.resolve("f"), hook(2, "pre"));
    ReferenceMethod r = ReferenceMethod.load(model, saes, null);
    assertEquals(List.of(hook(0, "pre"), hook(0, "mid"), hook(0, "post"), hook(1, "mid"),
        hook(1, "post"), hook(2, "pre")), r.hooks());

    double[][] pre0 = clean(T + 1);
    double[][] mid0 = attnByHand(pre0);
    double[][] post0 = mlpByHand(mid0, 1.0);
    for (int latent = 0; latent < 4; latent++) {
      // mid0 -> mid1: block 0's MLP, then block 1's attention
      double[][] a = ablateByHand(mid0, new double[4], latent);
      assertArrayEquals(
          readoutChange(attnByHand(mlpByHand(mid0, 1.0)), attnByHand(mlpByHand(a, 1.0))),
          r.ablate(hook(0, "mid"), latent, hook(1, "mid"), TOKENS, T), 1e-10, "mid " + latent);
      // post0 -> post1: block 1 whole
      double[][] b = ablateByHand(post0, new double[4], latent);
      assertArrayEquals(
          readoutChange(mlpByHand(attnByHand(post0), 1.0), mlpByHand(attnByHand(b), 1.0)),
          r.ablate(hook(0, "post"), latent, hook(1, "post"), TOKENS, T), 1e-10, "post " + latent);
      // pre0 -> pre2: blocks 0 and 1
      double[][] c = ablateByHand(pre0, new double[4], latent);
      assertArrayEquals(
          readoutChange(twoBlocks(pre0), twoBlocks(c)),
          r.ablate(hook(0, "pre"), latent, hook(2, "pre"), TOKENS, T), 1e-10, "pre " + latent);
    }

    // Step 8 from resid_mid: the rest of block 0, blocks 1 and 2, ln_f.
    int latent = 1;
    double[][] a = ablateByHand(mid0, new double[4], latent);
    double[] clean = logSoftmaxByHand(logitsByHand(m, toEnd(mid0)));
    double[] ablated = logSoftmaxByHand(logitsByHand(m, toEnd(a)));
    double[] effects = r.logitEffects(hook(0, "mid"), latent, TOKENS, T);
    assertEquals(V, effects.length);
    for (int v = 0; v < V; v++) {
      assertEquals(clean[v] - ablated[v], effects[v], 1e-10, "token " + v);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The mixing model and its hand computation

  /**
   * {@link TinyModels#identityModel} with every block's attention the causal mean of LN(x)
   * and its MLP gain · gelu_new(LN(x)).
   */
  private static Gpt2Files mixingModel(int layers, double gain) {
    Gpt2Files m = identityModel(layers);
    for (int l = 0; l < layers; l++) {
      String p = "h." + l + ".";
      Arrays.fill(m.get(p + "ln_1.weight"), 1.0);
      Arrays.fill(m.get(p + "ln_2.weight"), 1.0);
      for (int k = 0; k < D; k++) {
        m.set(p + "attn.c_attn.weight", k, 2 * D + k, 1.0); // v = x; q = k = 0
        m.set(p + "attn.c_proj.weight", k, k, 1.0);
        m.set(p + "mlp.c_fc.weight", k, k, 1.0);
        m.set(p + "mlp.c_proj.weight", k, k, gain);
      }
    }
    return m;
  }

  /** x_0 at positions 0..n-1: [n, d]. */
  private static double[][] clean(int n) {
    double[][] x = new double[n][];
    for (int p = 0; p < n; p++) {
      x[p] = x0(TOKENS, p);
    }
    return x;
  }

  /** A(x)[p] = x[p] + mean_{j <= p} LN(x[j]). */
  private static double[][] attnByHand(double[][] x) {
    double[][] y = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      y[p] = averagedBlock(Arrays.copyOf(x, p + 1));
    }
    return y;
  }

  /** M(x)[p] = x[p] + gain · gelu_new(LN(x[p])). */
  private static double[][] mlpByHand(double[][] x, double gain) {
    double[][] y = new double[x.length][D];
    for (int p = 0; p < x.length; p++) {
      double[] u = ReferenceMethod.layerNorm(x[p], ones(D), new double[D], EPS);
      for (int k = 0; k < D; k++) {
        y[p][k] = x[p][k] + gain * ReferenceMethod.geluNew(u[k]);
      }
    }
    return y;
  }

  private static double[][] twoBlocks(double[][] x) {
    return mlpByHand(attnByHand(mlpByHand(attnByHand(x), 1.0)), 1.0);
  }

  /** From resid_mid of block 0 to the residual before ln_f of the 3-layer model, at T. */
  private static double[] toEnd(double[][] mid0) {
    double[][] x = mlpByHand(mid0, 1.0);
    return twoBlocks(x)[T];
  }

  /**
   * Step 3 for the identity-encoder SAE with biases {@code bEnc}: x[p] - ReLU(x[p][i] + b_i) ·
   * W_DEC[i] at positions 1..n-1 (0 is the BOS).
   */
  private static double[][] ablateByHand(double[][] x, double[] bEnc, int latent) {
    double[][] y = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      y[p] = x[p].clone();
      double f = p == 0 ? 0.0 : Math.max(0.0, x[p][latent] + bEnc[latent]);
      for (int k = 0; k < D; k++) {
        y[p][k] -= f * W_DEC[latent][k];
      }
    }
    return y;
  }

  /** The readout's change at T: (ablated[T] - clean[T]) · W_ENC_READOUT: [3]. */
  private static double[] readoutChange(double[][] clean, double[][] ablated) {
    return readoutChange(clean[T], ablated[T]);
  }

  /** (ablated - clean) · W_ENC_READOUT: [d] -> [3]. */
  private static double[] readoutChange(double[] clean, double[] ablated) {
    double[] e = new double[3];
    for (int j = 0; j < 3; j++) {
      for (int k = 0; k < D; k++) {
        e[j] += (ablated[k] - clean[k]) * W_ENC_READOUT[k][j];
      }
    }
    return e;
  }

  /** The identity encoder plus latent 4, which reads coordinate k with bias b. */
  private static Map<String, Entry> fiveLatents(int k, double b) {
    double[][] wEnc = new double[D][5];
    double[][] wDec = new double[5][];
    for (int c = 0; c < D; c++) {
      wEnc[c][c] = 1.0;
      wDec[c] = W_DEC[c];
    }
    wEnc[k][4] = 1.0;
    wDec[4] = new double[] {0.25, 0.5, -0.5, 1.0};
    Map<String, Entry> t = identityEncoder();
    t.put("W_enc", new Entry("F32", new int[] {D, 5}, f32(flatten(wEnc))));
    t.put("b_enc", vector(0, 0, 0, 0, b));
    t.put("W_dec", new Entry("F32", new int[] {5, D}, f32(flatten(wDec))));
    return t;
  }

  private static double[] add(double[] a, double[] b) {
    double[] c = new double[a.length];
    for (int k = 0; k < a.length; k++) {
      c[k] = a[k] + b[k];
    }
    return c;
  }

  private static void assertRows(double[][] expected, double[][] actual, double tol) {
    assertEquals(expected.length, actual.length);
    for (int p = 0; p < expected.length; p++) {
      assertArrayEquals(expected[p], actual[p], tol, "position " + p);
    }
  }
}
