package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A standard ReLU sparse autoencoder on one layer's residual stream, in the SAELens layout
 * ({@code W_enc [d, S]}, {@code b_enc [S]}, {@code W_dec [S, d]}, {@code b_dec [d]}).
 *
 * @param centered whether the SAE reads the residual minus its mean over d_model (it was
 *     trained on a TransformerLens model with centred writing weights)
 */
public record Sae(SaeConfig cfg, boolean centered, NDArray W_enc, NDArray b_enc, NDArray W_dec, NDArray b_dec) {

  public int layer() {
    return cfg.layer();
  }

  public int d_sae() {
    return cfg.d_sae();
  }

  /** The encoder input: c(x) - b_dec when b_dec is applied to the input. [.., d] -> [.., d]. */
  public NDArray input(NDArray x) {
    NDArray in = centered ? x.sub(x.mean(new int[] {-1}, true)) : x;
    return cfg.applyBDecToInput() ? in.sub(b_dec.toType(x.getDataType(), false)) : in;
  }

  /** How the encoder input moves when x moves by {@code delta}: b_dec cancels, centring does not. */
  public NDArray inputDelta(NDArray delta) {
    return centered ? delta.sub(delta.mean(new int[] {-1}, true)) : delta;
  }

  /** The pre-ReLU encoder output: [.., d] -> [.., S], in the dtype of x (the weights are widened to it). */
  public NDArray preActivation(NDArray x) {
    DataType t = x.getDataType();
    return input(x).matMul(W_enc.toType(t, false)).add(b_enc.toType(t, false));
  }

  /** f = ReLU(pre): [.., d] -> [.., S]. */
  public NDArray encode(NDArray x) {
    return preActivation(x).maximum(0f);
  }

  /** The folder of the SAE at {@code layer} within a folder of SAEs. */
  public static Path folder(Path saes, int layer) {
    return saes.resolve(SaeConfig.hookName(layer));
  }

  /** Loads the SAE at {@code layer}, checking it reads a residual stream of this model's width. */
  public static Sae load(Path folder, int layer, Gpt2Config model, boolean centered, NDManager manager) {
    Path cfgFile = folder.resolve("cfg.json");
    Path weightsFile = folder.resolve("sae_weights.safetensors");
    if (!Files.isRegularFile(cfgFile)) throw ModelException.unusable(folder, "has no cfg.json");
    if (!Files.isRegularFile(weightsFile)) throw ModelException.unusable(folder, "has no sae_weights.safetensors");
    SaeConfig cfg = SaeConfig.read(cfgFile, layer);
    if (cfg.d_in() != model.n_embd()) {
      throw ModelException.unusable(cfgFile, "d_in is " + cfg.d_in() + " but the model's n_embd is " + model.n_embd());
    }
    return of(cfg, centered, SafeTensors.open(weightsFile), manager);
  }

  /** Builds an SAE from tensors named as in {@code sae_weights.safetensors}. */
  public static Sae of(SaeConfig cfg, boolean centered, Tensors w, NDManager m) {
    long d = cfg.d_in(), s = cfg.d_sae();
    return new Sae(cfg, centered,
        m.create(w.read("W_enc", d, s), new Shape(d, s)),
        m.create(w.read("b_enc", s), new Shape(s)),
        m.create(w.read("W_dec", s, d), new Shape(s, d)),
        m.create(w.read("b_dec", d), new Shape(d)));
  }
}
