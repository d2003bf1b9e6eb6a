package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The seed code's procedure, kept only to compare against: for each latent in turn, rerun the
 * whole model from the embeddings to the logits with the latent zeroed at {@code layer}, then
 * subtract the clean activations of layer + 1 at the target. Same definition as
 * {@link ExactAblation}, at the cost of a full forward pass per latent and float32 cancellation.
 */
public final class NaiveAblation {

  private NaiveAblation() {}

  public static List<ExactAblation.Effects> run(SaeModel model, Trace trace, int layer, int[] latents, int target) {
    Gpt2 gpt2 = model.gpt2;
    Sae up = model.sae(layer), down = model.sae(layer + 1);
    int n = trace.length();
    List<ExactAblation.Effects> out = new ArrayList<>(latents.length);
    float[] before = clean(model, trace, layer, target);
    for (int latent : latents) {
      try (NDScope scope = new NDScope()) {
        float[] coef = Arrays.copyOf(trace.firing(layer, latent, model.firstAblatable(), target), n);
        NDArray ablation = model.manager().create(coef, new Shape(1, n, 1)).mul(up.W_dec().get(latent)); // [1, n, d]
        NDArray[] next = new NDArray[1];
        Gpt2.ResidHook hook = (l, resid) -> {
          if (l == layer + 1) next[0] = resid;
          return l == layer ? resid.sub(ablation) : resid;
        };
        NDArray logits = gpt2.logits(gpt2.run(gpt2.embed(trace.tokens()), 0, gpt2.config.n_layer(), hook));
        logits.getFloat(0, 0, 0); // the seed paid for the whole forward pass, logits included
        float[] after = down.encode(next[0].get(0, target)).toFloatArray();
        float[] e = new float[after.length];
        for (int j = 0; j < e.length; j++) e[j] = after[j] - before[j];
        int k = 0;
        for (float v : e) if (v != 0) k++;
        int[] js = new int[k];
        float[] es = new float[k];
        for (int j = 0, i = 0; j < e.length; j++) {
          if (e[j] != 0) {
            js[i] = j;
            es[i++] = e[j];
          }
        }
        out.add(new ExactAblation.Effects(latent, js, es));
      }
    }
    return out;
  }

  /** f_{l+1}[T] from one clean float32 run of the whole model, as the seed took it. */
  private static float[] clean(SaeModel model, Trace trace, int layer, int target) {
    Gpt2 gpt2 = model.gpt2;
    try (NDScope scope = new NDScope()) {
      NDArray[] next = new NDArray[1];
      Gpt2.ResidHook hook = (l, resid) -> {
        if (l == layer + 1) next[0] = resid;
        return resid;
      };
      gpt2.logits(gpt2.run(gpt2.embed(trace.tokens()), 0, gpt2.config.n_layer(), hook));
      return model.sae(layer + 1).encode(next[0].get(0, target)).toFloatArray();
    }
  }
}
