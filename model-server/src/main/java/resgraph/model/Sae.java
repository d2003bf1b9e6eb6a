package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import resgraph.model.SaeConfig.Architecture;
import resgraph.model.SaeConfig.Normalization;
import resgraph.model.SaeConfig.Setting;
import resgraph.platform.ResgraphException;

/**
 * A sparse autoencoder on one site of the residual stream, in the SAELens layout
 * ({@code W_enc [d, S]}, {@code b_enc [S]}, {@code W_dec [S, d]}, {@code b_dec [d]}, and per
 * architecture {@code threshold} or {@code log_threshold} (jumprelu), {@code b_gate},
 * {@code r_mag}, {@code b_mag} (gated, which has no b_enc)), as METHOD.md defines it:
 *
 * <pre>
 *   pre = (n(c(x)) - b_dec·[apply_b_dec_to_input]) · W_enc + b_enc       f = act(pre)
 * </pre>
 *
 * with c the centring, n the input normalisation. What SAELens applies to the latents before the
 * decoder (a {@code scaling_factor}, TopK's decoder-norm rescaling) is folded into the weights
 * once, at load, so every computation reads plain encoder and decoder rows.
 *
 * <p>Every operation computes in the dtype of its input, widening the float32 weights it needs, so
 * the same code runs the float64 clean pass and float32 batches.
 */
public final class Sae {

  /** SAELens's layer_norm adds this to the standard deviation it divides by. */
  static final double LAYER_NORM_EPS = 1e-5;

  public final SaeConfig cfg;
  /** Whether the SAE reads the residual minus its mean over d_model (TransformerLens's centred writing weights). */
  public final boolean centered;
  final Encoder gate; // W_enc [d, S] and b_enc [S]; gated: the gate's (b_gate)
  final NDArray W_dec; // [S, d]
  final NDArray b_dec; // [d]
  final double[] threshold; // [S] jumprelu's θ, else null
  final Encoder magnitude; // gated: the magnitude path's encoder W_enc·exp(r_mag) and b_mag, else null
  final NDArray floor; // [S] float32: the clamped threshold rounded down, below which a latent is surely off

  private Sae(SaeConfig cfg, boolean centered, Encoder gate, NDArray W_dec, NDArray b_dec, double[] threshold, Encoder magnitude,
      NDManager m) {
    this.cfg = cfg;
    this.centered = centered;
    this.gate = gate;
    this.W_dec = W_dec;
    this.b_dec = b_dec;
    this.threshold = threshold;
    this.magnitude = magnitude;
    double[] t = clampedThreshold();
    float[] f = new float[t.length];
    for (int j = 0; j < t.length; j++) f[j] = (float) t[j] > t[j] ? Math.nextDown((float) t[j]) : (float) t[j];
    this.floor = m.create(f, new Shape(f.length));
  }

  public Site site() {
    return cfg.site();
  }

  public int d_sae() {
    return cfg.d_sae();
  }

  public Architecture architecture() {
    return cfg.architecture();
  }

  // ---- encoding ----

  /** The encoder's input n(c(x)) - b_dec·[apply_b_dec_to_input]: [.., d] -> [.., d]. */
  NDArray input(NDArray x) {
    NDArray in = normalized(x);
    return cfg.applyBDecToInput() ? in.sub(b_dec.toType(x.getDataType(), false)) : in;
  }

  /** n(c(x)): the residual as the SAE was trained to read it, [.., d] -> [.., d]. */
  NDArray normalized(NDArray x) {
    return normalize(x, centered, cfg.normalization());
  }

  /** n(c(x)) for an SAE with this centring and normalisation. */
  static NDArray normalize(NDArray x, boolean centered, Normalization normalization) {
    NDArray c = centered ? x.sub(x.mean(new int[] {-1}, true)) : x;
    return switch (normalization) {
      case NONE -> c;
      case LAYER_NORM -> {
        NDArray centred = c.sub(c.mean(new int[] {-1}, true));
        // torch's Tensor.std, which SAELens calls: the unbiased estimate, over d - 1
        NDArray std = centred.square().sum(new int[] {-1}, true).div(Scalar.of(c, c.getShape().tail() - 1)).sqrt();
        yield centred.div(std.add(LAYER_NORM_EPS));
      }
      case CONSTANT_NORM_RESCALE -> c.mul(Scalar.of(c, Math.sqrt(c.getShape().tail()))).div(c.norm(new int[] {-1}, true));
    };
  }

