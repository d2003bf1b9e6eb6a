package resgraph.model;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.model.SaeConfig.Normalization;
import resgraph.model.SaeConfig.Setting;
import resgraph.platform.ResgraphException;

/**
 * GPT-2 with SAEs on sites of its residual stream: everything METHOD.md runs on. Immutable once
 * loaded, so one instance serves concurrent requests; it owns the native memory of its weights
 * until {@link #close()}.
 */
public final class SaeModel implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(SaeModel.class);

  public final Gpt2 gpt2;
  public final boolean prependBos;
  private final NavigableMap<Site, Sae> saes;
  private final NDManager manager;

  public SaeModel(Gpt2 gpt2, Map<Site, Sae> saes, NDManager manager) {
    if (saes.isEmpty()) throw new IllegalArgumentException("a model needs at least one SAE");
    this.gpt2 = gpt2;
    this.saes = Collections.unmodifiableNavigableMap(new TreeMap<>(saes));
    this.manager = manager;
    this.prependBos = saes.values().iterator().next().cfg.prependBos();
  }

  /** The device models load onto: the first GPU when DJL finds one, else the CPU. */
  public static Device defaultDevice() {
    return Engine.getInstance().getGpuCount() > 0 ? Device.gpu() : Device.cpu();
  }

  /**
   * Loads GPT-2 from {@code modelDir} and every SAE under {@code saesDir}: each folder holding a
   * cfg.json, whatever it is called (the folder itself, or its immediate subfolders), at the site
   * its cfg.json names.
   *
   * @param centering forces the SAEs' centring on or off (the command line); null decides per SAE
   * @param release what the release the folder holds says about centring, with how it was
   *     recognised; null when the folder is no known release
   */
  public static SaeModel load(Path modelDir, Path saesDir, Boolean centering, Setting release, Device device) {
    NDManager manager = NDManager.newBaseManager(device);
    try {
      LOG.info("loading GPT-2 from {}", modelDir);
      Gpt2 gpt2 = Gpt2.load(modelDir, manager);
      TreeMap<Site, Sae> saes = new TreeMap<>();
      for (SaeConfig cfg : configs(saesDir)) {
        Setting centred = centering(cfg, centering, release);
        LOG.info("loading the SAE at {} from {} ({} latents, {}, centring {})", cfg.site(), cfg.file().getParent(),
            cfg.d_sae(), cfg.architecture().word(), centred.value());
        Sae sae = Sae.load(cfg.file().getParent(), cfg, gpt2.config, centred, manager);
        Sae twin = saes.put(cfg.site(), sae);
        if (twin != null) {
          throw ResgraphException.unusable(saesDir, "holds two SAEs at " + cfg.site() + ": " + twin.cfg.file().getParent()
              + " and " + cfg.file().getParent() + "; point at a folder with one of them");
        }
      }
      Sae first = saes.firstEntry().getValue();
      for (Sae s : saes.values()) {
        if (s.cfg.prependBos() != first.cfg.prependBos()) {
          throw ResgraphException.unusable(saesDir, "the SAEs disagree on prepend_bos (" + first.site() + " says "
              + first.cfg.prependBos() + ", " + s.site() + " says " + s.cfg.prependBos() + ")");
        }
      }
      return new SaeModel(gpt2, saes, manager);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** The cfg.json of the folder itself, or of each immediate subfolder that has one, in folder-name order. */
  public static List<SaeConfig> configs(Path saesDir) {
    if (Files.isRegularFile(saesDir.resolve("cfg.json"))) return List.of(SaeConfig.read(saesDir.resolve("cfg.json")));
    List<SaeConfig> out = new ArrayList<>();
    try (Stream<Path> children = Files.list(saesDir)) {
      for (Path dir : children.filter(Files::isDirectory).sorted().toList()) {
        if (Files.isRegularFile(dir.resolve("cfg.json"))) out.add(SaeConfig.read(dir.resolve("cfg.json")));
      }
    } catch (IOException e) {
      throw ResgraphException.unusable(saesDir, "cannot list: " + e.getMessage());
    }
    if (out.isEmpty()) {
      throw ResgraphException.unusable(saesDir, "holds no SAE: no cfg.json in it or in any folder directly inside it");
    }
    return out;
  }

  /**
   * Whether an SAE reads the residual minus its mean over d_model, and why (METHOD.md): the
   * command line; else what SAELens's release table says, which SAELens lets override cfg.json;
   * else cfg.json; else nothing to decide when a layer_norm input removes the mean anyway.
   * Otherwise it is refused: a wrong guess would silently change every edge.
   */
  static Setting centering(SaeConfig cfg, Boolean override, Setting release) {
    if (override != null) return new Setting("centering", onOff(override), "command line (--centering)");
    if (release != null) return release;
    if (cfg.centerWritingWeights() != null) {
      return new Setting("centering", onOff(cfg.centerWritingWeights()), "cfg.json model_from_pretrained_kwargs.center_writing_weights");
    }
    if (cfg.normalization() == Normalization.LAYER_NORM) {
      return new Setting("centering", "off", "no effect: the SAE's layer_norm input removes the mean");
    }
    throw ResgraphException.unusable(cfg.file(), "does not say whether the SAE reads the residual with its mean removed "
        + "(model_from_pretrained_kwargs.center_writing_weights), and its folder is no release resgraph knows: "
        + "say --centering on (trained on TransformerLens's GPT-2 with centred writing weights, as gpt2-small-res-jb) "
        + "or --centering off (trained on the plain residual)");
  }

  private static String onOff(boolean on) {
    return on ? "on" : "off";
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

  /** The chain a request names (see {@link Chain#resolve}). */
  public Chain chain(Integer layerStart, Integer layerEnd, List<String> sites) {
    return Chain.resolve(saes.keySet(), gpt2.config.n_layer(), layerStart, layerEnd, sites);
  }

  // ---- request checks: each names the bad value and what would be accepted ----

  public void checkTokens(int[] tokens) {
    if (tokens.length <= firstAblatable()) {
      throw ResgraphException.badRequest("the prompt is empty" + (tokens.length == 1 ? " (only the BOS token)" : ""));
    }
    int max = gpt2.config.n_positions();
    if (tokens.length > max) {
      throw ResgraphException.badRequest("the prompt is " + tokens.length + " tokens" + (prependBos ? " with BOS" : "")
          + "; this model takes at most " + max);
    }
    if (prependBos && tokens[0] != Gpt2Tokenizer.END_OF_TEXT) {
      throw ResgraphException.badRequest("the tokens start with " + tokens[0] + ", not <|endoftext|> (" + Gpt2Tokenizer.END_OF_TEXT
          + "): these SAEs were trained with it prepended (prepend_bos), as Tokenize returns them");
    }
    for (int i = 0; i < tokens.length; i++) {
      if (tokens[i] < 0 || tokens[i] >= gpt2.config.vocab_size()) {
        throw ResgraphException.badRequest("token " + tokens[i] + " at position " + i + " is outside the vocabulary 0.."
            + (gpt2.config.vocab_size() - 1));
      }
    }
  }

  /** The target position: the last token when absent; must be an ablatable position. */
  public int target(Integer target, int length) {
    if (target == null) return length - 1;
    if (target < firstAblatable() || target >= length) {
      throw ResgraphException.badRequest("target position " + target + " is outside " + firstAblatable() + ".."
          + (length - 1) + (prependBos ? " (position 0 is the BOS token)" : ""));
    }
    return target;
  }

  /** The SAE at a site, or a clear refusal naming the sites that have one. */
  public Sae sae(Site site) {
    Sae s = saes.get(site);
    if (s == null) throw ResgraphException.badRequest(site.shortName() + " (" + site + ") has no SAE; SAEs are at "
        + Chain.describe(saes.keySet()));
    return s;
  }

  /**
   * The site a request names by layer alone ({@code blocks.{layer}.hook_resid_*}), when the SAEs
   * sit at one kind of site; with several kinds a layer is ambiguous and the site must be named.
   */
  public Site siteOfLayer(int layer) {
    List<Site> atLayer = saes.keySet().stream().filter(s -> s.layer() == layer).toList();
    if (atLayer.size() == 1) return atLayer.get(0);
    throw ResgraphException.badRequest("layer " + layer + (atLayer.isEmpty() ? " has no SAE" : " has SAEs at several sites")
        + "; SAEs are at " + Chain.describe(saes.keySet()) + (atLayer.isEmpty() ? "" : ": name the site (e.g. " + atLayer.get(0).shortName() + ")"));
  }

  public void checkLatent(Site site, long latent) {
    int size = sae(site).d_sae();
    if (latent < 0 || latent >= size) {
      throw ResgraphException.badRequest("latent " + latent + " is outside 0.." + (size - 1) + " of the SAE at " + site.shortName());
    }
  }

  // ---- the clean pass ----

  /**
   * METHOD.md step 1: every residual stream and every SAE's activations at every position, in
   * float64 (each block's weights are widened as the pass reaches it, and released after).
   */
  public Trace trace(int[] tokens) {
    checkTokens(tokens);
    int last = 2 * gpt2.config.n_layer();
    double[][] streams = new double[last + 1][];
    Map<Site, Trace.SparseRow[]> acts = new TreeMap<>();
    try (NDScope scope = new NDScope()) {
      NDArray x = gpt2.embed(tokens, DataType.FLOAT64); // [1, n, d]
      for (int r = 0; ; r++) {
        streams[r] = x.toDoubleArray();
        for (Sae sae : saes.values()) {
          if (sae.site().stream() != r) continue;
          try (NDScope saeScope = new NDScope()) {
            acts.put(sae.site(), sae.encode(x.get(0)));
          }
        }
        if (r == last) break;
        x = gpt2.stepAndFree(r, x);
      }
    }
    return new Trace(tokens, gpt2.config.n_embd(), streams, acts);
  }

  /** A token with a value: a probability for predictions, a log-probability change for effects. */
  public record TokenValue(int id, String token, float value) {}

  /** The {@code k} likeliest next tokens at the target, likeliest first. */
  public List<TokenValue> predictions(Trace trace, int target, int k) {
    try (NDScope scope = new NDScope()) {
      int d = gpt2.config.n_embd();
      NDArray x = manager.create(trace.streamAt(2 * gpt2.config.n_layer(), target)).toType(DataType.FLOAT32, false)
          .reshape(1, 1, d);
      NDArray probs = gpt2.logits(x).reshape(-1).softmax(0); // [V]
      return top(probs, k, true);
    }
  }

  /** The k largest (or smallest) entries of a vector as tokens, extreme first. */
  static List<TokenValue> top(NDArray values, int k, boolean largest) {
    NDList best = values.topK(Math.min(k, (int) values.size()), 0, largest, true);
    double[] v = best.get(0).toType(DataType.FLOAT64, false).toDoubleArray();
    long[] ids = best.get(1).toLongArray();
    List<TokenValue> out = new ArrayList<>(v.length);
    for (int i = 0; i < v.length; i++) out.add(new TokenValue((int) ids[i], Gpt2Tokenizer.decode((int) ids[i]), (float) v[i]));
    return out;
  }

  NDManager manager() {
    return manager;
  }

  /**
   * The bytes of the float32 arrays the loaded model holds: GPT-2's and the SAEs' weights, and the
   * few per-latent norms the encoders keep beside theirs (a fraction of a percent). What a server's
   * resident memory is compared with.
   */
  public long weightBytes() {
    return manager.getManagedArrays().stream().filter(a -> a.getDataType() == DataType.FLOAT32).mapToLong(a -> a.size() * 4L).sum();
  }

  @Override
  public void close() {
    manager.close();
  }
}
