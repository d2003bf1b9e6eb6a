package resgraph.model;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.stream.IntStream;
import resgraph.model.SaeConfig.Architecture;
import resgraph.model.SaeConfig.Normalization;
import resgraph.model.SafeTensors.DType;
import resgraph.model.SafeTensors.Tensor;

/**
 * Random GPT-2s with SAEs, in exactly the Hugging Face and SAELens formats, deterministic from a
 * seed. They stand in for the real weights where those cannot be downloaded: tests, the demo and
 * benchmarks. Nothing they compute means anything.
 *
 * <p>The SAEs are built to behave like trained ones where it matters for cost and for the shape of
 * a graph: encoder biases are set from the model's own residual stream so that about {@code l0}
 * latents fire per position, and a share of each layer's decoder directions continue a direction
 * of the layer before, as features persist through a real residual stream.
 */
public final class SyntheticModel {

  /**
   * A model and SAE shape.
   *
   * @param l0 the mean number of latents active per position (a TopK SAE's k)
   * @param centered whether the SAEs read the mean-free residual (their cfg.json says so)
   * @param kinds the sites of every layer that get an SAE
   * @param realistic weights whose residual stream looks like GPT-2 small's: a BOS position with a
   *     norm in the thousands, a few outlier dimensions, weight and LayerNorm scales of the trained
   *     model's order
   */
  public record Spec(
      int n_layer, int n_embd, int n_head, int n_positions, int vocab_size, int d_sae, double l0,
      boolean centered, boolean applyBDecToInput, boolean prependBos, long seed, Set<Site.Kind> kinds,
      Architecture architecture, Normalization normalization, boolean realistic) {

    public Spec {
      new Gpt2Config(n_layer, n_embd, n_head, n_positions, vocab_size, 4 * n_embd, 1e-5); // validates
      if (vocab_size < Gpt2Tokenizer.VOCAB) {
        throw new IllegalArgumentException("vocab_size " + vocab_size + " is below GPT-2's " + Gpt2Tokenizer.VOCAB
            + ": the tokenizer would emit ids the model cannot embed");
      }
      if (d_sae < 1 || !(l0 > 0) || l0 >= d_sae) {
        throw new IllegalArgumentException("need d_sae >= 1 and 0 < l0 < d_sae, got d_sae " + d_sae + ", l0 " + l0);
      }
      if (kinds.isEmpty()) throw new IllegalArgumentException("the SAEs need at least one kind of site");
      kinds = Set.copyOf(kinds);
    }

    public Gpt2Config config() {
      return new Gpt2Config(n_layer, n_embd, n_head, n_positions, vocab_size, 4 * n_embd, 1e-5);
    }

    /** The sites that get an SAE, in forward order. */
    public List<Site> sites() {
      List<Site> out = new ArrayList<>();
      for (int l = 0; l < n_layer; l++) for (Site.Kind k : Site.Kind.values()) if (kinds.contains(k)) out.add(new Site(l, k));
      return out;
    }

    /** The bundled demo: small enough to run a whole graph in seconds on a laptop. */
    public static Spec demo() {
      return builder().layers(6).dModel(96).heads(4).positions(256).dSae(1024).l0(16).build();
    }

    /** The smallest useful shape, for smoke runs of the benchmark. */
    public static Spec tiny() {
      return builder().layers(3).dModel(32).heads(2).positions(64).dSae(128).l0(8).build();
    }

    /** A named preset: demo, tiny or gpt2-small. */
    public static Spec named(String name) {
      return switch (name) {
        case "demo" -> demo();
        case "tiny" -> tiny();
        case "gpt2-small" -> gpt2Small();
        default -> throw new IllegalArgumentException("no shape named " + name + ": use demo, tiny or gpt2-small");
      };
    }

    /** GPT-2 small's shape with SAEs the width of Joseph Bloom's (24576 latents, L0 about 45). */
    public static Spec gpt2Small() {
      return builder().layers(12).dModel(768).heads(12).positions(1024).dSae(24576).l0(45).centered(true).build();
    }

    public static Builder builder() {
      return new Builder();
    }

    /** A builder holding this spec's values, to change a few of them. */
    public Builder toBuilder() {
      return new Builder().layers(n_layer).dModel(n_embd).heads(n_head).positions(n_positions).vocab(vocab_size)
          .dSae(d_sae).l0(l0).centered(centered).applyBDecToInput(applyBDecToInput).prependBos(prependBos).seed(seed)
          .kinds(kinds).architecture(architecture).normalization(normalization).realistic(realistic);
    }

    /**
     * Named fields for a spec; unset ones take these defaults: GPT-2's vocabulary, standard SAEs at
     * resid_pre with no normalisation that subtract b_dec from their input and prepend BOS,
     * uncentred, small random weights, seed 1.
     */
    public static final class Builder {
      private int layers = 2, dModel = 32, heads = 2, positions = 64, vocab = Gpt2Tokenizer.VOCAB, dSae = 128;
      private double l0 = 8;
      private boolean centered, applyBDecToInput = true, prependBos = true, realistic;
      private long seed = 1;
      private Set<Site.Kind> kinds = Set.of(Site.Kind.PRE);
      private Architecture architecture = Architecture.STANDARD;
      private Normalization normalization = Normalization.NONE;

      public Builder layers(int v) { layers = v; return this; }

      public Builder dModel(int v) { dModel = v; return this; }

      public Builder heads(int v) { heads = v; return this; }

      public Builder positions(int v) { positions = v; return this; }

      public Builder vocab(int v) { vocab = v; return this; }

      public Builder dSae(int v) { dSae = v; return this; }

      /** The mean number of latents active per position (a TopK SAE's k). */
      public Builder l0(double v) { l0 = v; return this; }

      public Builder centered(boolean v) { centered = v; return this; }

      public Builder applyBDecToInput(boolean v) { applyBDecToInput = v; return this; }

      public Builder prependBos(boolean v) { prependBos = v; return this; }

      public Builder seed(long v) { seed = v; return this; }

      /** The sites of every layer that get an SAE: resid_pre, resid_mid, resid_post. */
      public Builder kinds(Set<Site.Kind> v) { kinds = v; return this; }

      public Builder architecture(Architecture v) { architecture = v; return this; }

      public Builder normalization(Normalization v) { normalization = v; return this; }

      /** GPT-2-small-like magnitudes: a BOS norm in the thousands, outlier dimensions. */
      public Builder realistic(boolean v) { realistic = v; return this; }

      public Spec build() {
        return new Spec(layers, dModel, heads, positions, vocab, dSae, l0, centered, applyBDecToInput, prependBos, seed,
            kinds, architecture, normalization, realistic);
      }
    }
  }

