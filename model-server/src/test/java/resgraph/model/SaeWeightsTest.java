package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import resgraph.model.SaeConfig.Setting;
import resgraph.model.SafeTensors.Tensor;
import resgraph.platform.ResgraphException;

/** sae_weights.safetensors: each architecture's tensors, what SAELens folds in, and tensors nobody asked for. */
class SaeWeightsTest {

  private static final Setting OFF = new Setting("centering", "off", "test");
  private final NDManager nd = NDManager.newBaseManager(Device.cpu());

  @AfterEach
  void close() {
    nd.close();
  }

  /** d = 2, S = 3: W_enc picks coordinates, so pre = x·W_enc + b_enc is easy to read. */
  private static Map<String, Tensor> standard() {
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("W_enc", new Tensor(new long[] {2, 3}, new float[] {1, 0, 1, 0, 1, 1}));
    t.put("b_enc", new Tensor(new long[] {3}, new float[] {0, 0, -1}));
    t.put("W_dec", new Tensor(new long[] {3, 2}, new float[] {1, 2, 3, 4, 5, 6}));
    t.put("b_dec", new Tensor(new long[] {2}, new float[] {0, 0}));
    return t;
  }

  private static SaeConfig cfg(String extra) throws Exception {
    String json = "{'d_in': 2, 'd_sae': 3, 'hook_name': 'blocks.0.hook_resid_pre'" + extra + "}";
    return SaeConfig.of(new ObjectMapper().readTree(json.replace('\'', '"')), Path.of("/saes/cfg.json"));
  }

  private Sae sae(String extra, Map<String, Tensor> tensors) throws Exception {
    return Sae.of(cfg(extra), OFF, Tensors.of(tensors, "/saes/sae_weights.safetensors"), nd);
  }

  /** f at one float64 input, dense. */
  private float[] encode(Sae s, double... x) {
    Trace.SparseRow row = s.encode(nd.create(x, new Shape(1, x.length)))[0];
    float[] f = new float[s.d_sae()];
    for (int i = 0; i < row.latents().length; i++) f[row.latents()[i]] = row.values()[i];
    return f;
  }

  private static String setting(Sae s, String name) {
    return s.cfg.settings().stream().filter(x -> x.name().equals(name)).map(Setting::value).findFirst().orElse("");
  }

  @Test
  void anUnknownTensorIsRefusedByName() {
    Map<String, Tensor> t = standard();
    t.put("W_skip", new Tensor(new long[] {2, 2}, new float[4]));
    ResgraphException e = assertThrows(ResgraphException.class, () -> sae("", t));
    assertTrue(e.getMessage().contains("W_skip") && e.getMessage().contains("/saes/sae_weights.safetensors"), e.getMessage());
    Map<String, Tensor> gated = standard(); // a standard SAE's b_enc is not a gated SAE's
    ResgraphException g = assertThrows(ResgraphException.class, () -> sae(", 'architecture': 'gated'", gated));
    assertTrue(g.getMessage().contains("b_enc"), g.getMessage());
  }

  @Test
  void aScalingFactorMultipliesTheLatentsBeforeTheDecoder() throws Exception {
    Map<String, Tensor> ones = standard();
    ones.put("scaling_factor", new Tensor(new long[] {3}, new float[] {1, 1, 1}));
    Sae plain = sae("", ones);
    assertEquals("all ones: no effect", setting(plain, "scaling_factor"));
    assertArrayEquals(new float[] {3, 4}, plain.decoderRow(1).toFloatArray());

    Map<String, Tensor> scaled = standard();
    scaled.put("scaling_factor", new Tensor(new long[] {3}, new float[] {1, 0.5f, 2}));
    ResgraphException e = assertThrows(ResgraphException.class, () -> sae("", scaled));
    assertTrue(e.getMessage().contains("finetuning_scaling_factor"), e.getMessage());
    Sae s = sae(", 'finetuning_scaling_factor': true", scaled);
    assertArrayEquals(new float[] {1.5f, 2}, s.decoderRow(1).toFloatArray());
    assertArrayEquals(new float[] {10, 12}, s.decoderRow(2).toFloatArray());
    assertThrows(ResgraphException.class, () -> sae(", 'finetuning_scaling_factor': true", standard()), "the flag without the tensor");
  }

  @Test
  void jumpReluReadsItsThresholdOrItsLogarithm() throws Exception {
    Map<String, Tensor> t = standard();
    t.put("threshold", new Tensor(new long[] {3}, new float[] {0.5f, 2, 0}));
    Sae direct = sae(", 'architecture': 'jumprelu'", t);
    // pre = (1, 1.5, 1.5): latent 1 is below its θ of 2, latent 2's θ of 0 leaves a ReLU
    assertArrayEquals(new float[] {1, 0, 1.5f}, encode(direct, 1, 1.5f), 1e-6f);

    Map<String, Tensor> log = standard();
    log.put("log_threshold", new Tensor(new long[] {3}, new float[] {(float) Math.log(0.5), (float) Math.log(2), -30}));
    Sae fromLog = sae(", 'architecture': 'jumprelu'", log);
    assertArrayEquals(encode(direct, 1, 1.5f), encode(fromLog, 1, 1.5f), 1e-6f);
    assertEquals("exp(log_threshold)", setting(fromLog, "threshold"));

    Map<String, Tensor> both = standard();
    both.putAll(t);
    both.put("log_threshold", log.get("log_threshold"));
    assertThrows(ResgraphException.class, () -> sae(", 'architecture': 'jumprelu'", both));
    assertThrows(ResgraphException.class, () -> sae(", 'architecture': 'jumprelu'", standard()));
  }

