package resgraph.reference;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import resgraph.reference.ReferenceMethod.Normalization;
import resgraph.reference.ReferenceMethod.Site;
import resgraph.reference.ReferenceMethod.Tensor;

/**
 * Writes SAEs in the real SAELens on-disk formats (a folder per SAE with cfg.json and
 * sae_weights.safetensors) for an existing GPT-2 model folder of any shape, so that production
 * tests can load what users download: legacy flat configs, OpenAI's v5 TopK configs, SAELens 6
 * configs and the old training-run dump of {@code gpt2-small-res-jb}.
 *
 * <p>The SAEs fire realistically rather than meaningfully: on a few calibration prompts of random
 * tokens (with BOS first when prepend_bos) the residual at each hook is taken from {@link
 * ReferenceMethod}, passed through the SAE's own centring and normalisation, and then: b_dec is the
 * inputs' mean; decoder rows are random unit directions; encoder columns are the same directions
 * divided by the inputs' spread, so pre-activations vary by about 1; and b_enc (or the jumprelu
 * threshold, or b_gate) sits at the quantile that leaves about {@code l0} latents active per
 * position. Everything is deterministic from the seed.
 */
public final class ReferenceSaes {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** GPT-2's {@code <|endoftext|>}; a smaller test vocabulary uses its last token instead. */
  private static final int GPT2_BOS = 50256;
  private static final int CALIBRATION_PROMPTS = 8;
  private static final int CALIBRATION_LENGTH = 16;

  public enum Architecture {
    STANDARD,
    /** jumprelu with a {@code threshold} tensor. */
    JUMPRELU,
    /** jumprelu with a {@code log_threshold} tensor, θ = exp(log_threshold). */
    JUMPRELU_LOG_THRESHOLD,
    /** k is the spec's l0. */
    TOPK,
    GATED
  }

  public enum Layout {
    /** SAELens 5 and older: every setting at the top level of cfg.json. */
    LEGACY,
    /**
     * OpenAI's v5 SAEs as SAELens stores them: LEGACY with architecture standard, activation_fn_str
     * topk and activation_fn_kwargs {k}. Needs architecture TOPK.
     */
    LEGACY_TOPK,
    /** SAELens 6: the SAE's own fields at the top level, everything else under metadata. */
    V6,
    /**
     * The training-run dump of gpt2-small-res-jb (hook_point, hook_point_layer, l1_coefficient,
     * ..., no model_from_pretrained_kwargs, and none of the fields SAELens's loader defaults). Needs a
     * standard SAE with no normalisation, b_dec applied to the input, BOS, and nothing said about
     * centring; it is calibrated on centred residuals, as the real release expects.
     */
    JB_DUMP
  }

  /** What cfg.json says in model_from_pretrained_kwargs.center_writing_weights. */
  public enum Centering {
    CENTERED,
    UNCENTERED,
    /** No model_from_pretrained_kwargs at all. */
    UNSTATED
  }

  public enum ScalingFactor {
    NONE,
    /** An all-ones scaling_factor tensor, which SAELens drops: a no-op. */
    ONES,
    /** Random positive (0.5..1.5) with finetuning_scaling_factor true. Legacy layouts only. */
    RANDOM
  }

  public enum Dtype { F32, BF16 }