  /**
   * Rows encoded together: the latents that can be on at any of them are taken exactly for all of
   * them, and over a whole long prompt those are most of the encoder.
   */
  static final int ROWS_AT_ONCE = 64;

  /**
   * f = act(pre) for each row of x [n, d]: n sparse rows, latents ascending. The exact
   * pre-activations, in x's dtype, are taken only for the latents that can be on, found first
   * from float32 values and a bound on their rounding ({@link Encoder}); the rest are surely off.
   */
  public Trace.SparseRow[] encode(NDArray x) {
    int n = (int) x.getShape().get(0);
    Trace.SparseRow[] rows = new Trace.SparseRow[n];
    for (int start = 0; start < n; start += ROWS_AT_ONCE) {
      int end = Math.min(n, start + ROWS_AT_ONCE);
      System.arraycopy(encodeRows(x.get(start + ":" + end)), 0, rows, start, end - start);
    }
    return rows;
  }

  private Trace.SparseRow[] encodeRows(NDArray x) {
    NDArray in = input(x);
    Encoder.Bounded bounded = gate.bounded(in);
    NDArray live = (architecture() == Architecture.TOPK ? bounded.mayBeAmongTop(Math.min(cfg.k(), d_sae()))
        : bounded.mayExceed(floor)).nonzero().reshape(-1); // [C]
    if (live.isEmpty()) return SparseRows.empty((int) x.getShape().get(0));
    NDArray pre = gate.exact(in, live); // [n, C]
    Trace.SparseRow[] rows = switch (architecture()) {
      case STANDARD -> SparseRows.of(pre.maximum(0));
      case JUMPRELU -> SparseRows.of(pre.mul(on(pre, x.getManager().create(clampedThreshold()).get(live))));
      case GATED -> SparseRows.of(magnitude.exact(in, live).maximum(0).mul(on(pre, live.zerosLike())));
      case TOPK -> SparseRows.topK(pre, cfg.k());
    };
    return SparseRows.relabel(rows, live.toLongArray());
  }

  /** 1 where pre > threshold, else 0, in pre's dtype. */
  private static NDArray on(NDArray pre, NDArray threshold) {
    return pre.gt(threshold.toType(pre.getDataType(), false)).toType(pre.getDataType(), false);
  }

  /** f_j for one latent's pre-activation (and a gated SAE's magnitude pre-activation); not for TopK, which looks at every latent. */
  double activation(int j, double pre, double magnitude) {
    return switch (architecture()) {
      case STANDARD -> Math.max(pre, 0);
      case JUMPRELU -> pre > Math.max(threshold[j], 0) ? pre : 0;
      case GATED -> pre > 0 ? Math.max(magnitude, 0) : 0;
      case TOPK -> throw new IllegalStateException("a TopK activation depends on every latent");
    };
  }

  /** Below this a latent is off: 0, or jumprelu's θ when positive (relu(pre)·[pre > θ]). */
  double[] clampedThreshold() {
    double[] t = new double[d_sae()];
    if (threshold != null) for (int j = 0; j < t.length; j++) t[j] = Math.max(threshold[j], 0);
    return t;
  }

  /**
   * How the encoder input moves when x moves by dx, for the rows of dx: [1, d] float64 and [B, d]
   * -> [B, d] float32. Centring is linear and b_dec cancels; a normalisation is not, so its
   * change is taken in float64.
   */
  NDArray inputChange(NDArray x, NDArray dx) {
    if (cfg.normalization() == Normalization.LAYER_NORM || cfg.normalization() == Normalization.CONSTANT_NORM_RESCALE) {
      return Change.of(this::normalized, x, dx);
    }
    return centered ? dx.sub(dx.mean(new int[] {-1}, true)) : dx;
  }

  // ---- decoding ----

  /**
   * s_p of METHOD.md step 3 for each row of x ([n, d] float64, row-major): how a latent's decoder
   * row maps back to the residual, n⁻¹ of the row's clean statistics. 1 without a normalisation;
   * layer_norm's standard deviation (SAELens's n⁻¹ adds no eps); |c(x)|/sqrt(d) for constant_norm_rescale.
   */
  double[] decoderScale(double[] x, int rows) {
    int d = cfg.d_in();
    double[] s = new double[rows];
    for (int p = 0; p < rows; p++) {
      double mean = 0, squares = 0;
      for (int k = 0; k < d; k++) mean += x[p * d + k];
      mean /= d;
      double shift = centered || cfg.normalization() == Normalization.LAYER_NORM ? mean : 0;
      for (int k = 0; k < d; k++) squares += (x[p * d + k] - shift) * (x[p * d + k] - shift);
      s[p] = switch (cfg.normalization()) {
        case NONE -> 1;
        case LAYER_NORM -> Math.sqrt(squares / (d - 1));
        case CONSTANT_NORM_RESCALE -> Math.sqrt(squares / d);
      };
    }
    return s;
  }

