package resgraph.reference;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * An independent float64 implementation of /work/shared/METHOD.md, used only by tests to check the
 * production code (DJL, float32). It was written from the specification without reading the
 * production sources, and uses nothing but {@code double[]} arrays, loops and Jackson for JSON:
 * its value is that it is obviously the method, not that it is fast.
 *
 * <p>Shapes in comments: {@code n} positions, {@code d} = n_embd, {@code S} = d_sae, {@code V} =
 * vocabulary. Weight names follow the checkpoint keys so the code can be held against the files.
 *
 * <p>Weights are immutable after {@link #load}; the only mutable state is a one-entry cache of the
 * last clean pass, replaced atomically, so an instance may be shared between test threads.
 */
public final class ReferenceMethod {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** config.json of a GPT-2 checkpoint. */
  record Config(
      int n_layer,
      int n_embd,
      int n_head,
      int n_positions,
      int vocab_size,
      double layer_norm_epsilon,
      int n_inner) {}

  /** One safetensors entry widened to double; {@code data} is null for a dtype we cannot read. */
  record Tensor(String dtype, int[] shape, double[] data) {}

  record LayerNorm(double[] weight, double[] bias) {}

  /** Hugging Face Conv1D: {@code weight} is [in, out] and {@code y = x·W + b}. */
  record Conv1D(double[][] weight, double[] bias) {}

  record Block(
      LayerNorm ln_1,
      Conv1D attn_c_attn,
      Conv1D attn_c_proj,
      LayerNorm ln_2,
      Conv1D mlp_c_fc,
      Conv1D mlp_c_proj) {}

  /** One SAELens SAE (standard ReLU architecture). */
  record Sae(
      int d_sae,
      double[][] W_enc,
      double[] b_enc,
      double[][] W_dec,
      double[] b_dec,
      boolean apply_b_dec_to_input,
      boolean prepend_bos) {}

  /** The residuals of one clean pass over {@code tokens}: [L+1][n][d]. */
  private record CleanPass(int[] tokens, double[][][] x) {}

  private final Config config;
  private final double[][] wte; // [V, d]
  private final double[][] wpe; // [P, d]
  private final Block[] h; // [L]
  private final LayerNorm ln_f;
  private final Sae[] saes; // [L], null where the layer has no SAE
  private final boolean centered;
  private final boolean prependBos;
  private volatile CleanPass lastCleanPass;

  private ReferenceMethod(
      Config config,
      double[][] wte,
      double[][] wpe,
      Block[] h,
      LayerNorm ln_f,
      Sae[] saes,
      boolean centered,
      boolean prependBos) {
    this.config = config;
    this.wte = wte;
    this.wpe = wpe;
    this.h = h;
    this.ln_f = ln_f;
    this.saes = saes;
    this.centered = centered;
    this.prependBos = prependBos;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading

  /** Loads the model and every SAE folder blocks.{l}.hook_resid_pre that exists under saesDir. */
  public static ReferenceMethod load(Path modelDir, Path saesDir, boolean centered)
      throws IOException {
    Config config = readConfig(modelDir.resolve("config.json"));
    Path file = modelDir.resolve("model.safetensors");
    Map<String, Tensor> raw = readSafetensors(file);
    Map<String, Tensor> w = new HashMap<>();
    for (Map.Entry<String, Tensor> e : raw.entrySet()) {
      String name = e.getKey();
      w.put(name.startsWith("transformer.") ? name.substring("transformer.".length()) : name,
          e.getValue());
    }
    int d = config.n_embd();
    int inner = config.n_inner();
    double[][] wte = matrix(w, "wte.weight", config.vocab_size(), d, file);
    double[][] wpe = matrix(w, "wpe.weight", config.n_positions(), d, file);
    Block[] h = new Block[config.n_layer()];
    for (int l = 0; l < h.length; l++) {
      String p = "h." + l + ".";
      h[l] = new Block(
          layerNorm(w, p + "ln_1", d, file),
          conv1d(w, p + "attn.c_attn", d, 3 * d, file),
          conv1d(w, p + "attn.c_proj", d, d, file),
          layerNorm(w, p + "ln_2", d, file),
          conv1d(w, p + "mlp.c_fc", d, inner, file),
          conv1d(w, p + "mlp.c_proj", inner, d, file));
    }
    LayerNorm ln_f = layerNorm(w, "ln_f", d, file);

    Sae[] saes = new Sae[config.n_layer()];
    TreeSet<Boolean> bos = new TreeSet<>();
    if (saesDir != null) {
      if (!Files.isDirectory(saesDir)) {
        throw new NoSuchFileException(saesDir.toString(), null, "SAE folder does not exist");
      }
      for (int l = 0; l < saes.length; l++) {
        Path dir = saesDir.resolve("blocks." + l + ".hook_resid_pre");
        if (Files.isDirectory(dir)) {
          saes[l] = readSae(dir, d);
          bos.add(saes[l].prepend_bos());
        }
      }
    }
    if (bos.size() > 1) {
      throw new IOException(saesDir + ": the SAEs disagree on prepend_bos in their cfg.json");
    }
    // With no SAE there is nothing to ablate; cfg.json's own default (true) is the natural answer.
    boolean prependBos = bos.isEmpty() || bos.first();
    return new ReferenceMethod(config, wte, wpe, h, ln_f, saes, centered, prependBos);
  }

  static Config readConfig(Path file) throws IOException {
    JsonNode c = JSON.readTree(file.toFile());
    int d = requiredInt(c, "n_embd", file);
    int nHead = requiredInt(c, "n_head", file);
    if (d % nHead != 0) {
      throw new IOException(file + ": n_embd " + d + " is not a multiple of n_head " + nHead);
    }
    JsonNode act = c.get("activation_function");
    if (act != null && !act.isNull() && !act.asText().equals("gelu_new")) {
      throw new IOException(file + ": activation_function " + act.asText() + " is not gelu_new");
    }
    JsonNode inner = c.get("n_inner");
    JsonNode eps = c.get("layer_norm_epsilon");
    return new Config(
        requiredInt(c, "n_layer", file),
        d,
        nHead,
        requiredInt(c, "n_positions", file),
        requiredInt(c, "vocab_size", file),
        eps == null || eps.isNull() ? 1e-5 : eps.asDouble(),
        inner == null || inner.isNull() ? 4 * d : inner.asInt());
  }

  static Sae readSae(Path dir, int nEmbd) throws IOException {
    Path cfgFile = dir.resolve("cfg.json");
    JsonNode cfg = JSON.readTree(cfgFile.toFile());
    int dIn = requiredInt(cfg, "d_in", cfgFile);
    if (dIn != nEmbd) {
      throw new IOException(cfgFile + ": d_in " + dIn + " != the model's n_embd " + nEmbd);
    }
    int dSae = requiredInt(cfg, "d_sae", cfgFile);
    // METHOD.md: refuse what does not fit rather than compute something else.
    JsonNode norm = cfg.get("normalize_activations");
    if (norm != null && !norm.isNull() && !norm.asText().equals("none")) {
      throw new IOException(cfgFile + ": normalize_activations " + norm.asText() + " is not none");
    }
    JsonNode arch = cfg.get("architecture");
    if (arch != null && !arch.isNull() && !arch.asText().equals("standard")) {
      throw new IOException(cfgFile + ": architecture " + arch.asText() + " is not standard");
    }
    Path file = dir.resolve("sae_weights.safetensors");
    Map<String, Tensor> w = readSafetensors(file);
    return new Sae(
        dSae,
        matrix(w, "W_enc", nEmbd, dSae, file),
        vector(w, "b_enc", dSae, file),
        matrix(w, "W_dec", dSae, nEmbd, file),
        vector(w, "b_dec", nEmbd, file),
        booleanOr(cfg, "apply_b_dec_to_input", true),
        booleanOr(cfg, "prepend_bos", true));
  }

  /**
   * A minimal safetensors reader: 8-byte little-endian header length N, N bytes of JSON, then the
   * data section that the offsets are relative to. F32, F16 and BF16 are widened to double; other
   * dtypes (e.g. boolean mask buffers) are kept without data and fail only if something uses them.
   */
  static Map<String, Tensor> readSafetensors(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    if (bytes.length < 8) {
      throw new IOException(file + ": too short for a safetensors header");
    }
    ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    long headerLength = buf.getLong(0);
    if (headerLength < 0 || headerLength > bytes.length - 8L) {
      throw new IOException(file + ": header length " + headerLength + " exceeds the file");
    }
    JsonNode header = JSON.readTree(bytes, 8, (int) headerLength);
    long dataStart = 8 + headerLength;
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> entry : header.properties()) {
      String name = entry.getKey();
      if (name.equals("__metadata__")) {
        continue;
      }
      JsonNode t = entry.getValue();
      String dtype = t.path("dtype").asText();
      JsonNode shapeNode = t.path("shape");
      int[] shape = new int[shapeNode.size()];
      long numel = 1;
      for (int i = 0; i < shape.length; i++) {
        shape[i] = shapeNode.get(i).asInt();
        numel *= shape[i];
      }
      long begin = t.path("data_offsets").path(0).asLong(-1);
      long end = t.path("data_offsets").path(1).asLong(-1);
      if (begin < 0 || end < begin || dataStart + end > bytes.length) {
        throw new IOException(file + ": tensor " + name + " has bad data_offsets");
      }
      int width = switch (dtype) {
        case "F32" -> 4;
        case "F16", "BF16" -> 2;
        default -> 0;
      };
      if (width == 0) {
        tensors.put(name, new Tensor(dtype, shape, null));
        continue;
      }
      if (end - begin != numel * width) {
        throw new IOException(file + ": tensor " + name + " has " + (end - begin)
            + " bytes, expected " + numel * width + " for " + dtype + Arrays.toString(shape));
      }
      double[] data = new double[(int) numel];
      for (int k = 0; k < data.length; k++) {
        int at = (int) (dataStart + begin + (long) k * width);
        data[k] = switch (dtype) {
          case "F32" -> buf.getFloat(at);
          case "F16" -> halfToDouble(buf.getShort(at) & 0xffff);
          default -> Float.intBitsToFloat((buf.getShort(at) & 0xffff) << 16); // BF16
        };
      }
      tensors.put(name, new Tensor(dtype, shape, data));
    }
    return tensors;
  }

  /** IEEE 754 binary16 to double (Float.float16ToFloat only arrived in Java 20). */
  static double halfToDouble(int bits) {
    int sign = (bits >>> 15) & 0x1;
    int exponent = (bits >>> 10) & 0x1f;
    int mantissa = bits & 0x3ff;
    double magnitude;
    if (exponent == 0) {
      magnitude = Math.scalb((double) mantissa, -24); // subnormal: no implicit leading 1
    } else if (exponent == 0x1f) {
      magnitude = mantissa == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
    } else {
      magnitude = Math.scalb(1.0 + mantissa / 1024.0, exponent - 15);
    }
    return sign == 1 ? -magnitude : magnitude;
  }

  private static Tensor tensor(Map<String, Tensor> w, String name, int[] shape, Path file)
      throws IOException {
    Tensor t = w.get(name);
    if (t == null) {
      throw new IOException(file + ": missing tensor " + name);
    }
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IOException(file + ": tensor " + name + " has shape " + Arrays.toString(t.shape())
          + ", expected " + Arrays.toString(shape));
    }
    if (t.data() == null) {
      throw new IOException(file + ": tensor " + name + " has unsupported dtype " + t.dtype());
    }
    return t;
  }

  private static double[] vector(Map<String, Tensor> w, String name, int n, Path file)
      throws IOException {
    return tensor(w, name, new int[] {n}, file).data().clone();
  }

  private static double[][] matrix(Map<String, Tensor> w, String name, int rows, int cols,
      Path file) throws IOException {
    double[] flat = tensor(w, name, new int[] {rows, cols}, file).data();
    double[][] m = new double[rows][];
    for (int r = 0; r < rows; r++) {
      m[r] = Arrays.copyOfRange(flat, r * cols, (r + 1) * cols); // row-major
    }
    return m;
  }

  private static LayerNorm layerNorm(Map<String, Tensor> w, String prefix, int d, Path file)
      throws IOException {
    return new LayerNorm(vector(w, prefix + ".weight", d, file), vector(w, prefix + ".bias", d, file));
  }

  private static Conv1D conv1d(Map<String, Tensor> w, String prefix, int in, int out, Path file)
      throws IOException {
    return new Conv1D(matrix(w, prefix + ".weight", in, out, file),
        vector(w, prefix + ".bias", out, file));
  }

  private static int requiredInt(JsonNode node, String field, Path file) throws IOException {
    JsonNode v = node.get(field);
    if (v == null || !v.canConvertToInt()) {
      throw new IOException(file + ": missing or non-integer field " + field);
    }
    return v.asInt();
  }

  private static boolean booleanOr(JsonNode node, String field, boolean fallback) {
    JsonNode v = node.get(field);
    return v == null || v.isNull() ? fallback : v.asBoolean();
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  public int nLayer() {
    return config.n_layer();
  }

  public boolean hasSae(int layer) {
    return layer >= 0 && layer < saes.length && saes[layer] != null;
  }

  public int dSae(int layer) {
    return sae(layer).d_sae();
  }

  /** From the SAEs' cfg.json (all agree); true when no SAE was loaded, cfg.json's default. */
  public boolean prependBos() {
    return prependBos;
  }

  /** x_l for l = 0..nLayer (x_0 = wte[t]+wpe[p]; x_L is the final residual before ln_f): [L+1][n][d]. */
  public double[][][] residuals(int[] tokens) {
    checkTokens(tokens);
    double[][][] x = cleanPass(tokens);
    double[][][] copy = new double[x.length][][];
    for (int l = 0; l < x.length; l++) {
      copy[l] = copyRows(x[l], x[l].length);
    }
    return copy;
  }

  /** f_l = encode_l(x_l) at every position: [n][S]. Step 1. */
  public double[][] activations(int layer, int[] tokens) {
    sae(layer);
    checkTokens(tokens);
    return encodeAll(layer, cleanPass(tokens)[layer]);
  }

  /**
   * Step 2: sorted latents of {@code layer} with f > 0 at some ablatable position p <= target
   * (position 0 is not ablatable when prependBos()).
   */
  public int[] candidates(int layer, int[] tokens, int target) {
    sae(layer);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    double[][] f = activations(layer, tokens); // [n, S]
    List<Integer> found = new ArrayList<>();
    for (int i = 0; i < dSae(layer); i++) {
      for (int p = firstAblatable(); p <= target; p++) {
        if (f[p][i] > 0) {
          found.add(i);
          break;
        }
      }
    }
    return found.stream().mapToInt(Integer::intValue).toArray();
  }

  /**
   * Steps 3-5: e[j] = f'_{l+1}[T,j] - f_{l+1}[T,j] for every j in 0..S_{l+1}-1 (dense), after
   * ablating {@code latent} at {@code layer} at every ablatable position.
   */
  public double[] ablate(int layer, int latent, int[] tokens, int target) {
    sae(layer);
    if (!hasSae(layer + 1)) {
      throw new IllegalArgumentException("layer " + layer + " has no SAE at layer " + (layer + 1)
          + " to measure effects on; SAEs are loaded at layers " + saeLayers());
    }
    checkLatent(layer, latent);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    // Step 1. The model is causal, so positions after T cannot reach T: keep 0..T only.
    double[][] x = copyRows(cleanPass(tokens)[layer], target + 1); // [T+1, d]
    double[][] xAblated = ablateResidual(layer, latent, x); // step 3
    // Step 4 on both residuals through the same code, so a latent that never fires gives exactly 0.
    double[] fClean = encode(layer + 1, block(layer, x)[target]); // [S_{l+1}]
    double[] fAblated = encode(layer + 1, block(layer, xAblated)[target]); // [S_{l+1}]
    double[] e = new double[fClean.length];
    for (int j = 0; j < e.length; j++) {
      e[j] = fAblated[j] - fClean[j]; // step 5
    }
    return e;
  }

  /** Step 8: log_softmax(clean logits)[T] - log_softmax(ablated logits)[T], dense over the vocabulary. */
  public double[] logitEffects(int layer, int latent, int[] tokens, int target) {
    sae(layer);
    checkLatent(layer, latent);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    double[][] x = copyRows(cleanPass(tokens)[layer], target + 1); // [T+1, d], causal as in ablate
    double[][] xAblated = ablateResidual(layer, latent, x); // step 3
    double[] clean = logProbsFrom(layer, x, target); // [V]
    double[] ablated = logProbsFrom(layer, xAblated, target); // [V]
    double[] effect = new double[clean.length];
    for (int v = 0; v < effect.length; v++) {
      effect[v] = clean[v] - ablated[v];
    }
    return effect;
  }

  /** The clean next-token log-probabilities at position {@code target}: [V]. */
  public double[] logProbs(int[] tokens, int target) {
    checkTokens(tokens);
    if (target < 0 || target >= tokens.length) {
      throw new IllegalArgumentException(
          "target " + target + " is outside the prompt's positions 0.." + (tokens.length - 1));
    }
    int last = config.n_layer();
    return logProbsFrom(last, copyRows(cleanPass(tokens)[last], target + 1), target);
  }

  // ---------------------------------------------------------------------------------------------
  // The method

  /** Step 1: x_0 = wte[t] + wpe[p], then x_{l+1} = block_l(x_l). [n] -> [L+1, n, d]. */
  private double[][][] cleanPass(int[] tokens) {
    CleanPass last = lastCleanPass;
    if (last != null && Arrays.equals(last.tokens(), tokens)) {
      return last.x();
    }
    double[][][] x = new double[config.n_layer() + 1][][];
    x[0] = embed(tokens);
    for (int l = 0; l < config.n_layer(); l++) {
      x[l + 1] = block(l, x[l]);
    }
    lastCleanPass = new CleanPass(tokens.clone(), x);
    return x;
  }

  /** x_0[p] = wte[t[p]] + wpe[p]: [n] -> [n, d]. */
  private double[][] embed(int[] tokens) {
    int d = config.n_embd();
    double[][] x = new double[tokens.length][d];
    for (int p = 0; p < tokens.length; p++) {
      for (int k = 0; k < d; k++) {
        x[p][k] = wte[tokens[p]][k] + wpe[p][k];
      }
    }
    return x;
  }

  /** One GPT-2 block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)). [n, d] -> [n, d]. */
  private double[][] block(int l, double[][] x) {
    Block b = h[l];
    double eps = config.layer_norm_epsilon();
    double[][] afterAttn = add(x, attn(b, layerNorm(x, b.ln_1(), eps)));
    return add(afterAttn, mlp(b, layerNorm(afterAttn, b.ln_2(), eps)));
  }

  /** Causal multi-head self-attention; head hd owns columns hd*hs..(hd+1)*hs-1 of q, k and v. */
  private double[][] attn(Block b, double[][] x) {
    int n = x.length;
    int d = config.n_embd();
    int hs = d / config.n_head();
    double scale = 1.0 / Math.sqrt(hs);
    double[][] qkv = conv1d(x, b.attn_c_attn()); // [n, d] -> [n, 3d] = q | k | v
    double[][] heads = new double[n][d]; // [n, d], the heads side by side
    for (int hd = 0; hd < config.n_head(); hd++) {
      int q0 = hd * hs;
      int k0 = d + hd * hs;
      int v0 = 2 * d + hd * hs;
      for (int i = 0; i < n; i++) {
        double[] scores = new double[i + 1]; // query i sees keys 0..i only: the causal mask
        for (int j = 0; j <= i; j++) {
          double dot = 0;
          for (int c = 0; c < hs; c++) {
            dot += qkv[i][q0 + c] * qkv[j][k0 + c];
          }
          scores[j] = dot * scale;
        }
        double[] weights = softmax(scores);
        for (int j = 0; j <= i; j++) {
          for (int c = 0; c < hs; c++) {
            heads[i][q0 + c] += weights[j] * qkv[j][v0 + c];
          }
        }
      }
    }
    return conv1d(heads, b.attn_c_proj()); // [n, d] -> [n, d]
  }

  /** c_proj(gelu_new(c_fc(x))): [n, d] -> [n, n_inner] -> [n, d]. */
  private double[][] mlp(Block b, double[][] x) {
    double[][] hidden = conv1d(x, b.mlp_c_fc()); // [n, d] -> [n, n_inner]
    for (double[] row : hidden) {
      for (int k = 0; k < row.length; k++) {
        row[k] = geluNew(row[k]);
      }
    }
    return conv1d(hidden, b.mlp_c_proj()); // [n, n_inner] -> [n, d]
  }

  /**
   * METHOD.md's encode: ReLU((c(x) - b_dec·[apply_b_dec_to_input]) · W_enc + b_enc). [d] -> [S].
   */
  private double[] encode(int layer, double[] x) {
    Sae sae = saes[layer];
    int d = x.length;
    double mean = 0;
    if (centered) {
      // TransformerLens's centred residual is the Hugging Face one minus its mean over d_model.
      for (double v : x) {
        mean += v;
      }
      mean /= d;
    }
    double[] input = new double[d];
    for (int k = 0; k < d; k++) {
      input[k] = x[k] - mean - (sae.apply_b_dec_to_input() ? sae.b_dec()[k] : 0.0);
    }
    double[] f = sae.b_enc().clone(); // [S]
    for (int k = 0; k < d; k++) {
      for (int i = 0; i < f.length; i++) {
        f[i] += input[k] * sae.W_enc()[k][i]; // [d] · [d, S] -> [S]
      }
    }
    for (int i = 0; i < f.length; i++) {
      f[i] = Math.max(0.0, f[i]);
    }
    return f;
  }

  private double[][] encodeAll(int layer, double[][] x) {
    double[][] f = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      f[p] = encode(layer, x[p]);
    }
    return f;
  }

  /**
   * Step 3: x'_l[p] = x_l[p] - f_l[p,i]·W_dec_l[i] at every ablatable position, which zeroes latent
   * i while keeping the SAE's reconstruction error. [n, d] -> [n, d].
   */
  private double[][] ablateResidual(int layer, int latent, double[][] x) {
    double[][] f = encodeAll(layer, x); // [n, S]
    double[] direction = saes[layer].W_dec()[latent]; // [d]
    double[][] ablated = copyRows(x, x.length);
    for (int p = firstAblatable(); p < x.length; p++) {
      for (int k = 0; k < direction.length; k++) {
        ablated[p][k] = x[p][k] - f[p][latent] * direction[k];
      }
    }
    return ablated;
  }

  /** Blocks from..L-1, ln_f and the tied unembedding at the target, as log-probabilities: [V]. */
  private double[] logProbsFrom(int from, double[][] x, int target) {
    for (int l = from; l < config.n_layer(); l++) {
      x = block(l, x);
    }
    double[] hidden = layerNorm(x[target], ln_f.weight(), ln_f.bias(), config.layer_norm_epsilon());
    double[] logits = new double[wte.length]; // [d] · wte^T [d, V] -> [V]
    for (int v = 0; v < logits.length; v++) {
      double dot = 0;
      for (int k = 0; k < hidden.length; k++) {
        dot += hidden[k] * wte[v][k];
      }
      logits[v] = dot;
    }
    return logSoftmax(logits);
  }

  // ---------------------------------------------------------------------------------------------
  // Small pure functions, package-private so the test can check them one by one

  /** LayerNorm over the last axis: biased variance, eps inside the square root. [d] -> [d]. */
  static double[] layerNorm(double[] x, double[] weight, double[] bias, double eps) {
    int d = x.length;
    double mean = 0;
    for (double v : x) {
      mean += v;
    }
    mean /= d;
    double variance = 0;
    for (double v : x) {
      variance += (v - mean) * (v - mean);
    }
    variance /= d;
    double inverseStd = 1.0 / Math.sqrt(variance + eps);
    double[] y = new double[d];
    for (int k = 0; k < d; k++) {
      y[k] = (x[k] - mean) * inverseStd * weight[k] + bias[k];
    }
    return y;
  }

  static double[][] layerNorm(double[][] x, LayerNorm ln, double eps) {
    double[][] y = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      y[p] = layerNorm(x[p], ln.weight(), ln.bias(), eps);
    }
    return y;
  }

  /** GPT-2's gelu_new, the tanh approximation. */
  static double geluNew(double x) {
    return 0.5 * x * (1.0 + Math.tanh(Math.sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x)));
  }

  /** y = x·W + b: [n, in] -> [n, out]. */
  static double[][] conv1d(double[][] x, Conv1D c) {
    int out = c.bias().length;
    double[][] y = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      double[] row = c.bias().clone();
      for (int k = 0; k < x[p].length; k++) {
        double xk = x[p][k];
        double[] wk = c.weight()[k];
        for (int j = 0; j < out; j++) {
          row[j] += xk * wk[j];
        }
      }
      y[p] = row;
    }
    return y;
  }

  static double[] softmax(double[] z) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : z) {
      max = Math.max(max, v);
    }
    double sum = 0;
    double[] e = new double[z.length];
    for (int i = 0; i < z.length; i++) {
      e[i] = Math.exp(z[i] - max); // shifted so the largest term is exp(0): no overflow
      sum += e[i];
    }
    for (int i = 0; i < z.length; i++) {
      e[i] /= sum;
    }
    return e;
  }

  static double[] logSoftmax(double[] z) {
    double max = Double.NEGATIVE_INFINITY;
    for (double v : z) {
      max = Math.max(max, v);
    }
    double sum = 0;
    for (double v : z) {
      sum += Math.exp(v - max);
    }
    double logSum = Math.log(sum);
    double[] out = new double[z.length];
    for (int i = 0; i < z.length; i++) {
      out[i] = (z[i] - max) - logSum; // shift first: no digits lost to large logits
    }
    return out;
  }

  private static double[][] add(double[][] a, double[][] b) {
    double[][] c = new double[a.length][a[0].length];
    for (int p = 0; p < a.length; p++) {
      for (int k = 0; k < a[p].length; k++) {
        c[p][k] = a[p][k] + b[p][k];
      }
    }
    return c;
  }

  private static double[][] copyRows(double[][] x, int rows) {
    double[][] copy = new double[rows][];
    for (int p = 0; p < rows; p++) {
      copy[p] = x[p].clone();
    }
    return copy;
  }

  // ---------------------------------------------------------------------------------------------
  // Argument checks

  /** With a BOS token, position 0 is never ablated and nothing is measured there. */
  private int firstAblatable() {
    return prependBos ? 1 : 0;
  }

  private Sae sae(int layer) {
    if (!hasSae(layer)) {
      throw new IllegalArgumentException(
          "no SAE at layer " + layer + "; SAEs are loaded at layers " + saeLayers());
    }
    return saes[layer];
  }

  private List<Integer> saeLayers() {
    List<Integer> layers = new ArrayList<>();
    for (int l = 0; l < saes.length; l++) {
      if (saes[l] != null) {
        layers.add(l);
      }
    }
    return layers;
  }

  private void checkLatent(int layer, int latent) {
    if (latent < 0 || latent >= dSae(layer)) {
      throw new IllegalArgumentException("latent " + latent + " is outside 0.."
          + (dSae(layer) - 1) + " of the SAE at layer " + layer);
    }
  }

  private void checkTokens(int[] tokens) {
    if (tokens == null || tokens.length == 0) {
      throw new IllegalArgumentException("the prompt has no tokens");
    }
    if (tokens.length > config.n_positions()) {
      throw new IllegalArgumentException("the prompt has " + tokens.length
          + " tokens, more than n_positions " + config.n_positions());
    }
    for (int p = 0; p < tokens.length; p++) {
      if (tokens[p] < 0 || tokens[p] >= config.vocab_size()) {
        throw new IllegalArgumentException("token " + tokens[p] + " at position " + p
            + " is outside the vocabulary 0.." + (config.vocab_size() - 1));
      }
    }
  }

  private void checkMeasuredTarget(int[] tokens, int target) {
    if (target < firstAblatable() || target >= tokens.length) {
      throw new IllegalArgumentException("target " + target + " is outside the measurable positions "
          + firstAblatable() + ".." + (tokens.length - 1)
          + (prependBos ? " (position 0 is the BOS position: nothing is measured there)" : ""));
    }
  }
}
