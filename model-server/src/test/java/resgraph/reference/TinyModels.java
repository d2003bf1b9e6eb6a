package resgraph.reference;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * The tiny handmade GPT-2 checkpoints the reference's tests run on, their hand computations, and a
 * safetensors writer independent of the one in {@link ReferenceSaes}. Values are multiples of 1/8
 * so they survive float32 (and F16/BF16) storage exactly.
 */
final class TinyModels {

  private TinyModels() {}

  static final ObjectMapper JSON = new ObjectMapper();
  static final double EPS = 1e-5;

  /** Embeddings of the tiny models: 6 tokens, d = 4. */
  static final double[][] WTE = {
    {1.0, -0.5, 0.25, 2.0},
    {0.5, 1.5, -1.0, 0.75},
    {-0.25, 0.5, 2.0, -1.5},
    {2.5, 0.25, 0.5, 1.0},
    {0.0, -1.0, 1.25, 0.5},
    {1.5, 1.0, -0.75, -0.25},
  };
  static final int V = 6;
  static final int D = 4;
  static final int P = 8;

  /** Token 5 plays the BOS token; position 4 is the default target. */
  static final int[] TOKENS = {5, 1, 3, 0, 2};
  static final int T = 4;

  /** Position 0 gets a large first coordinate so that SAE0's latent 5 fires only there. */
  static double[][] wpe() {
    double[][] wpe = new double[P][D];
    wpe[0] = new double[] {6.0, 0.0, 0.0, 0.0};
    for (int p = 1; p < P; p++) {
      wpe[p] = new double[] {0.25 * (p % 2), -0.125 * p, 0.125, 0.0};
    }
    return wpe;
  }

  static double[] x0(int[] tokens, int p) {
    double[] x = new double[D];
    for (int k = 0; k < D; k++) {
      x[k] = WTE[tokens[p]][k] + wpe()[p][k];
    }
    return x;
  }

  /** Logits of a model whose blocks are identities: ln_f(x) · wte^T. */
  static double[] logitsByHand(Gpt2Files m, double[] x) {
    double[] hidden = ReferenceMethod.layerNorm(x, m.get("ln_f.weight"), m.get("ln_f.bias"), EPS);
    double[] logits = new double[V];
    for (int v = 0; v < V; v++) {
      for (int k = 0; k < D; k++) {
        logits[v] += hidden[k] * WTE[v][k];
      }
    }
    return logits;
  }

  static double[] logSoftmaxByHand(double[] z) {
    double total = 0;
    for (double v : z) {
      total += Math.exp(v);
    }
    double[] out = new double[z.length];
    for (int i = 0; i < z.length; i++) {
      out[i] = z[i] - Math.log(total);
    }
    return out;
  }

  /** x[last] + the uniform causal average of LN(x[j]): the block of the averaging test. */
  static double[] averagedBlock(double[][] x) {
    int last = x.length - 1;
    double[] out = x[last].clone();
    for (double[] row : x) {
      double[] u = ReferenceMethod.layerNorm(row, ones(D), new double[D], EPS);
      for (int k = 0; k < D; k++) {
        out[k] += u[k] / x.length;
      }
    }
    return out;
  }


  static double mean(double[] x) {
    double s = 0;
    for (double v : x) {
      s += v;
    }
    return s / x.length;
  }

  static double[] ones(int n) {
    double[] o = new double[n];
    Arrays.fill(o, 1.0);
    return o;
  }


  // ---------------------------------------------------------------------------------------------
  // Tiny models

  /** Two layers whose blocks are all zero (so x_{l+1} = x_l) and a non-trivial ln_f. */
  static Gpt2Files identityModel(int layers) {
    Gpt2Files m = new Gpt2Files(layers, D, 2, V, P, 4 * D);
    fillEmbeddings(m);
    m.put("ln_f.weight", new double[] {1.0, 0.5, 2.0, 1.0});
    m.put("ln_f.bias", new double[] {0.0, 0.25, 0.0, -0.5});
    return m;
  }

  static Gpt2Files randomModel(int layers, long seed) {
    Gpt2Files m = new Gpt2Files(layers, D, 2, V, P, 4 * D);
    Random random = new Random(seed);
    for (double[] values : m.values.values()) {
      for (int k = 0; k < values.length; k++) {
        values[k] = (random.nextInt(17) - 8) / 8.0;
      }
    }
    fillEmbeddings(m);
    return m;
  }

  static void fillEmbeddings(Gpt2Files m) {
    double[][] wpe = wpe();
    for (int v = 0; v < V; v++) {
      for (int k = 0; k < D; k++) {
        m.set("wte.weight", v, k, WTE[v][k]);
      }
    }
    for (int p = 0; p < P; p++) {
      for (int k = 0; k < D; k++) {
        m.set("wpe.weight", p, k, wpe[p][k]);
      }
    }
  }

  /** A GPT-2 checkpoint in Hugging Face layout, every tensor zero until set. */
  static final class Gpt2Files {
    final int layers;
    final int d;
    final int nHead;
    final int inner;
    final Map<String, int[]> shapes = new LinkedHashMap<>();
    final Map<String, double[]> values = new LinkedHashMap<>();
    final Map<String, String> dtypes = new HashMap<>();
    String prefix = "";
    boolean maskBuffers;