  /** The decoder row of a latent, [d]. */
  public NDArray decoderRow(int latent) {
    return W_dec.get(latent);
  }

  /** The decoder rows of these latents, widened: [K, d] float64. */
  NDArray decoderRows(int[] latents) {
    return W_dec.get(W_dec.getManager().create(Arrays.stream(latents).asLongStream().toArray())).toType(DataType.FLOAT64, false);
  }

  // ---- loading ----

  /** The tensors sae_weights.safetensors may hold for each architecture, beyond scaling_factor. */
  private static Set<String> expectedTensors(Architecture a) {
    return switch (a) {
      case STANDARD, TOPK -> Set.of("W_enc", "b_enc", "W_dec", "b_dec");
      case JUMPRELU -> Set.of("W_enc", "b_enc", "W_dec", "b_dec", "threshold", "log_threshold");
      case GATED -> Set.of("W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec");
    };
  }

  /**
   * Loads an SAE folder ({@code cfg.json}, {@code sae_weights.safetensors}), checking it reads a
   * residual stream of this model's width. {@code centering} is the decision already made for it,
   * with where it came from.
   */
  public static Sae load(Path folder, SaeConfig cfg, Gpt2Config model, Setting centering, NDManager manager) {
    Path weights = folder.resolve("sae_weights.safetensors");
    if (!Files.isRegularFile(weights)) throw ResgraphException.unusable(folder, "has no sae_weights.safetensors");
    if (cfg.d_in() != model.n_embd()) {
      throw ResgraphException.unusable(cfg.file(), "d_in is " + cfg.d_in() + " but the model's n_embd is " + model.n_embd());
    }
    if (cfg.site().layer() >= model.n_layer()) {
      throw ResgraphException.unusable(cfg.file(), "hook " + cfg.site().hookName() + " is beyond the model's "
          + model.n_layer() + " layers");
    }
    return of(cfg, centering, SafeTensors.open(weights), manager);
  }

  /** Builds an SAE from tensors named as in {@code sae_weights.safetensors}. */
  public static Sae of(SaeConfig cfg, Setting centering, Tensors w, NDManager m) {
    int d = cfg.d_in(), s = cfg.d_sae();
    Set<String> unknown = new TreeSet<>(w.names());
    unknown.removeAll(expectedTensors(cfg.architecture()));
    unknown.remove("scaling_factor");
    if (!unknown.isEmpty()) {
      throw ResgraphException.unusable(w.origin(), "holds tensor" + (unknown.size() > 1 ? "s " : " ") + String.join(", ", unknown)
          + ", which a " + cfg.architecture().word() + " SAE does not have; resgraph reads "
          + String.join(", ", new TreeSet<>(expectedTensors(cfg.architecture()))) + " and scaling_factor");
    }
    List<Setting> notes = new ArrayList<>();
    notes.add(centering);
    // Read into direct buffers and folded there; the buffers become the arrays' storage.
    ByteBuffer wEnc = w.buffer("W_enc", d, s), wDec = w.buffer("W_dec", s, d);
    float[] bEnc = w.read(cfg.architecture() == Architecture.GATED ? "b_gate" : "b_enc", s);
    foldScalingFactor(cfg, w, wDec.asFloatBuffer(), notes);
    if (cfg.rescaleActsByDecoderNorm()) foldDecoderNorms(wEnc.asFloatBuffer(), bEnc, wDec.asFloatBuffer(), d, s);

    double[] threshold = null;
    Encoder magnitude = null;
    if (cfg.architecture() == Architecture.JUMPRELU) {
      threshold = threshold(w, s, notes);
    } else if (cfg.architecture() == Architecture.GATED) {
      float[] rMag = w.read("r_mag", s);
      ByteBuffer mag = ByteBuffer.allocateDirect(wEnc.capacity()).order(ByteOrder.nativeOrder()).put(wEnc.duplicate()).clear();
      FloatBuffer f = mag.asFloatBuffer();
      for (int k = 0; k < d; k++) for (int j = 0; j < s; j++) f.put(k * s + j, f.get(k * s + j) * (float) Math.exp(rMag[j]));
      magnitude = new Encoder(mag, w.read("b_mag", s), d, s, m);
    }
    SaeConfig recorded = cfg;
    for (Setting n : notes) recorded = recorded.with(n);
    return new Sae(recorded, centering.value().equals("on"), new Encoder(wEnc, bEnc, d, s, m),
        m.create(wDec, new Shape(s, d), DataType.FLOAT32), m.create(w.read("b_dec", d), new Shape(d)), threshold, magnitude, m);
  }

