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
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * An independent float64 implementation of /work/shared/METHOD.md, used only by tests to check the
 * production code (DJL, float32). It was written from the specification without reading the
 * production sources, and uses nothing but {@code double[]} arrays, loops and Jackson for JSON:
 * its value is that it is obviously the method, not that it is fast.
 *
 * <p>It covers SAELens SAEs at any residual-stream site ({@code blocks.{l}.hook_resid_pre}, {@code
 * _mid}, {@code _post}), of the standard, jumprelu, topk and gated architectures, with the none,
 * layer_norm and constant_norm_rescale input normalisations, from either cfg.json layout (legacy
 * flat, or SAELens 6 with {@code metadata}). What it cannot compute exactly it refuses, naming the
 * file and the field.
 *
 * <p>Shapes in comments: {@code n} positions, {@code d} = n_embd, {@code S} = d_sae, {@code V} =
 * vocabulary. Weight names follow the checkpoint keys so the code can be held against the files.
 *
 * <p>Weights are immutable after {@link #load}; the only mutable state is a one-entry cache of the
 * last clean pass, replaced atomically, so an instance may be shared between test threads.
 */
public final class ReferenceMethod {

  private static final ObjectMapper JSON = new ObjectMapper();

  /** SAELens's layer_norm adds this to the standard deviation (not inside a square root). */
  static final double SAE_LAYER_NORM_EPS = 1e-5;

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

  /** Where in a block a residual-stream site sits. */
  enum Kind { PRE, MID, POST }

  /**
   * A residual-stream site {@code blocks.{layer}.hook_resid_{kind}}. The stream of an L-layer model
   * has 2L+1 points: point 2l enters block l (resid_pre), 2l+1 lies between its attention and its
   * MLP (resid_mid) and 2l+2 leaves it (resid_post, the same residual as resid_pre of l+1).
   */
  record Site(int layer, Kind kind) {
    private static final Pattern HOOK =
        Pattern.compile("blocks\\.(\\d+)\\.hook_resid_(pre|mid|post)");

    Site {
      Objects.requireNonNull(kind, "kind");
      if (layer < 0) {
        throw new IllegalArgumentException("layer " + layer + " is negative");
      }
    }

    static Site parse(String hook) {
      Matcher m = HOOK.matcher(hook);
      if (!m.matches()) {
        throw new IllegalArgumentException("hook " + hook
            + " is not a residual-stream site blocks.{l}.hook_resid_{pre,mid,post}");
      }
      return new Site(Integer.parseInt(m.group(1)),
          Kind.valueOf(m.group(2).toUpperCase(Locale.ROOT)));
    }

    String hook() {
      return "blocks." + layer + ".hook_resid_" + kind.name().toLowerCase(Locale.ROOT);
    }

    /** The index of this site's residual in the stream of points 0..2L. */
    int point() {
      return 2 * layer + switch (kind) {
        case PRE -> 0;
        case MID -> 1;
        case POST -> 2;
      };
    }

    /** Forward order: by point, and resid_post of l before resid_pre of l+1 (the same point). */
    int order() {
      return 2 * point() + (kind == Kind.PRE ? 1 : 0);
    }
  }

  /** SAE architectures; the cfg.json spelling is the lower-case name. */
  enum Architecture { STANDARD, JUMPRELU, TOPK, GATED }

  /** Input normalisations n; normalize_activations in cfg.json spells them in lower case. */
  public enum Normalization {
    NONE,
    LAYER_NORM,
    CONSTANT_NORM_RESCALE;

    public String cfgName() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /**
   * The settings of one cfg.json that change the numbers, whichever layout they were read from.
   * {@code k} is the TopK's k (0 for the other architectures); {@code center_writing_weights} is
   * null when the cfg does not say.
   */
  record SaeConfig(
      Site site,
      int d_in,
      int d_sae,
      Architecture architecture,
      int k,
      Normalization normalize_activations,
      boolean apply_b_dec_to_input,
      boolean prepend_bos,
      boolean finetuning_scaling_factor,
      Boolean center_writing_weights) {
    SaeConfig {
      Objects.requireNonNull(site, "site");
      Objects.requireNonNull(architecture, "architecture");
      Objects.requireNonNull(normalize_activations, "normalize_activations");
      if (d_in <= 0 || d_sae <= 0) {
        throw new IllegalArgumentException(
            "d_in " + d_in + " and d_sae " + d_sae + " must be positive");
      }
      if (architecture == Architecture.TOPK ? k < 1 || k > d_sae : k != 0) {
        throw new IllegalArgumentException("k " + k + " does not fit a " + architecture
            + " SAE with d_sae " + d_sae);
      }
    }
  }

  /**
   * One SAELens SAE. Tensors an architecture does not use are null: {@code b_enc} is absent from
   * gated SAEs, {@code threshold} belongs to jumprelu (already exp(log_threshold) when the file had
   * that), {@code b_gate, r_mag, b_mag} to gated. {@code scaling_factor} is null when the file has
   * none or an all-ones one. {@code centered}: c(x) = x - mean(x) before the encoder.
   */
  record Sae(
      SaeConfig cfg,
      boolean centered,
      double[][] W_enc,
      double[] b_enc,
      double[][] W_dec,
      double[] b_dec,
      double[] threshold,
      double[] b_gate,
      double[] r_mag,
      double[] b_mag,
      double[] scaling_factor) {
    Sae {
      Objects.requireNonNull(cfg, "cfg");
      Objects.requireNonNull(W_enc, "W_enc");
      Objects.requireNonNull(W_dec, "W_dec");
      Objects.requireNonNull(b_dec, "b_dec");
      boolean fits = switch (cfg.architecture()) {
        case STANDARD, TOPK -> b_enc != null && threshold == null && b_gate == null;
        case JUMPRELU -> b_enc != null && threshold != null && b_gate == null;
        case GATED -> b_enc == null && b_gate != null && r_mag != null && b_mag != null;
      };
      if (!fits) {
        throw new IllegalArgumentException("the tensors given do not fit a " + cfg.architecture()
            + " SAE");
      }
    }
  }

  /** n(x) and the statistics of its inverse n⁻¹(y) = y·scale + mean. */
  record Normalized(double[] y, double mean, double scale) {}

  /** The residuals of one clean pass over {@code tokens} at every stream point: [2L+1][n][d]. */
  private record CleanPass(int[] tokens, double[][][] x) {}

  private final Config config;
  private final double[][] wte; // [V, d]
  private final double[][] wpe; // [P, d]
  private final Block[] h; // [L]
  private final LayerNorm ln_f;
  private final Map<Site, Sae> saes; // in forward order
  private final boolean prependBos;
  private volatile CleanPass lastCleanPass;

  private ReferenceMethod(
      Config config,
      double[][] wte,
      double[][] wpe,
      Block[] h,
      LayerNorm ln_f,
      Map<Site, Sae> saes,
      boolean prependBos) {
    this.config = config;
    this.wte = wte;
    this.wpe = wpe;
    this.h = h;
    this.ln_f = ln_f;
    this.saes = saes;
    this.prependBos = prependBos;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading

  /**
   * Loads the model and every SAE under {@code saesDir} (may be null: no SAEs): each immediate
   * subfolder holding a cfg.json is one, whatever it is called; its site comes from the cfg's hook
   * name. {@code centered}: null lets each SAE follow its cfg's
   * model_from_pretrained_kwargs.center_writing_weights (absent = not centred); true or false
   * forces every SAE.
   */
  public static ReferenceMethod load(Path modelDir, Path saesDir, Boolean centered)
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

    Map<Site, Sae> saes = saesDir == null ? Map.of() : readSaes(saesDir, config, centered);
    TreeSet<Boolean> bos = new TreeSet<>();
    for (Sae sae : saes.values()) {
      bos.add(sae.cfg().prepend_bos());
    }
    if (bos.size() > 1) {
      throw new IOException(saesDir + ": the SAEs disagree on prepend_bos in their cfg.json");
    }
    // With no SAE there is nothing to ablate; cfg.json's own default (true) is the natural answer.
    boolean prependBos = bos.isEmpty() || bos.first();
    return new ReferenceMethod(config, wte, wpe, h, ln_f, saes, prependBos);
  }

  /** Every SAE folder under {@code saesDir}, by site in forward order; one SAE per site. */
  private static Map<Site, Sae> readSaes(Path saesDir, Config config, Boolean centered)
      throws IOException {
    if (!Files.isDirectory(saesDir)) {
      throw new NoSuchFileException(saesDir.toString(), null, "SAE folder does not exist");
    }
    List<Sae> found = new ArrayList<>();
    Map<Site, Path> folders = new HashMap<>();
    for (Path dir : saeFolders(saesDir)) {
      Sae sae = readSae(dir, config, centered);
      Path other = folders.put(sae.cfg().site(), dir);
      if (other != null) {
        throw new IOException(dir.resolve("cfg.json") + ": hook_name " + sae.cfg().site().hook()
            + " is also the hook of " + other.resolve("cfg.json"));
      }
      found.add(sae);
    }
    found.sort((a, b) -> Integer.compare(a.cfg().site().order(), b.cfg().site().order()));
    Map<Site, Sae> saes = new LinkedHashMap<>();
    for (Sae sae : found) {
      saes.put(sae.cfg().site(), sae);
    }
    return saes;
  }

  /** The immediate subfolders of {@code saesDir} that hold a cfg.json, by name. */
  private static List<Path> saeFolders(Path saesDir) throws IOException {
    try (Stream<Path> children = Files.list(saesDir)) {
      return children
          .filter(dir -> Files.isRegularFile(dir.resolve("cfg.json")))
          .sorted()
          .toList();
    }
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

  /**
   * Reads a cfg.json in either layout: legacy flat (everything at the top level; SAELens 5 and
   * older, with their older names hook_point, activation_fn_str) or SAELens 6 (d_in, d_sae,
   * architecture, k, normalize_activations, apply_b_dec_to_input at the top level, the rest under
   * {@code metadata}). Every setting is looked up at the top level first, then under metadata, so
   * one reading serves both.
   */
  static SaeConfig readSaeConfig(Path file) throws IOException {
    JsonNode cfg = JSON.readTree(file.toFile());
    if (cfg == null || !cfg.isObject()) {
      throw new IOException(file + ": not a JSON object");
    }
    String hookField = setting(cfg, "hook_name") != null ? "hook_name" : "hook_point";
    String hook = text(cfg, hookField, null, file);
    if (hook == null) {
      throw new IOException(file + ": missing hook_name (or the older hook_point)");
    }
    Site site;
    try {
      site = Site.parse(hook);
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": " + hookField + " " + hook
          + " is not a residual-stream site blocks.{l}.hook_resid_{pre,mid,post}", e);
    }

    // SAELens 6 renamed activation_fn_str to activation_fn; either may appear.
    String activationField =
        setting(cfg, "activation_fn_str") != null ? "activation_fn_str" : "activation_fn";
    String activation = text(cfg, activationField, "relu", file);
    String architecture = text(cfg, "architecture", "standard", file);
    Architecture arch = switch (architecture) {
      // A legacy cfg marks a TopK SAE (OpenAI's v5) by its activation, not its architecture.
      case "standard" -> switch (activation) {
        case "relu" -> Architecture.STANDARD;
        case "topk" -> Architecture.TOPK;
        default -> throw new IOException(file + ": " + activationField + " " + activation
            + " is neither relu nor topk");
      };
      case "topk" -> {
        if (!activation.equals("relu") && !activation.equals("topk")) {
          throw new IOException(file + ": " + activationField + " " + activation
              + " contradicts architecture topk");
        }
        yield Architecture.TOPK;
      }
      case "jumprelu", "gated" -> {
        if (!activation.equals("relu")) {
          throw new IOException(file + ": " + activationField + " " + activation
              + " is not relu, as architecture " + architecture + " needs");
        }
        yield Architecture.valueOf(architecture.toUpperCase(Locale.ROOT));
      }
      default -> throw new IOException(file + ": architecture " + architecture
          + " is not one of standard, jumprelu, topk, gated");
    };
    int k = arch == Architecture.TOPK ? topK(cfg, file) : 0;
    if (bool(cfg, "rescale_acts_by_decoder_norm", false, file)) {
      throw new IOException(file + ": rescale_acts_by_decoder_norm true is not supported");
    }
    String reshape = text(cfg, "reshape_activations", "none", file);
    if (!reshape.equals("none")) {
      throw new IOException(file + ": reshape_activations " + reshape + " is not none");
    }
    // Older SAELens called the scaling flag uses_scaling_factor.
    boolean scaling = bool(cfg, "finetuning_scaling_factor",
        bool(cfg, "uses_scaling_factor", false, file), file);
    JsonNode kwargs = setting(cfg, "model_from_pretrained_kwargs");
    JsonNode center = kwargs == null ? null : kwargs.get("center_writing_weights");
    if (center != null && !center.isNull() && !center.isBoolean()) {
      throw new IOException(file
          + ": model_from_pretrained_kwargs.center_writing_weights is not a boolean");
    }
    try {
      return new SaeConfig(
          site,
          requiredInt(cfg, "d_in", file),
          requiredInt(cfg, "d_sae", file),
          arch,
          k,
          normalization(cfg, file),
          bool(cfg, "apply_b_dec_to_input", true, file),
          bool(cfg, "prepend_bos", true, file),
          scaling,
          center == null || center.isNull() ? null : center.asBoolean());
    } catch (IllegalArgumentException e) {
      throw new IOException(file + ": " + e.getMessage(), e);
    }
  }

  /** A TopK's k: SAELens 6's top-level k, or the legacy activation_fn_kwargs.k; they must agree. */
  private static int topK(JsonNode cfg, Path file) throws IOException {
    JsonNode top = setting(cfg, "k");
    JsonNode kwargs = setting(cfg, "activation_fn_kwargs");
    JsonNode legacy = kwargs == null || kwargs.get("k") == null || kwargs.get("k").isNull()
        ? null : kwargs.get("k");
    for (JsonNode v : new JsonNode[] {top, legacy}) {
      if (v != null && !v.canConvertToInt()) {
        throw new IOException(file + ": k " + v + " is not an integer");
      }
    }
    if (top != null && legacy != null && top.asInt() != legacy.asInt()) {
      throw new IOException(file + ": k " + top.asInt() + " and activation_fn_kwargs.k "
          + legacy.asInt() + " disagree");
    }
    if (top == null && legacy == null) {
      throw new IOException(file + ": a topk SAE needs k (or activation_fn_kwargs.k)");
    }
    return top != null ? top.asInt() : legacy.asInt();
  }

  /**
   * normalize_activations: a string, or a legacy boolean (false = none, true =
   * expected_average_only_in). expected_average_only_in is refused: SAELens folds a factor from
   * its release table into the weights, and a folder does not carry that factor.
   */
  private static Normalization normalization(JsonNode cfg, Path file) throws IOException {
    JsonNode v = setting(cfg, "normalize_activations");
    if (v == null) {
      return Normalization.NONE;
    }
    String mode = v.isBoolean() ? (v.asBoolean() ? "expected_average_only_in" : "none")
        : v.isTextual() ? v.asText() : null;
    if (mode == null) {
      throw new IOException(file + ": normalize_activations " + v + " is not a string or boolean");
    }
    return switch (mode) {
      case "none" -> Normalization.NONE;
      case "layer_norm" -> Normalization.LAYER_NORM;
      case "constant_norm_rescale" -> Normalization.CONSTANT_NORM_RESCALE;
      case "expected_average_only_in" -> throw new IOException(file + ": normalize_activations "
          + v + " means expected_average_only_in, whose factor lives in SAELens's release table,"
          + " not in the SAE folder");
      default -> throw new IOException(file + ": normalize_activations " + mode
          + " is not one of none, layer_norm, constant_norm_rescale");
    };
  }

  static Sae readSae(Path dir, Config model, Boolean centered) throws IOException {
    Path cfgFile = dir.resolve("cfg.json");
    SaeConfig cfg = readSaeConfig(cfgFile);
    int d = cfg.d_in();
    int s = cfg.d_sae();
    if (d != model.n_embd()) {
      throw new IOException(cfgFile + ": d_in " + d + " != the model's n_embd " + model.n_embd());
    }
    if (cfg.site().layer() >= model.n_layer()) {
      throw new IOException(cfgFile + ": hook_name " + cfg.site().hook()
          + " is beyond the model's " + model.n_layer() + " layers");
    }
    Path file = dir.resolve("sae_weights.safetensors");
    Map<String, Tensor> w = readSafetensors(file);
    Set<String> known = new TreeSet<>(Set.of("W_enc", "W_dec", "b_dec", "scaling_factor",
        "sparsity")); // sparsity: SAELens's log feature density, not part of the computation
    known.addAll(switch (cfg.architecture()) {
      case STANDARD, TOPK -> Set.of("b_enc");
      case JUMPRELU -> Set.of("b_enc", "threshold", "log_threshold");
      case GATED -> Set.of("b_gate", "r_mag", "b_mag");
    });
    for (String name : w.keySet()) {
      if (!known.contains(name)) {
        throw new IOException(file + ": unknown tensor " + name + " for a "
            + cfg.architecture().name().toLowerCase(Locale.ROOT) + " SAE (known: " + known + ")");
      }
    }
    boolean gated = cfg.architecture() == Architecture.GATED;
    return new Sae(
        cfg,
        centered != null ? centered : Boolean.TRUE.equals(cfg.center_writing_weights()),
        matrix(w, "W_enc", d, s, file),
        gated ? null : vector(w, "b_enc", s, file),
        matrix(w, "W_dec", s, d, file),
        vector(w, "b_dec", d, file),
        cfg.architecture() == Architecture.JUMPRELU ? threshold(w, s, file) : null,
        gated ? vector(w, "b_gate", s, file) : null,
        gated ? vector(w, "r_mag", s, file) : null,
        gated ? vector(w, "b_mag", s, file) : null,
        scalingFactor(w, cfg, file, cfgFile));
  }

  /** JumpReLU's θ: the threshold tensor, or exp(log_threshold); never both. */
  private static double[] threshold(Map<String, Tensor> w, int s, Path file) throws IOException {
    boolean plain = w.containsKey("threshold");
    boolean log = w.containsKey("log_threshold");
    if (plain && log) {
      throw new IOException(file + ": both threshold and log_threshold; which one holds?");
    }
    if (!plain && !log) {
      throw new IOException(file + ": missing tensor threshold (or log_threshold)");
    }
    if (plain) {
      return vector(w, "threshold", s, file);
    }
    double[] theta = vector(w, "log_threshold", s, file);
    for (int i = 0; i < s; i++) {
      theta[i] = Math.exp(theta[i]);
    }
    return theta;
  }

  /**
   * As SAELens loads it: an all-ones scaling_factor (torch.allclose) is dropped, as if absent;
   * any other one multiplies the latents before the decoder, which needs
   * finetuning_scaling_factor true in the cfg (SAELens refuses the file otherwise, and so do we).
   */
  private static double[] scalingFactor(Map<String, Tensor> w, SaeConfig cfg, Path file,
      Path cfgFile) throws IOException {
    if (!w.containsKey("scaling_factor")) {
      if (cfg.finetuning_scaling_factor()) {
        throw new IOException(file + ": missing tensor scaling_factor, which " + cfgFile
            + " asks for with finetuning_scaling_factor true");
      }
      return null;
    }
    double[] scale = vector(w, "scaling_factor", cfg.d_sae(), file);
    boolean ones = true;
    for (double v : scale) {
      ones &= Math.abs(v - 1.0) <= 1e-8 + 1e-5; // torch.allclose's default atol + rtol·|1|
    }
    if (ones) {
      return null;
    }
    if (!cfg.finetuning_scaling_factor()) {
      throw new IOException(file + ": tensor scaling_factor is not all ones, but " + cfgFile
          + " does not set finetuning_scaling_factor true");
    }
    return scale;
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

  /** A cfg.json setting at the top level, else under SAELens 6's metadata; null if neither. */
  private static JsonNode setting(JsonNode cfg, String field) {
    JsonNode v = cfg.get(field);
    if ((v == null || v.isNull()) && cfg.path("metadata").isObject()) {
      v = cfg.get("metadata").get(field);
    }
    return v == null || v.isNull() ? null : v;
  }

  private static String text(JsonNode cfg, String field, String fallback, Path file)
      throws IOException {
    JsonNode v = setting(cfg, field);
    if (v == null) {
      return fallback;
    }
    if (!v.isTextual()) {
      throw new IOException(file + ": " + field + " " + v + " is not a string");
    }
    return v.asText();
  }

  private static boolean bool(JsonNode cfg, String field, boolean fallback, Path file)
      throws IOException {
    JsonNode v = setting(cfg, field);
    if (v == null) {
      return fallback;
    }
    if (!v.isBoolean()) {
      throw new IOException(file + ": " + field + " " + v + " is not a boolean");
    }
    return v.asBoolean();
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  public int nLayer() {
    return config.n_layer();
  }

  /** The hook names of the loaded SAEs, in forward order. */
  public List<String> hooks() {
    return saes.keySet().stream().map(Site::hook).toList();
  }

  /** From the SAEs' cfg.json (all agree); true when no SAE was loaded, cfg.json's default. */
  public boolean prependBos() {
    return prependBos;
  }

  public int dSae(String hook) {
    return sae(hook).cfg().d_sae();
  }

  /** Whether the SAE at {@code hook} encodes c(x) = x - mean(x) (the centring decision). */
  public boolean centered(String hook) {
    return sae(hook).centered();
  }

  /** The (Hugging Face, uncentred) residual at any residual-stream site: [n][d]. */
  public double[][] residual(String hook, int[] tokens) {
    Site site = Site.parse(hook);
    if (site.layer() >= config.n_layer()) {
      throw new IllegalArgumentException("hook " + hook + " is beyond the model's "
          + config.n_layer() + " layers");
    }
    checkTokens(tokens);
    double[][] x = cleanPass(tokens)[site.point()];
    return copyRows(x, x.length);
  }

  /** f = encode(x) at every position for the SAE at {@code hook}: [n][S]. Step 1. */
  public double[][] activations(String hook, int[] tokens) {
    Sae sae = sae(hook);
    checkTokens(tokens);
    return encodeAll(sae, cleanPass(tokens)[sae.cfg().site().point()]);
  }

  /**
   * Step 2: sorted latents of the SAE at {@code hook} with f > 0 at some ablatable position
   * p <= target (position 0 is not ablatable when prependBos()).
   */
  public int[] candidates(String hook, int[] tokens, int target) {
    Sae sae = sae(hook);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    double[][] f = activations(hook, tokens); // [n, S]
    List<Integer> found = new ArrayList<>();
    for (int i = 0; i < sae.cfg().d_sae(); i++) {
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
   * Steps 3-5 between any two sites: ablate {@code latent} of the SAE at {@code from} at every
   * ablatable position, run exactly the computation from site {@code from} to site {@code to},
   * encode at the target with the SAE at {@code to}, and return e[j] = f'[T,j] - f[T,j] for every
   * j in 0..S_to-1 (dense).
   */
  public double[] ablate(String from, int latent, String to, int[] tokens, int target) {
    Sae a = sae(from);
    Sae b = sae(to);
    Site start = a.cfg().site();
    Site end = b.cfg().site();
    if (start.order() >= end.order()) {
      throw new IllegalArgumentException("site " + to + " does not come after " + from
          + " in the forward pass");
    }
    checkLatent(a, latent);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    // Step 1. The model is causal, so positions after T cannot reach T: keep 0..T only.
    double[][] x = copyRows(cleanPass(tokens)[start.point()], target + 1); // [T+1, d]
    double[][] xAblated = ablateResidual(a, latent, x); // step 3
    // Step 4 on both residuals through the same code, so a latent that never fires gives exactly 0.
    double[] fClean = encode(b, run(start.point(), end.point(), x)[target]); // [S_to]
    double[] fAblated = encode(b, run(start.point(), end.point(), xAblated)[target]); // [S_to]
    double[] e = new double[fClean.length];
    for (int j = 0; j < e.length; j++) {
      e[j] = fAblated[j] - fClean[j]; // step 5
    }
    return e;
  }

  /**
   * METHOD.md "Approximations", attribution: Σ_p δ_i[p]·∂F_j/∂x[p] at the clean residual, taken as
   * the central difference of F along δ_i (step 3's change), dense over the SAE at {@code to}.
   */
  public double[] attribution(String from, int latent, String to, int[] tokens, int target) {
    Hop hop = hop(from, to, tokens, target);
    checkLatent(hop.a(), latent);
    return derivative(hop, hop.x(), direction(hop.a(), latent, hop.x()), target);
  }

  /**
   * Integrated gradients with {@code steps} steps: the same derivative averaged over the midpoints
   * x + ((s - ½)/S)·Δ, Δ the change of ablating every candidate of the site at once.
   */
  public double[] integratedGradients(String from, int latent, String to, int[] tokens, int target, int steps) {
    Hop hop = hop(from, to, tokens, target);
    checkLatent(hop.a(), latent);
    double[][] all = allCandidates(hop, from, tokens, target);
    double[][] delta = direction(hop.a(), latent, hop.x());
    double[] mean = new double[dSae(to)];
    for (int s = 1; s <= steps; s++) {
      double[] g = derivative(hop, along(hop.x(), (s - 0.5) / steps, all), delta, target);
      for (int j = 0; j < mean.length; j++) {
        mean[j] += g[j] / steps;
      }
    }
    return mean;
  }

  /** f'[T] - f[T] at {@code to} with every candidate of {@code from} ablated at once (what integrated gradients sum to). */
  public double[] ablateAll(String from, String to, int[] tokens, int target) {
    Hop hop = hop(from, to, tokens, target);
    double[][] changed = along(hop.x(), 1, allCandidates(hop, from, tokens, target));
    double[] clean = encode(hop.b(), run(hop.start(), hop.end(), hop.x())[target]);
    double[] ablated = encode(hop.b(), run(hop.start(), hop.end(), changed)[target]);
    for (int j = 0; j < clean.length; j++) {
      ablated[j] -= clean[j];
    }
    return ablated;
  }

  /**
   * The faithfulness metric m(X): the clean top-1 token's log-probability at the target, minus the
   * contrast's when given, with every candidate of each site of {@code chain} (hooks in forward
   * order) not in {@code keep} ablated, site after site on the residual as modified so far.
   */
  public double metric(List<String> chain, Map<String, Set<Integer>> keep, int[] tokens, int target, Integer contrast) {
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    double[] clean = logProbs(tokens, target);
    int top = 0;
    for (int v = 1; v < clean.length; v++) {
      if (clean[v] > clean[top]) {
        top = v;
      }
    }
    int point = sae(chain.get(0)).cfg().site().point();
    double[][] x = copyRows(cleanPass(tokens)[point], target + 1);
    for (String hook : chain) {
      Sae sae = sae(hook);
      x = run(point, sae.cfg().site().point(), x);
      point = sae.cfg().site().point();
      Set<Integer> kept = keep.getOrDefault(hook, Set.of());
      int[] ablated = Arrays.stream(candidates(hook, tokens, target)).filter(i -> !kept.contains(i)).toArray();
      for (int p = firstAblatable(); p < x.length; p++) {
        double[] f = encode(sae, x[p]);
        double scale = saeInput(sae, x[p]).scale();
        double[] row = x[p].clone();
        for (int i : ablated) {
          double removed = scale * f[i] * (sae.scaling_factor() == null ? 1.0 : sae.scaling_factor()[i]);
          for (int k = 0; k < row.length; k++) {
            row[k] -= removed * sae.W_dec()[i][k];
          }
        }
        x[p] = row;
      }
    }
    double[] m = logProbsFrom(point, x, target);
    return m[top] - (contrast == null ? 0 : m[contrast]);
  }

  /** Two sites, their stream points, and the clean residual at the first up to the target. */
  private record Hop(Sae a, Sae b, int start, int end, double[][] x) {}

  private Hop hop(String from, String to, int[] tokens, int target) {
    Sae a = sae(from);
    Sae b = sae(to);
    Site start = a.cfg().site();
    Site end = b.cfg().site();
    if (start.order() >= end.order()) {
      throw new IllegalArgumentException("site " + to + " does not come after " + from + " in the forward pass");
    }
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    return new Hop(a, b, start.point(), end.point(), copyRows(cleanPass(tokens)[start.point()], target + 1));
  }

  /** Σ over the site's candidates of step 3's change: [T+1, d]. */
  private double[][] allCandidates(Hop hop, String from, int[] tokens, int target) {
    double[][] sum = new double[hop.x().length][hop.x()[0].length];
    for (int i : candidates(from, tokens, target)) {
      sum = along(sum, 1, direction(hop.a(), i, hop.x()));
    }
    return sum;
  }

  /** δ_i = x' - x of step 3: [n, d]. */
  private double[][] direction(Sae sae, int latent, double[][] x) {
    double[][] ablated = ablateResidual(sae, latent, x);
    for (int p = 0; p < x.length; p++) {
      for (int k = 0; k < x[p].length; k++) {
        ablated[p][k] -= x[p][k];
      }
    }
    return ablated;
  }

  /** x + t·v. */
  private static double[][] along(double[][] x, double t, double[][] v) {
    double[][] out = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      out[p] = new double[x[p].length];
      for (int k = 0; k < x[p].length; k++) {
        out[p][k] = x[p][k] + t * v[p][k];
      }
    }
    return out;
  }

  /** (F(x + hv) - F(x - hv)) / 2h for F = f[T] at the hop's second site; h small enough to cross no kink. */
  private double[] derivative(Hop hop, double[][] x, double[][] v, int target) {
    double h = 1e-6;
    double[] plus = encode(hop.b(), run(hop.start(), hop.end(), along(x, h, v))[target]);
    double[] minus = encode(hop.b(), run(hop.start(), hop.end(), along(x, -h, v))[target]);
    double[] g = new double[plus.length];
    for (int j = 0; j < g.length; j++) {
      g[j] = (plus[j] - minus[j]) / (2 * h);
    }
    return g;
  }

  /**
   * Step 8 from the SAE at {@code hook}: ablate as in step 3, run to the logits, and return
   * log_softmax(clean)[T] - log_softmax(ablated)[T], dense over the vocabulary.
   */
  public double[] logitEffects(String hook, int latent, int[] tokens, int target) {
    Sae sae = sae(hook);
    checkLatent(sae, latent);
    checkTokens(tokens);
    checkMeasuredTarget(tokens, target);
    int point = sae.cfg().site().point();
    double[][] x = copyRows(cleanPass(tokens)[point], target + 1); // [T+1, d], causal as in ablate
    double[][] xAblated = ablateResidual(sae, latent, x); // step 3
    double[] clean = logProbsFrom(point, x, target); // [V]
    double[] ablated = logProbsFrom(point, xAblated, target); // [V]
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
    int last = 2 * config.n_layer();
    return logProbsFrom(last, copyRows(cleanPass(tokens)[last], target + 1), target);
  }

  // Shorthands by layer for resid_pre sites, as METHOD.md's seed method numbers them.

  public boolean hasSae(int layer) {
    return layer >= 0 && saes.containsKey(new Site(layer, Kind.PRE));
  }

  public int dSae(int layer) {
    return dSae(pre(layer));
  }

  /** x_l for l = 0..nLayer (x_0 = wte[t]+wpe[p]; x_L is the final residual before ln_f): [L+1][n][d]. */
  public double[][][] residuals(int[] tokens) {
    checkTokens(tokens);
    double[][][] stream = cleanPass(tokens);
    double[][][] x = new double[config.n_layer() + 1][][];
    for (int l = 0; l < x.length; l++) {
      x[l] = copyRows(stream[2 * l], stream[2 * l].length);
    }
    return x;
  }

  public double[][] activations(int layer, int[] tokens) {
    return activations(pre(layer), tokens);
  }

  public int[] candidates(int layer, int[] tokens, int target) {
    return candidates(pre(layer), tokens, target);
  }

  /** From resid_pre of {@code layer} to resid_pre of {@code layer + 1}: block l only. */
  public double[] ablate(int layer, int latent, int[] tokens, int target) {
    return ablate(pre(layer), latent, pre(layer + 1), tokens, target);
  }

  public double[] logitEffects(int layer, int latent, int[] tokens, int target) {
    return logitEffects(pre(layer), latent, tokens, target);
  }

  private static String pre(int layer) {
    return "blocks." + layer + ".hook_resid_pre";
  }

  // ---------------------------------------------------------------------------------------------
  // The method

  /** Step 1 at every stream point: x_0 = wte[t] + wpe[p], then attention and MLP halves. */
  private double[][][] cleanPass(int[] tokens) {
    CleanPass last = lastCleanPass;
    if (last != null && Arrays.equals(last.tokens(), tokens)) {
      return last.x();
    }
    double[][][] x = new double[2 * config.n_layer() + 1][][]; // [2L+1, n, d]
    x[0] = embed(tokens);
    for (int point = 0; point < 2 * config.n_layer(); point++) {
      x[point + 1] = run(point, point + 1, x[point]);
    }
    lastCleanPass = new CleanPass(tokens.clone(), x);
    return x;
  }

  /**
   * Exactly the computation from stream point {@code from} to {@code to}: from an even point 2l
   * block l's attention (x + attn(ln_1(x))), from an odd point 2l+1 its MLP (x + mlp(ln_2(x))).
   * A block is two such steps. [n, d] -> [n, d]; returns x itself when from == to.
   */
  private double[][] run(int from, int to, double[][] x) {
    double eps = config.layer_norm_epsilon();
    for (int point = from; point < to; point++) {
      Block b = h[point / 2];
      x = point % 2 == 0
          ? add(x, attn(b, layerNorm(x, b.ln_1(), eps)))
          : add(x, mlp(b, layerNorm(x, b.ln_2(), eps)));
    }
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
   * The encoder: pre = (n(c(x)) - b_dec·[apply_b_dec_to_input]) · W_enc + b_enc, then the
   * architecture's activation. [d] -> [S].
   */
  static double[] encode(Sae sae, double[] x) {
    double[] u = saeInput(sae, x).y(); // [d]
    if (sae.cfg().apply_b_dec_to_input()) {
      for (int k = 0; k < u.length; k++) {
        u[k] -= sae.b_dec()[k];
      }
    }
    double[] proj = vecMat(u, sae.W_enc()); // [d] · [d, S] -> [S]
    return switch (sae.cfg().architecture()) {
      case STANDARD -> relu(plus(proj, sae.b_enc()));
      case JUMPRELU -> jumpRelu(plus(proj, sae.b_enc()), sae.threshold());
      case TOPK -> topK(plus(proj, sae.b_enc()), sae.cfg().k());
      case GATED -> gated(proj, sae.b_gate(), sae.r_mag(), sae.b_mag());
    };
  }

  /** n(c(x)) with the statistics of n⁻¹, both taken on the SAE's own input c(x). [d] -> [d]. */
  static Normalized saeInput(Sae sae, double[] x) {
    return normalize(sae.cfg().normalize_activations(), sae.centered() ? center(x) : x);
  }

  private static double[][] encodeAll(Sae sae, double[][] x) {
    double[][] f = new double[x.length][];
    for (int p = 0; p < x.length; p++) {
      f[p] = encode(sae, x[p]);
    }
    return f;
  }

  /**
   * Step 3 in residual units: x'[p] = x[p] - s_p · f[p,i] · scaling_factor_i · W_dec[i] at every
   * ablatable position, the decoder's contribution of latent i mapped back through n⁻¹ with the
   * clean position's statistics (s_p = n⁻¹'s scale). This zeroes latent i and keeps the SAE's
   * reconstruction error. [n, d] -> [n, d].
   */
  private double[][] ablateResidual(Sae sae, int latent, double[][] x) {
    double[] direction = sae.W_dec()[latent]; // [d]
    double scaling = sae.scaling_factor() == null ? 1.0 : sae.scaling_factor()[latent];
    double[][] ablated = copyRows(x, x.length);
    for (int p = firstAblatable(); p < x.length; p++) {
      double removed = saeInput(sae, x[p]).scale() * encode(sae, x[p])[latent] * scaling;
      for (int k = 0; k < direction.length; k++) {
        ablated[p][k] = x[p][k] - removed * direction[k];
      }
    }
    return ablated;
  }

  /** From stream point {@code from} to the end, ln_f, the tied unembedding at the target: [V]. */
  private double[] logProbsFrom(int from, double[][] x, int target) {
    double[] last = run(from, 2 * config.n_layer(), x)[target]; // the residual before ln_f
    double[] hidden = layerNorm(last, ln_f.weight(), ln_f.bias(), config.layer_norm_epsilon());
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

  /** c(x) = x - mean(x): the residual TransformerLens sees with centred writing weights. */
  static double[] center(double[] x) {
    double mean = mean(x);
    double[] c = new double[x.length];
    for (int k = 0; k < x.length; k++) {
      c[k] = x[k] - mean;
    }
    return c;
  }

  /**
   * SAELens's run-time input normalisation n and the statistics of its inverse
   * n⁻¹(y) = y·scale + mean. [d] -> [d].
   * <ul>
   *   <li>none: identity (scale 1, mean 0).
   *   <li>layer_norm: (x - μ) / (σ + 1e-5), σ torch's default, unbiased (divide by d-1), std; the
   *       inverse is y·σ + μ, without eps, as SAELens stores σ.
   *   <li>constant_norm_rescale: x·sqrt(d)/|x|, no eps; the inverse is y·|x|/sqrt(d).
   * </ul>
   */
  static Normalized normalize(Normalization n, double[] x) {
    int d = x.length;
    return switch (n) {
      case NONE -> new Normalized(x.clone(), 0.0, 1.0);
      case LAYER_NORM -> {
        double mu = mean(x);
        double squares = 0;
        for (double v : x) {
          squares += (v - mu) * (v - mu);
        }
        double sigma = Math.sqrt(squares / (d - 1));
        double[] y = new double[d];
        for (int k = 0; k < d; k++) {
          y[k] = (x[k] - mu) / (sigma + SAE_LAYER_NORM_EPS);
        }
        yield new Normalized(y, mu, sigma);
      }
      case CONSTANT_NORM_RESCALE -> {
        double squares = 0;
        for (double v : x) {
          squares += v * v;
        }
        double norm = Math.sqrt(squares);
        double coeff = Math.sqrt(d) / norm;
        double[] y = new double[d];
        for (int k = 0; k < d; k++) {
          y[k] = x[k] * coeff;
        }
        yield new Normalized(y, 0.0, norm / Math.sqrt(d));
      }
    };
  }

  static double[] relu(double[] pre) {
    double[] f = new double[pre.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = Math.max(0.0, pre[i]);
    }
    return f;
  }

  /** JumpReLU: ReLU(pre) · [pre > θ], strictly greater. [S] -> [S]. */
  static double[] jumpRelu(double[] pre, double[] threshold) {
    double[] f = new double[pre.length];
    for (int i = 0; i < f.length; i++) {
      f[i] = pre[i] > threshold[i] ? Math.max(0.0, pre[i]) : 0.0;
    }
    return f;
  }

  /**
   * TopK: the k largest entries of the raw pre-activations (ties: the lower latent index wins),
   * ReLU'd, zeros elsewhere. When fewer than k are positive, the selected non-positive ones give 0.
   * [S] -> [S].
   */
  static double[] topK(double[] pre, int k) {
    Integer[] order = new Integer[pre.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    // == rather than Double.compare, so that 0.0 and -0.0 tie and the index decides
    Arrays.sort(order, (a, b) -> pre[a] == pre[b] ? Integer.compare(a, b)
        : pre[a] > pre[b] ? -1 : 1);
    double[] f = new double[pre.length];
    for (int r = 0; r < k; r++) {
      f[order[r]] = Math.max(0.0, pre[order[r]]);
    }
    return f;
  }

  /**
   * Gated, as SAELens defines it: with proj = x'·W_enc, f = [proj + b_gate > 0] ·
   * ReLU(proj·exp(r_mag) + b_mag) (W_enc is shared; exp(r_mag) rescales each latent's column).
   * [S] -> [S].
   */
  static double[] gated(double[] proj, double[] b_gate, double[] r_mag, double[] b_mag) {
    double[] f = new double[proj.length];
    for (int i = 0; i < f.length; i++) {
      boolean open = proj[i] + b_gate[i] > 0;
      f[i] = open ? Math.max(0.0, proj[i] * Math.exp(r_mag[i]) + b_mag[i]) : 0.0;
    }
    return f;
  }

  /** [d] · [d, S] -> [S]. */
  static double[] vecMat(double[] x, double[][] w) {
    double[] y = new double[w[0].length];
    for (int k = 0; k < x.length; k++) {
      for (int i = 0; i < y.length; i++) {
        y[i] += x[k] * w[k][i];
      }
    }
    return y;
  }

  private static double[] plus(double[] a, double[] b) {
    double[] c = new double[a.length];
    for (int i = 0; i < c.length; i++) {
      c[i] = a[i] + b[i];
    }
    return c;
  }

  static double mean(double[] x) {
    double sum = 0;
    for (double v : x) {
      sum += v;
    }
    return sum / x.length;
  }

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

  private Sae sae(String hook) {
    Sae sae = saes.get(Site.parse(hook));
    if (sae == null) {
      throw new IllegalArgumentException("no SAE at " + hook + "; SAEs are loaded at " + hooks());
    }
    return sae;
  }

  private static void checkLatent(Sae sae, int latent) {
    if (latent < 0 || latent >= sae.cfg().d_sae()) {
      throw new IllegalArgumentException("latent " + latent + " is outside 0.."
          + (sae.cfg().d_sae() - 1) + " of the SAE at " + sae.cfg().site().hook());
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