  /**
   * What to write. {@code hooks}: the residual sites (empty = resid_pre of every layer).
   * {@code l0}: the mean number of active latents per position (k for TOPK). {@code folderPattern}:
   * each folder's name, with {l} the layer and {kind} pre, mid or post.
   */
  public record Spec(
      List<String> hooks,
      Architecture architecture,
      Normalization normalization,
      Layout layout,
      boolean applyBDecToInput,
      boolean prependBos,
      Centering centering,
      ScalingFactor scalingFactor,
      int dSae,
      int l0,
      Dtype dtype,
      String folderPattern,
      long seed) {

    public Spec {
      hooks = List.copyOf(hooks);
      Objects.requireNonNull(architecture, "architecture");
      Objects.requireNonNull(normalization, "normalization");
      Objects.requireNonNull(layout, "layout");
      Objects.requireNonNull(centering, "centering");
      Objects.requireNonNull(scalingFactor, "scalingFactor");
      Objects.requireNonNull(dtype, "dtype");
      Objects.requireNonNull(folderPattern, "folderPattern");
      for (String hook : hooks) {
        Site.parse(hook);
      }
      if (new HashSet<>(hooks).size() != hooks.size()) {
        throw new IllegalArgumentException("hooks " + hooks + " repeat a hook");
      }
      if (l0 < 1 || l0 >= dSae) {
        throw new IllegalArgumentException("l0 " + l0 + " must be in 1..dSae-1 = " + (dSae - 1));
      }
      boolean twoCuts = architecture == Architecture.JUMPRELU
          || architecture == Architecture.JUMPRELU_LOG_THRESHOLD
          || architecture == Architecture.GATED;
      if (twoCuts && 2 * l0 >= dSae) {
        // Some latents must have pre > 0 yet stay off (below θ, or gate closed): 2·l0 of them.
        throw new IllegalArgumentException(architecture + " needs 2·l0 < dSae, got l0 " + l0
            + " and dSae " + dSae);
      }
      if (layout == Layout.LEGACY_TOPK && architecture != Architecture.TOPK) {
        throw new IllegalArgumentException(
            "layout LEGACY_TOPK is for TOPK SAEs, not " + architecture);
      }
      if (layout == Layout.JB_DUMP && (architecture != Architecture.STANDARD
          || normalization != Normalization.NONE || !applyBDecToInput || !prependBos
          || centering != Centering.UNSTATED || scalingFactor == ScalingFactor.RANDOM)) {
        throw new IllegalArgumentException("layout JB_DUMP is the res-jb dump: a STANDARD SAE with"
            + " normalization NONE, b_dec applied, BOS, centering UNSTATED and no random scaling");
      }
      if (scalingFactor == ScalingFactor.RANDOM
          && layout != Layout.LEGACY && layout != Layout.LEGACY_TOPK) {
        throw new IllegalArgumentException("SAELens 6 has no finetuning_scaling_factor: a RANDOM"
            + " scaling factor needs layout LEGACY or LEGACY_TOPK, not " + layout);
      }
      if (!folderPattern.contains("{l}")) {
        throw new IllegalArgumentException("folderPattern " + folderPattern + " lacks {l}");
      }
    }

    public static Builder builder() {
      return new Builder();
    }

    /** Spec with named fields; the defaults are a small standard SAE in the legacy layout. */
    public static final class Builder {
      private List<String> hooks = List.of();
      private Architecture architecture = Architecture.STANDARD;
      private Normalization normalization = Normalization.NONE;
      private Layout layout = Layout.LEGACY;
      private boolean applyBDecToInput = true;
      private boolean prependBos = true;
      private Centering centering = Centering.UNSTATED;
      private ScalingFactor scalingFactor = ScalingFactor.NONE;
      private int dSae = 32;
      private int l0 = 4;
      private Dtype dtype = Dtype.F32;
      private String folderPattern = "blocks.{l}.hook_resid_{kind}";
      private long seed = 0;

      public Builder hooks(String... hooks) {
        this.hooks = List.of(hooks);
        return this;
      }

      public Builder architecture(Architecture architecture) {
        this.architecture = architecture;
        return this;
      }

      public Builder normalization(Normalization normalization) {
        this.normalization = normalization;
        return this;
      }

      public Builder layout(Layout layout) {
        this.layout = layout;
        return this;
      }

      public Builder applyBDecToInput(boolean applyBDecToInput) {
        this.applyBDecToInput = applyBDecToInput;
        return this;
      }

      public Builder prependBos(boolean prependBos) {
        this.prependBos = prependBos;
        return this;
      }

      public Builder centering(Centering centering) {
        this.centering = centering;
        return this;
      }

      public Builder scalingFactor(ScalingFactor scalingFactor) {
        this.scalingFactor = scalingFactor;
        return this;
      }

      public Builder dSae(int dSae) {
        this.dSae = dSae;
        return this;
      }

      public Builder l0(int l0) {
        this.l0 = l0;
        return this;
      }

      public Builder dtype(Dtype dtype) {
        this.dtype = dtype;
        return this;
      }

      public Builder folderPattern(String folderPattern) {
        this.folderPattern = folderPattern;
        return this;
      }

      public Builder seed(long seed) {
        this.seed = seed;
        return this;
      }

      public Spec build() {
        return new Spec(hooks, architecture, normalization, layout, applyBDecToInput, prependBos,
            centering, scalingFactor, dSae, l0, dtype, folderPattern, seed);
      }
    }
  }