    Gpt2Files(int layers, int d, int nHead, int vocab, int positions, int inner) {
      this.layers = layers;
      this.d = d;
      this.nHead = nHead;
      this.inner = inner;
      tensor("wte.weight", vocab, d);
      tensor("wpe.weight", positions, d);
      for (int l = 0; l < layers; l++) {
        String p = "h." + l + ".";
        tensor(p + "ln_1.weight", d);
        tensor(p + "ln_1.bias", d);
        tensor(p + "attn.c_attn.weight", d, 3 * d);
        tensor(p + "attn.c_attn.bias", 3 * d);
        tensor(p + "attn.c_proj.weight", d, d);
        tensor(p + "attn.c_proj.bias", d);
        tensor(p + "ln_2.weight", d);
        tensor(p + "ln_2.bias", d);
        tensor(p + "mlp.c_fc.weight", d, inner);
        tensor(p + "mlp.c_fc.bias", inner);
        tensor(p + "mlp.c_proj.weight", inner, d);
        tensor(p + "mlp.c_proj.bias", d);
      }
      tensor("ln_f.weight", d);
      tensor("ln_f.bias", d);
    }

    private void tensor(String name, int... shape) {
      shapes.put(name, shape);
      values.put(name, new double[Arrays.stream(shape).reduce(1, (a, b) -> a * b)]);
    }

    double[] get(String name) {
      return values.get(name);
    }

    void put(String name, double[] v) {
      System.arraycopy(v, 0, values.get(name), 0, v.length);
    }

    void set(String name, int row, int col, double v) {
      values.get(name)[row * shapes.get(name)[1] + col] = v;
    }

    void write(Path dir) throws IOException {
      Files.createDirectories(dir);
      ObjectNode config = JSON.createObjectNode();
      config.put("n_layer", layers);
      config.put("n_embd", d);
      config.put("n_head", nHead);
      config.put("n_positions", shapes.get("wpe.weight")[0]);
      config.put("vocab_size", shapes.get("wte.weight")[0]);
      config.put("layer_norm_epsilon", EPS);
      config.put("activation_function", "gelu_new");
      if (inner == 4 * d) {
        config.putNull("n_inner");
      } else {
        config.put("n_inner", inner);
      }
      JSON.writeValue(dir.resolve("config.json").toFile(), config);

      Map<String, Entry> entries = new LinkedHashMap<>();
      for (String name : values.keySet()) {
        String dtype = dtypes.getOrDefault(name, "F32");
        byte[] bytes = switch (dtype) {
          case "F32" -> f32(values.get(name));
          case "BF16" -> bf16(values.get(name));
          default -> f16(values.get(name));
        };
        entries.put(prefix + name, new Entry(dtype, shapes.get(name), bytes));
      }
      if (maskBuffers) {
        for (int l = 0; l < layers; l++) {
          int n = shapes.get("wpe.weight")[0];
          entries.put(prefix + "h." + l + ".attn.bias",
              new Entry("BOOL", new int[] {1, 1, n, n}, new byte[n * n]));
          entries.put(prefix + "h." + l + ".attn.masked_bias",
              new Entry("F32", new int[] {}, f32(-1e4)));
        }
      }
      writeSafetensors(dir.resolve("model.safetensors"), entries);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // A minimal safetensors writer

  record Entry(String dtype, int[] shape, byte[] bytes) {}

  static void writeSafetensors(Path file, Map<String, Entry> entries) throws IOException {
    ObjectNode header = JSON.createObjectNode();
    header.putObject("__metadata__").put("format", "pt");
    ByteArrayOutputStream data = new ByteArrayOutputStream();
    for (Map.Entry<String, Entry> e : entries.entrySet()) {
      ObjectNode t = header.putObject(e.getKey());
      t.put("dtype", e.getValue().dtype());
      ArrayNode shape = t.putArray("shape");
      for (int s : e.getValue().shape()) {
        shape.add(s);
      }
      ArrayNode offsets = t.putArray("data_offsets");
      offsets.add(data.size());
      data.write(e.getValue().bytes());
      offsets.add(data.size());
    }
    byte[] json = JSON.writeValueAsBytes(header);
    int padded = (json.length + 7) / 8 * 8; // the format pads the header with spaces to 8 bytes
    ByteBuffer out = ByteBuffer.allocate(8 + padded + data.size()).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(padded);
    out.put(json);
    for (int i = json.length; i < padded; i++) {
      out.put((byte) ' ');
    }
    out.put(data.toByteArray());
    Files.write(file, out.array());
  }

  static byte[] f32(double... values) {
    ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      b.putFloat((float) v);
    }
    return b.array();
  }

  static byte[] u16(int... bits) {
    ByteBuffer b = ByteBuffer.allocate(2 * bits.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : bits) {
      b.putShort((short) v);
    }
    return b.array();
  }

  /** Exact values only: the test data are multiples of 1/8, which BF16 holds exactly. */
  static byte[] bf16(double[] values) {
    int[] bits = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      int f = Float.floatToIntBits((float) values[i]);
      if ((f & 0xffff) != 0 || (float) values[i] != values[i]) {
        throw new IllegalArgumentException(values[i] + " is not exact in BF16");
      }
      bits[i] = f >>> 16;
    }
    return u16(bits);
  }

  /** Exact normal values (and zero) only, as in {@link #bf16}. */
  static byte[] f16(double[] values) {
    int[] bits = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      int f = Float.floatToIntBits((float) values[i]);
      int sign = (f >>> 31) << 15;
      int exponent = ((f >>> 23) & 0xff) - 127 + 15;
      int mantissa = f & 0x7fffff;
      if (values[i] == 0) {
        bits[i] = sign;
      } else if (exponent <= 0 || exponent >= 31 || (mantissa & 0x1fff) != 0
          || (float) values[i] != values[i]) {
        throw new IllegalArgumentException(values[i] + " is not an exact normal F16");
      } else {
        bits[i] = sign | (exponent << 10) | (mantissa >>> 13);
      }
    }
    return u16(bits);
  }

  static double[] flatten(double[][] m) {
    return Arrays.stream(m).flatMapToDouble(Arrays::stream).toArray();
  }
}