  /**
   * SAELens multiplies the latents by a {@code scaling_factor} tensor before the decoder when
   * cfg.json says finetuning_scaling_factor; the same is W_dec's rows scaled once. An all-ones
   * factor changes nothing (SAELens drops it); any other without the flag is refused, as SAELens does.
   */
  private static void foldScalingFactor(SaeConfig cfg, Tensors w, FloatBuffer wDec, List<Setting> notes) {
    int d = cfg.d_in(), s = cfg.d_sae();
    if (!w.has("scaling_factor")) {
      if (cfg.finetuningScalingFactor()) {
        throw ResgraphException.unusable(w.origin(), "has no scaling_factor tensor, but cfg.json says finetuning_scaling_factor");
      }
      return;
    }
    float[] factor = w.read("scaling_factor", s);
    boolean ones = true;
    for (float f : factor) ones &= Math.abs(f - 1) <= 1e-8 + 1e-5; // torch.allclose(factor, 1), as SAELens tests it
    if (ones) {
      notes.add(new Setting("scaling_factor", "all ones: no effect", "sae_weights.safetensors"));
      return;
    }
    if (!cfg.finetuningScalingFactor()) {
      throw ResgraphException.unusable(w.origin(), "holds a scaling_factor that is not all ones, but "
          + cfg.file().getFileName() + " does not set finetuning_scaling_factor: the SAE's decoder is ambiguous");
    }
    for (int j = 0; j < s; j++) for (int k = 0; k < d; k++) wDec.put(j * d + k, wDec.get(j * d + k) * factor[j]);
    notes.add(new Setting("scaling_factor", "multiplies the latents before the decoder (folded into W_dec)",
        "sae_weights.safetensors scaling_factor, cfg.json finetuning_scaling_factor"));
  }

  /**
   * SAELens 6's rescale_acts_by_decoder_norm: a TopK SAE picks and keeps latents scaled by their
   * decoder rows' norms, and decodes them divided again; the same is the encoder's columns and
   * b_enc scaled up and the decoder's rows scaled to unit norm, once.
   */
  private static void foldDecoderNorms(FloatBuffer wEnc, float[] bEnc, FloatBuffer wDec, int d, int s) {
    for (int j = 0; j < s; j++) {
      double norm = 0;
      for (int k = 0; k < d; k++) norm += (double) wDec.get(j * d + k) * wDec.get(j * d + k);
      float n = (float) Math.sqrt(norm);
      if (n == 0) continue; // a dead latent decodes to nothing either way
      for (int k = 0; k < d; k++) {
        wEnc.put(k * s + j, wEnc.get(k * s + j) * n);
        wDec.put(j * d + k, wDec.get(j * d + k) / n);
      }
      bEnc[j] *= n;
    }
  }

  /** JumpReLU's θ: the {@code threshold} tensor, or exp of {@code log_threshold} as SAELens trains it. */
  private static double[] threshold(Tensors w, int s, List<Setting> notes) {
    boolean direct = w.has("threshold"), log = w.has("log_threshold");
    if (direct == log) {
      throw ResgraphException.unusable(w.origin(), (direct ? "holds both threshold and log_threshold" : "has neither threshold nor "
          + "log_threshold") + ": a jumprelu SAE needs exactly one");
    }
    float[] t = w.read(direct ? "threshold" : "log_threshold", s);
    double[] theta = new double[s];
    for (int j = 0; j < s; j++) theta[j] = direct ? t[j] : Math.exp(t[j]);
    notes.add(new Setting("threshold", direct ? "threshold tensor" : "exp(log_threshold)", "sae_weights.safetensors"));
    return theta;
  }

  @Override
  public String toString() {
    return "SAE at " + site() + " (" + architecture().word() + ", " + d_sae() + " latents)";
  }
}