  /** The tensors of one SAE; those its architecture does not have are null. */
  record Weights(
      double[][] W_enc,
      double[] b_enc,
      double[][] W_dec,
      double[] b_dec,
      double[] threshold,
      double[] b_gate,
      double[] r_mag,
      double[] b_mag,
      double[] scaling_factor) {}

  private ReferenceSaes() {}

  /** Writes one SAE folder per hook of {@code spec} under {@code saesDir}. */
  public static void write(Path modelDir, Path saesDir, Spec spec) throws IOException {
    ReferenceMethod.Config config = ReferenceMethod.readConfig(modelDir.resolve("config.json"));
    List<Site> sites = new ArrayList<>();
    for (int l = 0; spec.hooks().isEmpty() && l < config.n_layer(); l++) {
      sites.add(new Site(l, ReferenceMethod.Kind.PRE));
    }
    for (String hook : spec.hooks()) {
      Site site = Site.parse(hook);
      if (site.layer() >= config.n_layer()) {
        throw new IllegalArgumentException("hook " + hook + " is beyond the model's "
            + config.n_layer() + " layers");
      }
      sites.add(site);
    }
    Map<Site, String> folders = new LinkedHashMap<>();
    for (Site site : sites) {
      String name = folderName(spec.folderPattern(), site);
      if (folders.containsValue(name)) {
        throw new IllegalArgumentException("folderPattern " + spec.folderPattern()
            + " gives two SAEs the folder " + name);
      }
      folders.put(site, name);
    }

    Random random = new Random(spec.seed());
    Map<Site, double[][]> inputs = calibrationInputs(modelDir, config, sites, spec, random);
    for (Site site : sites) {
      Weights w = fit(inputs.get(site), spec, random);
      Path dir = saesDir.resolve(folders.get(site));
      Files.createDirectories(dir);
      JSON.writerWithDefaultPrettyPrinter()
          .writeValue(dir.resolve("cfg.json").toFile(), cfg(site, config.n_embd(), spec));
      writeSafetensors(dir.resolve("sae_weights.safetensors"), tensors(w, spec));
    }
  }

  static String folderName(String pattern, Site site) {
    return pattern
        .replace("{l}", Integer.toString(site.layer()))
        .replace("{kind}", site.kind().name().toLowerCase(Locale.ROOT));
  }

  /**
   * The encoder inputs n(c(x)) at each site on the calibration prompts, BOS positions left out
   * (they are never ablated or measured): site -> [N, d].
   */
  private static Map<Site, double[][]> calibrationInputs(Path modelDir,
      ReferenceMethod.Config config, List<Site> sites, Spec spec, Random random)
      throws IOException {
    ReferenceMethod model = ReferenceMethod.load(modelDir, null, false);
    boolean centred = spec.centering() == Centering.CENTERED || spec.layout() == Layout.JB_DUMP;
    int length = Math.min(CALIBRATION_LENGTH, config.n_positions());
    int bos = Math.min(GPT2_BOS, config.vocab_size() - 1);
    int first = spec.prependBos() ? 1 : 0;
    Map<Site, List<double[]>> rows = new LinkedHashMap<>();
    for (int prompt = 0; prompt < CALIBRATION_PROMPTS; prompt++) {
      int[] tokens = new int[length];
      for (int p = 0; p < length; p++) {
        tokens[p] = p < first ? bos : random.nextInt(config.vocab_size());
      }
      for (Site site : sites) {
        double[][] x = model.residual(site.hook(), tokens); // [n, d]
        for (int p = first; p < length; p++) {
          double[] c = centred ? ReferenceMethod.center(x[p]) : x[p];
          rows.computeIfAbsent(site, s -> new ArrayList<>())
              .add(ReferenceMethod.normalize(spec.normalization(), c).y());
        }
      }
    }
    Map<Site, double[][]> inputs = new LinkedHashMap<>();
    rows.forEach((site, list) -> inputs.put(site, list.toArray(double[][]::new)));
    return inputs;
  }

