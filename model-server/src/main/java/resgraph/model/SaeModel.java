package resgraph.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * GPT-2 with an SAE on the residual stream of some or all of its layers: everything METHOD.md
 * runs on. Immutable once loaded, so one instance serves concurrent requests; it owns the native
 * memory of its weights until {@link #close()}.
 */
public final class SaeModel implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(SaeModel.class);

  public final Gpt2 gpt2;
  public final boolean prependBos;
  private final NavigableMap<Integer, Sae> saes;
  private final NDManager manager;

  public SaeModel(Gpt2 gpt2, Map<Integer, Sae> saes, NDManager manager) {
    if (saes.isEmpty()) throw new IllegalArgumentException("a model needs at least one SAE");
    this.gpt2 = gpt2;
    this.saes = Collections.unmodifiableNavigableMap(new TreeMap<>(saes));
    this.manager = manager;
    this.prependBos = saes.values().iterator().next().cfg().prependBos();
  }

  /** The device models load onto: the first GPU when DJL finds one, else the CPU. */
  public static Device defaultDevice() {
    return Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
  }

  /**
   * Loads GPT-2 from {@code modelDir} and every {@code blocks.{l}.hook_resid_pre} SAE folder found
   * in {@code saesDir}.
   *
   * @param centering forces the SAEs' centering on or off; null decides per SAE from its cfg.json,
   *     then from {@code releaseCentered}
   */
  public static SaeModel load(Path modelDir, Path saesDir, Boolean centering, boolean releaseCentered, Device device) {
    NDManager manager = NDManager.newBaseManager(device);
    try {
      LOG.info("loading GPT-2 from {}", modelDir);
      Gpt2 gpt2 = Gpt2.load(modelDir, manager);
      Map<Integer, Sae> saes = new TreeMap<>();
      for (int l = 0; l < gpt2.config.n_layer(); l++) {
        Path folder = Sae.folder(saesDir, l);
        if (!Files.isDirectory(folder)) continue;
        SaeConfig cfg = SaeConfig.read(folder.resolve("cfg.json"), l);
        boolean centered = centering != null ? centering
            : cfg.centerWritingWeights() != null ? cfg.centerWritingWeights() : releaseCentered;
        LOG.info("loading SAE {} ({} latents{})", folder, cfg.d_sae(), centered ? ", centred input" : "");
        saes.put(l, Sae.load(folder, l, gpt2.config, centered, manager));
      }
      if (saes.isEmpty()) {
        throw ModelException.unusable(saesDir, "holds no SAE folder named blocks.{layer}.hook_resid_pre for layers 0.."
            + (gpt2.config.n_layer() - 1));
      }
      boolean bos = saes.values().iterator().next().cfg().prependBos();
      for (Sae s : saes.values()) {
        if (s.cfg().prependBos() != bos) {
          throw ModelException.unusable(saesDir, "the SAEs disagree on prepend_bos (layer " + s.layer() + " says "
              + s.cfg().prependBos() + ")");
        }
      }
      return new SaeModel(gpt2, saes, manager);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  public Gpt2Config config() {
    return gpt2.config;
  }

  public Collection<Sae> saes() {
    return saes.values();
  }

  public String device() {
    return manager.getDevice().toString();
  }

  /** The first position an ablation may touch: 1 when position 0 is the prepended BOS. */
  public int firstAblatable() {
    return prependBos ? 1 : 0;
  }

  public int[] tokenize(String text) {
    return Gpt2Tokenizer.encode(text, prependBos);
  }

  // ---- request checks: each names the bad value and what would be accepted ----

  public void checkTokens(int[] tokens) {
    if (tokens.length <= firstAblatable()) {
      throw ModelException.badRequest("the prompt is empty" + (tokens.length == 1 ? " (only the BOS token)" : ""));
    }
    int max = gpt2.config.n_positions();
    if (tokens.length > max) {
      throw ModelException.badRequest("the prompt is " + tokens.length + " tokens" + (prependBos ? " with BOS" : "")
          + "; this model takes at most " + max);
    }
    for (int i = 0; i < tokens.length; i++) {
      if (tokens[i] < 0 || tokens[i] >= gpt2.config.vocab_size()) {
        throw ModelException.badRequest("token " + tokens[i] + " at position " + i + " is outside the vocabulary 0.."
            + (gpt2.config.vocab_size() - 1));
      }
    }
  }

  /** The target position: the last token when absent; must be an ablatable position. */
  public int target(Integer target, int length) {
    if (target == null) return length - 1;
    if (target < firstAblatable() || target >= length) {
      throw ModelException.badRequest("target position " + target + " is outside " + firstAblatable() + ".."
          + (length - 1) + (prependBos ? " (position 0 is the BOS token)" : ""));
    }
    return target;
  }

  /** The SAE at a layer, or a clear refusal naming the layers that have one. */
  public Sae sae(int layer) {
    Sae s = saes.get(layer);
    if (s == null) {
      throw ModelException.badRequest("layer " + layer + " has no SAE; SAEs are at layers " + saes.keySet());
    }
    return s;
  }

  /** Checks that {@code layer} and {@code layer + 1} both have SAEs, as an ablation needs. */
  public void checkAblatableLayer(int layer) {
    if (layer < 0 || layer >= gpt2.config.n_layer() - 1) {
      throw ModelException.badRequest("layer " + layer + " is outside 0.." + (gpt2.config.n_layer() - 2)
          + ": the ablated layer needs a next layer to measure");
    }
    sae(layer);
    sae(layer + 1);
  }

  public void checkLatent(int layer, long latent) {
    int size = sae(layer).d_sae();
    if (latent < 0 || latent >= size) {
      throw ModelException.badRequest("latent " + latent + " is outside 0.." + (size - 1) + " of layer " + layer + "'s SAE");
    }
  }

  // ---- the clean pass ----

  /**
   * METHOD.md step 1: every x_l and every f_l at every position, in float64 (each block's weights
   * are widened as the pass reaches it, and released after).
   */
  public Trace trace(int[] tokens) {
    checkTokens(tokens);
    int layers = gpt2.config.n_layer();
    double[][] resid = new double[layers + 1][];
    Map<Integer, Trace.SparseRow[]> acts = new TreeMap<>();
    try (NDScope scope = new NDScope()) {
      NDArray x = gpt2.embed(tokens, DataType.FLOAT64); // [1, n, d]
      for (int l = 0; l <= layers; l++) {
        resid[l] = x.toDoubleArray();
        Sae sae = saes.get(l);
        if (sae != null) {
          try (NDScope layerScope = new NDScope()) {
            acts.put(l, sparseRows(sae.encode(x.get(0)), tokens.length));
          }
        }
        if (l < layers) x = gpt2.block(gpt2.h.get(l), x);
      }
    }
    return new Trace(tokens, gpt2.config.n_embd(), resid, acts);
  }

  /** [n, S] -> one sparse row per position, from the nonzero entries only. */
  private static Trace.SparseRow[] sparseRows(NDArray f, int n) {
    long width = f.getShape().get(1);
    NDArray nz = f.nonzero(); // [K, 2]: (position, latent), row-major order
    long[] at = nz.toLongArray();
    float[] values = f.flatten().get(nz.get(":, 0").mul(width).add(nz.get(":, 1"))).toType(DataType.FLOAT32, false)
        .toFloatArray();
    int[] counts = new int[n];
    for (int k = 0; k < values.length; k++) counts[(int) at[2 * k]]++;
    Trace.SparseRow[] rows = new Trace.SparseRow[n];
    int k = 0;
    for (int p = 0; p < n; p++) {
      int[] latents = new int[counts[p]];
      float[] vals = new float[counts[p]];
      for (int i = 0; i < counts[p]; i++, k++) {
        latents[i] = (int) at[2 * k + 1];
        vals[i] = values[k];
      }
      rows[p] = new Trace.SparseRow(latents, vals);
    }
    return rows;
  }

  /** A token with a value: a probability for predictions, a log-probability change for effects. */
  public record TokenValue(int id, String token, float value) {}

  /** The {@code k} likeliest next tokens at the target, likeliest first. */
  public List<TokenValue> predictions(Trace trace, int target, int k) {
    try (NDScope scope = new NDScope()) {
      int d = gpt2.config.n_embd();
      NDArray x = manager.create(trace.residAt(gpt2.config.n_layer(), target)).toType(DataType.FLOAT32, false)
          .reshape(1, 1, d);
      NDArray probs = gpt2.logits(x).reshape(-1).softmax(0); // [V]
      return top(probs, k, true);
    }
  }

  /** The k largest (or smallest) entries of a vector as tokens, extreme first. */
  static List<TokenValue> top(NDArray values, int k, boolean largest) {
    NDList best = values.topK(Math.min(k, (int) values.size()), 0, largest, true);
    float[] v = best.get(0).toFloatArray();
    long[] ids = best.get(1).toLongArray();
    List<TokenValue> out = new ArrayList<>(v.length);
    for (int i = 0; i < v.length; i++) out.add(new TokenValue((int) ids[i], Gpt2Tokenizer.decode((int) ids[i]), v[i]));
    return out;
  }

  NDManager manager() {
    return manager;
  }

  @Override
  public void close() {
    manager.close();
  }
}