  @Test
  void gatedMultipliesTheGateByTheRescaledMagnitude() throws Exception {
    Map<String, Tensor> t = standard();
    t.remove("b_enc");
    t.put("b_gate", new Tensor(new long[] {3}, new float[] {0, -2, 0}));
    t.put("r_mag", new Tensor(new long[] {3}, new float[] {0, 0, (float) Math.log(3)}));
    t.put("b_mag", new Tensor(new long[] {3}, new float[] {0.5f, 0, -1}));
    Sae s = sae(", 'architecture': 'gated'", t);
    // x = (1, 1.5): gate pre = (1, -0.5, 2.5) -> latent 1 closed; magnitude = (1.5, ., 2.5·3 - 1)
    assertArrayEquals(new float[] {1.5f, 0, 6.5f}, encode(s, 1, 1.5f), 1e-5f);
  }

  @Test
  void topKKeepsTheLargestTiesToTheLowerLatent() throws Exception {
    Sae s = sae(", 'architecture': 'topk', 'k': 2", standard());
    // pre = (1, 1, 1): three-way tie, the two lowest latents stay
    assertArrayEquals(new float[] {1, 1, 0}, encode(s, 1, 1), 0f);
    // fewer than k positive: the rest are zero after the ReLU
    assertArrayEquals(new float[] {0.5f, 0, 0}, encode(s, 0.5f, -2), 1e-6f);
  }

  @Test
  void rescalingByDecoderNormIsFoldedExactly() throws Exception {
    Sae s = sae(", 'architecture': 'topk', 'k': 1, 'rescale_acts_by_decoder_norm': true", standard());
    double n1 = 5, n2 = Math.sqrt(61);
    // pre = (1, 1.5, 1.5) scaled by the decoder rows' norms (√5, 5, √61): latent 2 wins at 1.5·√61
    assertArrayEquals(new float[] {0, 0, (float) (1.5 * n2)}, encode(s, 1, 1.5f), 1e-5f);
    // and decodes in unit-norm rows, so f·row is what pre·row/|row| would give
    assertArrayEquals(new float[] {(float) (5 / n2), (float) (6 / n2)}, s.decoderRow(2).toFloatArray(), 1e-6f);
    assertArrayEquals(new float[] {(float) (3 / n1), (float) (4 / n1)}, s.decoderRow(1).toFloatArray(), 1e-6f);
  }

  /** Beyond float32's resolution at 1: what a float32 product of the same weights cannot see. */
  private static final double TINY = Math.scalb(1.0, -30);

  @Test
  void aLatentWithinFloat32RoundingOfItsThresholdIsDecidedExactly() throws Exception {
    Sae relu = sae("", standard());
    // pre = (1, ±2^-30, ±2^-30): in float32 latent 2's 1 + 2^-30 - 1 is 0 either way
    assertArrayEquals(new float[] {1, (float) TINY, (float) TINY}, encode(relu, 1, TINY), 0f);
    assertArrayEquals(new float[] {1, 0, 0}, encode(relu, 1, -TINY), 0f);

    Map<String, Tensor> t = standard();
    t.put("b_enc", new Tensor(new long[] {3}, new float[] {0, 0, 0}));
    t.put("threshold", new Tensor(new long[] {3}, new float[] {0.5f, 2, 2}));
    Sae jump = sae(", 'architecture': 'jumprelu'", t);
    // latent 2's pre = 2 ± 2^-30 against its θ of 2
    assertArrayEquals(new float[] {1, 0, 2}, encode(jump, 1, 1 + TINY), 0f);
    assertArrayEquals(new float[] {1, 0, 0}, encode(jump, 1, 1 - TINY), 0f);

    Sae topOne = sae(", 'architecture': 'topk', 'k': 1", standard());
    // pre = (1, 1 + 2^-30, 1 + 2^-30): latent 1 leads latent 0 by less than float32 can tell, and ties latent 2
    assertArrayEquals(new float[] {0, 1, 0}, encode(topOne, 1, 1 + TINY), 0f);
  }

  @Test
  void rowsEncodedInChunksAreEncodedAsEachAlone() throws Exception {
    Sae s = sae(", 'architecture': 'topk', 'k': 2", standard());
    int n = 2 * Sae.ROWS_AT_ONCE + 5;
    double[] x = new double[2 * n];
    java.util.Random random = new java.util.Random(7);
    for (int i = 0; i < x.length; i++) x[i] = random.nextGaussian();
    Trace.SparseRow[] together = s.encode(nd.create(x, new Shape(n, 2)));
    assertEquals(n, together.length);
    for (int p = 0; p < n; p++) {
      float[] alone = encode(s, x[2 * p], x[2 * p + 1]);
      float[] row = new float[s.d_sae()];
      for (int i = 0; i < together[p].latents().length; i++) row[together[p].latents()[i]] = together[p].values()[i];
      assertArrayEquals(alone, row, 0f, "row " + p);
    }
  }
}