  /** The SAE for encoder inputs {@code u} [N, d] (see the class comment). */
  static Weights fit(double[][] u, Spec spec, Random random) {
    int n = u.length;
    int d = u[0].length;
    int s = spec.dSae();
    double[] b_dec = new double[d]; // the inputs' mean, as b_dec is initialised in training
    for (double[] row : u) {
      for (int k = 0; k < d; k++) {
        b_dec[k] += row[k] / n;
      }
    }
    double squares = 0;
    for (double[] row : u) {
      for (int k = 0; k < d; k++) {
        squares += (row[k] - b_dec[k]) * (row[k] - b_dec[k]);
      }
    }
    double spread = Math.sqrt(squares / (n * d)); // per coordinate, around the mean
    if (!(spread > 0)) {
      throw new IllegalStateException("the calibration inputs do not vary");
    }
    double[][] W_dec = new double[s][d]; // [S, d], random unit rows
    double[][] W_enc = new double[d][s]; // [d, S], the same directions over the spread
    for (int i = 0; i < s; i++) {
      double norm = 0;
      for (int k = 0; k < d; k++) {
        W_dec[i][k] = random.nextGaussian();
        norm += W_dec[i][k] * W_dec[i][k];
      }
      for (int k = 0; k < d; k++) {
        W_dec[i][k] /= Math.sqrt(norm);
        W_enc[k][i] = W_dec[i][k] / spread;
      }
    }

    // Each latent's projections, shifted to mean 0 so that one cut serves every latent.
    double[][] proj = new double[n][]; // [N, S]
    double[] mean = new double[s];
    for (int p = 0; p < n; p++) {
      double[] input = u[p].clone();
      for (int k = 0; spec.applyBDecToInput() && k < d; k++) {
        input[k] -= b_dec[k];
      }
      proj[p] = ReferenceMethod.vecMat(input, W_enc);
      for (int i = 0; i < s; i++) {
        mean[i] += proj[p][i] / n;
      }
    }
    double[] z = new double[n * s];
    for (int p = 0; p < n; p++) {
      for (int i = 0; i < s; i++) {
        z[p * s + i] = proj[p][i] - mean[i];
      }
    }
    Arrays.sort(z);
    double cut = above(z, n * spec.l0()); // l0 per position lie above it

    double[] scaling = switch (spec.scalingFactor()) {
      case NONE -> null;
      case ONES -> filled(s, 1.0);
      case RANDOM -> random.doubles(s, 0.5, 1.5).toArray();
    };
    return switch (spec.architecture()) {
      case STANDARD ->
          new Weights(W_enc, bias(mean, cut), W_dec, b_dec, null, null, null, null, scaling);
      // pre centred on 0: about half the latents positive, so the top k are all active
      case TOPK ->
          new Weights(W_enc, bias(mean, 0.0), W_dec, b_dec, null, null, null, null, scaling);
      case JUMPRELU, JUMPRELU_LOG_THRESHOLD -> {
        // 2·l0 latents have pre > 0, the l0 of them above θ fire: the jump matters.
        double low = above(z, 2 * n * spec.l0());
        yield new Weights(W_enc, bias(mean, low), W_dec, b_dec, filled(s, cut - low),
            null, null, null, scaling);
      }
      case GATED -> {
        // The gate opens for l0 latents; the magnitude is positive for 2·l0 of them.
        double low = above(z, 2 * n * spec.l0());
        double[] r_mag = random.doubles(s, -0.5, 0.5).toArray();
        double[] b_mag = bias(mean, low);
        for (int i = 0; i < s; i++) {
          b_mag[i] *= Math.exp(r_mag[i]);
        }
        yield new Weights(W_enc, null, W_dec, b_dec, null, bias(mean, cut), r_mag, b_mag,
            scaling);
      }
    };
  }

  /** The midpoint between the count-th and (count+1)-th largest of ascending {@code sorted}. */
  private static double above(double[] sorted, int count) {
    int n = sorted.length;
    return (sorted[n - count] + sorted[n - count - 1]) / 2;
  }

  /** -mean_i - cut: latent i's centred projection must exceed {@code cut} to make pre > 0. */
  private static double[] bias(double[] mean, double cut) {
    double[] b = new double[mean.length];
    for (int i = 0; i < b.length; i++) {
      b[i] = -mean[i] - cut;
    }
    return b;
  }

  private static double[] filled(int n, double value) {
    double[] v = new double[n];
    Arrays.fill(v, value);
    return v;
  }

  // ---------------------------------------------------------------------------------------------
  // cfg.json

  static ObjectNode cfg(Site site, int dIn, Spec spec) {
    return switch (spec.layout()) {
      case LEGACY, LEGACY_TOPK -> legacyCfg(site, dIn, spec);
      case V6 -> v6Cfg(site, dIn, spec);
      case JB_DUMP -> jbDumpCfg(site, dIn, spec);
    };
  }