  /** How the files are written: the tensor name prefix and the dtype, as real checkpoints vary. */
  public record Format(boolean transformerPrefix, DType dtype) {
    public static final Format PLAIN = new Format(false, DType.F32);
  }

  /** Share of decoder directions that continue a direction of the previous layer. */
  private static final double PERSISTENCE = 0.3;
  /**
   * Calibration prompts used to set the encoder biases: several short ones, since the residual's
   * spread depends on how many positions attention has to average over.
   */
  private static final int CALIBRATION_PROMPTS = 6, CALIBRATION_TOKENS = 24;

  private static final ObjectMapper JSON = new ObjectMapper();

  private SyntheticModel() {}

  /** Writes {@code dir/model} (config.json, model.safetensors) and {@code dir/saes/blocks.{l}.hook_resid_{kind}}. */
  public static void write(Spec spec, Path dir, Format format) throws IOException {
    Path modelDir = dir.resolve("model");
    Files.createDirectories(modelDir);
    Files.writeString(modelDir.resolve("config.json"), configJson(spec.config()));
    try (NDManager manager = NDManager.newBaseManager(Device.cpu())) {
      generate(spec, manager, new Sink() {
        @Override
        public void model(Map<String, Tensor> tensors, Gpt2 unused) throws IOException {
          Map<String, Tensor> named = new LinkedHashMap<>();
          tensors.forEach((k, t) -> named.put((format.transformerPrefix() ? "transformer." : "") + k,
              new Tensor(t.shape(), t.data(), format.dtype())));
          SafeTensors.write(modelDir.resolve("model.safetensors"), named, Map.of("format", "pt"));
        }

        @Override
        public void sae(ObjectNode cfg, Site site, Map<String, Tensor> tensors) throws IOException {
          Path folder = dir.resolve("saes").resolve(site.hookName());
          Files.createDirectories(folder);
          Files.writeString(folder.resolve("cfg.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(cfg));
          Map<String, Tensor> typed = new LinkedHashMap<>();
          tensors.forEach((k, t) -> typed.put(k, new Tensor(t.shape(), t.data(), format.dtype())));
          SafeTensors.write(folder.resolve("sae_weights.safetensors"), typed, Map.of());
        }
      });
    }
  }

  /** The same model and SAEs as {@link #write} makes, straight into memory (no files). */
  public static SaeModel build(Spec spec, Device device) {
    NDManager manager = NDManager.newBaseManager(device);
    Gpt2[] gpt2 = new Gpt2[1];
    Map<Site, Sae> saes = new TreeMap<>();
    try {
      generate(spec, manager, new Sink() {
        @Override
        public void model(Map<String, Tensor> tensors, Gpt2 model) {
          gpt2[0] = model;
        }

        @Override
        public void sae(ObjectNode json, Site site, Map<String, Tensor> tensors) {
          SaeConfig cfg = SaeConfig.of(json, Path.of("synthetic", site.hookName(), "cfg.json"));
          saes.put(site, Sae.of(cfg, SaeModel.centering(cfg, null, null), Tensors.of(tensors, "synthetic " + site), manager));
        }
      });
      return new SaeModel(gpt2[0], saes, manager);
    } catch (IOException e) {
      manager.close();
      throw new UncheckedIOException(e);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  private interface Sink {
    void model(Map<String, Tensor> tensors, Gpt2 gpt2) throws IOException;

    void sae(ObjectNode cfg, Site site, Map<String, Tensor> tensors) throws IOException;
  }

  private static void generate(Spec spec, NDManager manager, Sink sink) throws IOException {
    Gpt2Config c = spec.config();
    Map<String, Tensor> weights = spec.realistic() ? realisticWeights(spec, manager) : gpt2Weights(spec);
    Gpt2 gpt2 = Gpt2.of(c, Tensors.of(weights, "synthetic model"), manager);
    sink.model(weights, gpt2);
    float[][] streams = calibrationStreams(spec, gpt2);
    float[] previous = null;
    for (Site site : spec.sites()) {
      ObjectNode cfg = saeConfigJson(site, spec);
      float[] directions = directions(spec, site, previous);
      Map<String, Tensor> tensors;
      try (NDScope scope = new NDScope()) {
        float[] x = streams[site.stream()];
        tensors = sae(spec, site, directions, manager.create(x, new Shape(x.length / c.n_embd(), c.n_embd())), manager);
      }
      sink.sae(cfg, site, tensors);
      previous = directions;
    }
  }

  /** Every residual stream at the calibration positions, BOS left out: it is never ablated, so it does not set the scale. */
  private static float[][] calibrationStreams(Spec spec, Gpt2 gpt2) {
    int d = spec.n_embd(), last = 2 * spec.n_layer();
    float[][] streams = new float[last + 1][];
    try (NDScope scope = new NDScope()) {
      NDList prompts = new NDList();
      for (int[] tokens : calibrationTokens(spec)) prompts.add(gpt2.embed(tokens));
      gpt2.run(NDArrays.concat(prompts, 0), 0, last, (r, x) -> { // [prompts, n, d]
        streams[r] = x.get(":, 1:").reshape(-1, d).toFloatArray();
        return x;
      });
    }
    return streams;
  }

  /** GPT-2's tensors with scales chosen so attention is neither uniform nor one-hot, and every block matters. */
  private static Map<String, Tensor> gpt2Weights(Spec s) {
    int d = s.n_embd(), inner = 4 * d;
    Map<String, Tensor> w = new LinkedHashMap<>();
    w.put("wte.weight", gaussian(s, "wte.weight", 0, 1 / Math.sqrt(d), s.vocab_size(), d));
    w.put("wpe.weight", gaussian(s, "wpe.weight", 0, 0.5 / Math.sqrt(d), s.n_positions(), d));
    for (int l = 0; l < s.n_layer(); l++) {
      String p = "h." + l + ".";
      layerNorm(w, s, p + "ln_1", d, 1, 0.1);
      linear(w, s, p + "attn.c_attn", d, 3 * d, Math.sqrt(1.5 / d));
      linear(w, s, p + "attn.c_proj", d, d, 0.4 / d);
      layerNorm(w, s, p + "ln_2", d, 1, 0.1);
      linear(w, s, p + "mlp.c_fc", d, inner, 1 / Math.sqrt(d));
      linear(w, s, p + "mlp.c_proj", inner, d, 0.4 / d);
    }
    layerNorm(w, s, "ln_f", d, 1, 0.1);
    return w;
  }

  /** The dimensions that carry GPT-2-like outliers in a realistic model: three, fixed by the seed. */
  private static int[] outlierDimensions(Spec s) {
    SplittableRandom r = random(s, "outliers", 0);
    return r.ints(0, s.n_embd()).distinct().limit(3).toArray();
  }

  /**
   * Weights whose residual stream has GPT-2 small's magnitudes (in round numbers): token embeddings
   * of norm about 3, small position embeddings except position 0, LayerNorm gains well below 1,
   * output biases that grow a few outlier dimensions to tens at every position, and one MLP neuron
   * of block 1 that fires at position 0 alone and writes a vector of norm about 3000 there, as
   * GPT-2's first position carries (the position every head can rest its attention on).
   */
  private static Map<String, Tensor> realisticWeights(Spec s, NDManager manager) {
    int d = s.n_embd(), inner = 4 * d;
    Map<String, Tensor> w = new LinkedHashMap<>();
    w.put("wte.weight", gaussian(s, "wte.weight", 0, 0.11, s.vocab_size(), d));
    Tensor wpe = gaussian(s, "wpe.weight", 0, 0.02, s.n_positions(), d);
    float[] first = unit(s, "first position", d); // position 0 stands out along this direction
    for (int k = 0; k < d; k++) wpe.data()[k] += 4 * first[k];
    w.put("wpe.weight", wpe);
    int[] outliers = outlierDimensions(s);
    for (int l = 0; l < s.n_layer(); l++) {
      String p = "h." + l + ".";
      layerNorm(w, s, p + "ln_1", d, 0.35, 0.12);
      linear(w, s, p + "attn.c_attn", d, 3 * d, 0.12);
      linear(w, s, p + "attn.c_proj", d, d, 0.1 / Math.sqrt(Math.max(1, d / 64.0)));
      layerNorm(w, s, p + "ln_2", d, 0.35, 0.12);
      linear(w, s, p + "mlp.c_fc", d, inner, 0.12);
      linear(w, s, p + "mlp.c_proj", inner, d, 0.1 / Math.sqrt(Math.max(1, inner / 64.0)));
      float[] bias = w.get(p + "mlp.c_proj.bias").data();
      for (int i = 0; i < outliers.length; i++) bias[outliers[i]] += i % 2 == 0 ? 3f : -3f;
    }
    layerNorm(w, s, "ln_f", d, 1, 0.2);
    if (s.n_layer() > 1) firstPositionNeuron(w, s, first, outliers, manager);
    return w;
  }

  /**
   * Neuron 0 of block 1's MLP reads the first-position direction through ln_2, scaled and biased
   * from the calibration prompts so that it reaches about 15 at position 0 and stays below -4
   * (where GELU is nearly 0) everywhere else; it writes about 3000 along the outlier dimensions.
   */
  private static void firstPositionNeuron(Map<String, Tensor> w, Spec s, float[] first, int[] outliers, NDManager m) {
    int d = s.n_embd(), inner = 4 * d;
    float[] gain = w.get("h.1.ln_2.weight").data(), read = new float[d];
    for (int k = 0; k < d; k++) read[k] = first[k] / gain[k];
    double atFirst, elsewhere;
    try (NDScope scope = new NDScope()) {
      Gpt2 before = Gpt2.of(s.config(), Tensors.of(w, "synthetic model"), m);
      NDList prompts = new NDList();
      for (int[] tokens : calibrationTokens(s)) prompts.add(before.embed(tokens));
      NDArray x = before.run(NDArrays.concat(prompts, 0), 0, 3, (r, resid) -> resid); // [P, n, d]: block 1's MLP input
      NDArray reads = before.layerNorm(before.h.get(1).ln_2(), x).matMul(m.create(read)); // [P, n]
      atFirst = reads.get(":, 0").min().getFloat();
      elsewhere = reads.get(":, 1:").max().getFloat();
    }
    double scale = 19 / Math.max(atFirst - elsewhere, 1e-3), bias = 15 - scale * atFirst;
    float[] cFc = w.get("h.1.mlp.c_fc.weight").data();
    for (int k = 0; k < d; k++) cFc[k * inner] = (float) (scale * read[k]);
    w.get("h.1.mlp.c_fc.bias").data()[0] = (float) bias;
    float[] cProj = w.get("h.1.mlp.c_proj.weight").data(); // row 0: what the neuron writes
    Arrays.fill(cProj, 0, d, 0f);
    for (int dim : outliers) cProj[dim] = (float) (3000 / Math.sqrt(outliers.length) / 15);
  }

  private static float[] unit(Spec s, String name, int d) {
    float[] u = gaussian(s, name, 0, 1, d).data();
    double norm = 0;
    for (float v : u) norm += v * v;
    for (int k = 0; k < d; k++) u[k] /= (float) Math.sqrt(norm);
    return u;
  }

  private static void layerNorm(Map<String, Tensor> w, Spec s, String key, int d, double gain, double spread) {
    float[] g = gaussian(s, key + ".weight", gain, spread, d).data();
    for (int k = 0; k < d; k++) g[k] = Math.max(g[k], 0.05f); // trained gains are positive
    w.put(key + ".weight", new Tensor(new long[] {d}, g));
    w.put(key + ".bias", gaussian(s, key + ".bias", 0, 0.05, d));
  }

  private static void linear(Map<String, Tensor> w, Spec s, String key, int in, int out, double std) {
    w.put(key + ".weight", gaussian(s, key + ".weight", 0, std, in, out));
    w.put(key + ".bias", gaussian(s, key + ".bias", 0, 0.1 / Math.sqrt(out), out));
  }

  /**
   * Unit decoder directions of a site, [S, d]: a share continue a direction of the site before
   * (plus noise), the rest are fresh.
   */
  private static float[] directions(Spec s, Site site, float[] previous) {
    int d = s.n_embd(), width = s.d_sae();
    String name = site.kind() == Site.Kind.PRE ? Integer.toString(site.layer()) : site.shortName();
    float[] u = gaussian(s, "directions." + name, 0, 1, width, d).data();
    SplittableRandom pick = random(s, "persistence." + name, 0);
    for (int j = 0; j < width; j++) {
      if (previous != null && pick.nextDouble() < PERSISTENCE) {
        int from = pick.nextInt(width);
        for (int k = 0; k < d; k++) u[j * d + k] = previous[from * d + k] + 0.3f * u[j * d + k] / (float) Math.sqrt(d);
      }
      double norm = 0;
      for (int k = 0; k < d; k++) norm += (double) u[j * d + k] * u[j * d + k];
      float inv = (float) (1 / Math.sqrt(norm));
      for (int k = 0; k < d; k++) u[j * d + k] *= inv;
    }
    return u;
  }

  /**
   * SAE tensors for one site from its residual stream {@code x} [P, d] at calibration positions:
   * b_dec is the SAE input's mean, the encoder reads each direction in units of the input's spread,
   * and a shared threshold (with a little per-latent jitter) is set at the quantile that leaves
   * {@code l0} latents active per position: as b_enc, or as JumpReLU's θ above a positive b_enc,
   * or as a gated SAE's gate bias; a TopK SAE keeps l0 latents by itself.
   */
  private static Map<String, Tensor> sae(Spec s, Site site, float[] directions, NDArray x, NDManager m) {
    int d = s.n_embd(), width = s.d_sae();
    String name = site.kind() == Site.Kind.PRE ? Integer.toString(site.layer()) : site.shortName();
    NDArray input = Sae.normalize(x, s.centered(), s.normalization()); // n(c(x)): [P, d]
    NDArray bDec = input.mean(new int[] {0}); // [d]
    NDArray spread = input.sub(bDec); // [P, d]
    double sigma = Math.sqrt(spread.square().mean().getFloat() + 1e-12);
    NDArray u = m.create(directions, new Shape(width, d)); // [S, d]
    NDArray wEnc = u.transpose().div(sigma); // [d, S]
    NDArray wDec = u.mul(0.3 * sigma * Math.sqrt(d)); // [S, d]: a typical latent carries ~10% of the stream
    float[] jitter = gaussian(s, "jitter." + name, 0, 0.25, width).data();
    float[] pre = spread.matMul(wEnc).add(m.create(jitter)).toFloatArray(); // [P, S]
    float[] sorted = pre.clone();
    Arrays.sort(sorted);
    double threshold = sorted[(int) Math.min(sorted.length - 1, Math.round(sorted.length * (1 - s.l0() / width)))];
    // Without b_dec on the input, its projection moves into the bias so the SAE fires the same way.
    float[] shift = s.applyBDecToInput() ? new float[width] : bDec.matMul(wEnc).toFloatArray();
    float[] bias = new float[width];
    double lift = s.architecture() == Architecture.JUMPRELU ? 1 : 0; // pre between 0 and θ is common: the jump matters
    for (int j = 0; j < width; j++) bias[j] = (float) (jitter[j] - (s.architecture() == Architecture.TOPK ? 0 : threshold) - shift[j] + lift);
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("W_enc", new Tensor(new long[] {d, width}, wEnc.toFloatArray()));
    t.put(s.architecture() == Architecture.GATED ? "b_gate" : "b_enc", new Tensor(new long[] {width}, bias));
    if (s.architecture() == Architecture.JUMPRELU) {
      float[] theta = new float[width];
      Arrays.fill(theta, (float) lift);
      t.put("threshold", new Tensor(new long[] {width}, theta));
    }
    if (s.architecture() == Architecture.GATED) {
      t.put("r_mag", gaussian(s, "r_mag." + name, 0, 0.1, width));
      t.put("b_mag", gaussian(s, "b_mag." + name, 0.5, 0.25, width));
    }
    t.put("W_dec", new Tensor(new long[] {width, d}, wDec.toFloatArray()));
    t.put("b_dec", new Tensor(new long[] {d}, bDec.toFloatArray()));
    return t;
  }

  /** Prompts of BOS then random tokens. */
  private static int[][] calibrationTokens(Spec s) {
    int n = Math.min(s.n_positions(), CALIBRATION_TOKENS);
    SplittableRandom r = random(s, "calibration", 0);
    int[][] prompts = new int[CALIBRATION_PROMPTS][n];
    for (int[] t : prompts) {
      t[0] = Gpt2Tokenizer.END_OF_TEXT;
      for (int i = 1; i < n; i++) t[i] = r.nextInt(Gpt2Tokenizer.VOCAB);
    }
    return prompts;
  }

  /**
   * Normal(mean, std) values, filled in parallel chunks that each have their own generator so the
   * values depend only on the seed and the name, never on the thread count.
   */
  private static Tensor gaussian(Spec s, String name, double mean, double std, long... shape) {
    long size = 1;
    for (long dim : shape) size *= dim;
    float[] v = new float[Math.toIntExact(size)];
    int chunk = 1 << 16;
    IntStream.range(0, (v.length + chunk - 1) / chunk).parallel().forEach(c -> {
      SplittableRandom r = random(s, name, c);
      for (int i = c * chunk, end = Math.min(v.length, i + chunk); i < end; i++) v[i] = (float) (mean + std * r.nextGaussian());
    });
    return new Tensor(shape, v);
  }

  private static SplittableRandom random(Spec s, String name, int chunk) {
    return new SplittableRandom(s.seed() * 0x9E3779B97F4A7C15L ^ (long) name.hashCode() << 20 ^ chunk);
  }

  private static String configJson(Gpt2Config c) throws IOException {
    ObjectNode o = JSON.createObjectNode();
    o.put("model_type", "gpt2");
    o.putArray("architectures").add("GPT2LMHeadModel");
    o.put("activation_function", "gelu_new");
    o.put("n_layer", c.n_layer());
    o.put("n_embd", c.n_embd());
    o.put("n_head", c.n_head());
    o.put("n_positions", c.n_positions());
    o.put("n_ctx", c.n_positions());
    o.put("vocab_size", c.vocab_size());
    o.putNull("n_inner");
    o.put("layer_norm_epsilon", c.layer_norm_epsilon());
    o.put("bos_token_id", Gpt2Tokenizer.END_OF_TEXT);
    o.put("eos_token_id", Gpt2Tokenizer.END_OF_TEXT);
    o.put("resgraph_synthetic", "random weights, meaningless; generated by resgraph");
    return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o);
  }

  /** cfg.json as SAELens 5 writes it (the flat layout; TopK as a standard SAE with a topk activation, as SAELens stored it). */
  private static ObjectNode saeConfigJson(Site site, Spec s) {
    ObjectNode o = JSON.createObjectNode();
    Architecture a = s.architecture();
    o.put("architecture", a == Architecture.TOPK ? "standard" : a.word());
    o.put("d_in", s.n_embd());
    o.put("d_sae", s.d_sae());
    o.put("dtype", "float32");
    o.put("model_name", "resgraph-synthetic");
    o.put("hook_name", site.hookName());
    o.put("hook_layer", site.layer());
    o.putNull("hook_head_index");
    o.put("activation_fn_str", a == Architecture.TOPK ? "topk" : "relu");
    if (a == Architecture.TOPK) o.putObject("activation_fn_kwargs").put("k", (int) Math.round(s.l0()));
    o.put("apply_b_dec_to_input", s.applyBDecToInput());
    o.put("finetuning_scaling_factor", false);
    o.put("context_size", Math.min(128, s.n_positions()));
    o.put("prepend_bos", s.prependBos());
    o.put("normalize_activations", s.normalization().word);
    o.putObject("model_from_pretrained_kwargs").put("center_writing_weights", s.centered());
    return o;
  }
}