  private static String architectureName(Architecture a) {
    return switch (a) {
      case STANDARD -> "standard";
      case JUMPRELU, JUMPRELU_LOG_THRESHOLD -> "jumprelu";
      case TOPK -> "topk";
      case GATED -> "gated";
    };
  }

  /** The flat layout of SAELens 5's SAEConfig.to_dict. */
  private static ObjectNode legacyCfg(Site site, int dIn, Spec spec) {
    boolean topk = spec.architecture() == Architecture.TOPK;
    ObjectNode c = JSON.createObjectNode();
    c.put("architecture",
        spec.layout() == Layout.LEGACY_TOPK ? "standard" : architectureName(spec.architecture()));
    c.put("d_in", dIn);
    c.put("d_sae", spec.dSae());
    c.put("dtype", spec.dtype() == Dtype.F32 ? "float32" : "bfloat16");
    c.put("device", "cpu");
    c.put("model_name", "gpt2");
    c.put("hook_name", site.hook());
    c.put("hook_layer", site.layer());
    c.putNull("hook_head_index");
    c.put("activation_fn_str", topk ? "topk" : "relu");
    ObjectNode kwargs = c.putObject("activation_fn_kwargs");
    if (topk) {
      kwargs.put("k", spec.l0());
    }
    c.put("apply_b_dec_to_input", spec.applyBDecToInput());
    c.put("finetuning_scaling_factor", spec.scalingFactor() == ScalingFactor.RANDOM);
    c.put("sae_lens_training_version", "5.5.2");
    c.put("prepend_bos", spec.prependBos());
    c.put("dataset_path", "Skylion007/openwebtext");
    c.put("dataset_trust_remote_code", true);
    c.put("context_size", 128);
    c.put("normalize_activations", spec.normalization().cfgName());
    c.putNull("neuronpedia_id");
    centering(c, spec.centering());
    return c;
  }

  /** SAELens 6: the SAE's own fields at the top level, the language model's under metadata. */
  private static ObjectNode v6Cfg(Site site, int dIn, Spec spec) {
    ObjectNode c = JSON.createObjectNode();
    c.put("d_in", dIn);
    c.put("d_sae", spec.dSae());
    c.put("dtype", spec.dtype() == Dtype.F32 ? "float32" : "bfloat16");
    c.put("device", "cpu");
    c.put("apply_b_dec_to_input", spec.applyBDecToInput());
    c.put("normalize_activations", spec.normalization().cfgName());
    c.put("reshape_activations", "none");
    c.put("architecture", architectureName(spec.architecture()));
    if (spec.architecture() == Architecture.TOPK) {
      c.put("k", spec.l0());
      c.put("rescale_acts_by_decoder_norm", false);
    }
    ObjectNode m = c.putObject("metadata");
    m.put("sae_lens_version", "6.5.1");
    m.put("sae_lens_training_version", "6.5.1");
    m.put("model_name", "gpt2");
    m.put("hook_name", site.hook());
    m.putNull("hook_head_index");
    m.put("prepend_bos", spec.prependBos());
    m.put("exclude_special_tokens", false);
    m.put("context_size", 128);
    m.put("dataset_path", "Skylion007/openwebtext");
    m.putNull("neuronpedia_id");
    centering(m, spec.centering());
    return c;
  }

  /**
   * The raw cfg.json of gpt2-small-res-jb: an old training-run dump. The fields SAELens's loader
   * adds by default (architecture, apply_b_dec_to_input, prepend_bos, normalize_activations,
   * activation_fn_str, finetuning_scaling_factor) and model_from_pretrained_kwargs are absent.
   */
  private static ObjectNode jbDumpCfg(Site site, int dIn, Spec spec) {
    ObjectNode c = JSON.createObjectNode();
    c.put("model_name", "gpt2-small");
    c.put("hook_point", site.hook());
    c.put("hook_point_layer", site.layer());
    c.putNull("hook_point_head_index");
    c.put("dataset_path", "Skylion007/openwebtext");
    c.put("is_dataset_tokenized", false);
    c.put("context_size", 128);
    c.put("use_cached_activations", false);
    c.putNull("cached_activations_path");
    c.put("d_in", dIn);
    c.put("n_batches_in_buffer", 128);
    c.put("total_training_tokens", 300_000_000);
    c.put("store_batch_size", 32);
    c.put("device", "cuda");
    c.put("seed", 42);
    c.put("dtype", spec.dtype() == Dtype.F32 ? "torch.float32" : "torch.bfloat16");
    c.put("b_dec_init_method", "geometric_median");
    if (spec.dSae() % dIn == 0) {
      c.put("expansion_factor", spec.dSae() / dIn);
    } else {
      c.put("expansion_factor", (double) spec.dSae() / dIn);
    }
    c.putNull("from_pretrained_path");
    c.put("l1_coefficient", 8e-05);
    c.put("lr", 0.0004);
    c.putNull("lr_scheduler_name");
    c.put("lr_warm_up_steps", 5000);
    c.put("train_batch_size", 4096);
    c.put("use_ghost_grads", false);
    c.put("feature_sampling_window", 1000);
    c.put("feature_sampling_method", "l2");
    c.put("resample_batches", 1028);
    c.put("feature_reinit_scale", 0.2);
    c.put("dead_feature_window", 5000);
    c.put("dead_feature_estimation_method", "no_fire");
    c.put("dead_feature_threshold", 1e-08);
    c.put("log_to_wandb", true);
    c.put("wandb_project", "mats_sae_training_gpt2_small_resid_pre");
    c.putNull("wandb_entity");
    c.put("wandb_log_frequency", 100);
    c.put("n_checkpoints", 10);
    c.put("checkpoint_path", "checkpoints/" + site.hook());
    c.put("d_sae", spec.dSae());
    c.put("tokens_per_buffer", 67_108_864);
    c.put("run_name", spec.dSae() + "-L1-8e-05-LR-0.0004-Tokens-3.000e+08");
    return c;
  }

  private static void centering(ObjectNode node, Centering centering) {
    if (centering != Centering.UNSTATED) {
      node.putObject("model_from_pretrained_kwargs")
          .put("center_writing_weights", centering == Centering.CENTERED);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // sae_weights.safetensors

  /** The tensors under their SAELens names, in the order SAELens saves them. */
  private static Map<String, Tensor> tensors(Weights w, Spec spec) {
    String dtype = spec.dtype().name();
    Map<String, Tensor> t = new LinkedHashMap<>();
    t.put("W_enc", matrix(dtype, w.W_enc()));
    if (w.b_enc() != null) {
      t.put("b_enc", vector(dtype, w.b_enc()));
    }
    if (w.b_gate() != null) {
      t.put("b_gate", vector(dtype, w.b_gate()));
      t.put("r_mag", vector(dtype, w.r_mag()));
      t.put("b_mag", vector(dtype, w.b_mag()));
    }
    t.put("W_dec", matrix(dtype, w.W_dec()));
    t.put("b_dec", vector(dtype, w.b_dec()));
    if (spec.architecture() == Architecture.JUMPRELU_LOG_THRESHOLD) {
      t.put("log_threshold", vector(dtype, Arrays.stream(w.threshold()).map(Math::log).toArray()));
    } else if (w.threshold() != null) {
      t.put("threshold", vector(dtype, w.threshold()));
    }
    if (w.scaling_factor() != null) {
      t.put("scaling_factor", vector(dtype, w.scaling_factor()));
    }
    return t;
  }

  private static Tensor vector(String dtype, double[] v) {
    return new Tensor(dtype, new int[] {v.length}, v);
  }

  private static Tensor matrix(String dtype, double[][] m) {
    return new Tensor(dtype, new int[] {m.length, m[0].length},
        Arrays.stream(m).flatMapToDouble(Arrays::stream).toArray());
  }

  /** Writes a safetensors file, each tensor's data as its dtype (F32 or BF16) says. */
  static void writeSafetensors(Path file, Map<String, Tensor> tensors) throws IOException {
    Map<String, TinyModels.Entry> entries = new LinkedHashMap<>();
    tensors.forEach((name, t) ->
        entries.put(name, new TinyModels.Entry(t.dtype(), t.shape(), encode(t.data(), Dtype.valueOf(t.dtype())))));
    TinyModels.writeSafetensors(file, entries);
  }

  private static byte[] encode(double[] values, Dtype dtype) {
    ByteBuffer b = ByteBuffer.allocate((dtype == Dtype.F32 ? 4 : 2) * values.length)
        .order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      if (dtype == Dtype.F32) {
        b.putFloat((float) v);
      } else {
        b.putShort((short) bf16(v));
      }
    }
    return b.array();
  }

  /** The top 16 bits of the float32, rounded to nearest, ties to even. */
  static int bf16(double v) {
    int bits = Float.floatToIntBits((float) v);
    return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
}
