package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import resgraph.model.SaeModel.TokenValue;

/**
 * METHOD.md step 8: ablate a latent as in step 3, run the rest of the model to the logits, and
 * rank the vocabulary by log_softmax(clean)[T] - log_softmax(ablated)[T].
 */
public final class LogitEffects {

  /** A latent (at a layer) and the tokens it promotes and suppresses, most extreme first. */
  public record Result(int layer, int latent, List<TokenValue> promotes, List<TokenValue> suppresses) {}

  /** Nodes per forward pass: bounds the [1 + n, vocabulary] logits held at once. */
  private static final int NODES_PER_PASS = 32;

  private LogitEffects() {}

  /**
   * Each {@code nodes[i] = {layer, latent}}, in the order given. The nodes of one layer run as one
   * batch beside a single clean row, so every row goes through identical arithmetic and the clean
   * pass is not repeated per node.
   */
  public static List<Result> run(SaeModel model, Trace trace, int[][] nodes, int target, int top) {
    Result[] out = new Result[nodes.length];
    float[][] coefs = new float[nodes.length][];
    Map<Integer, List<Integer>> byLayer = new TreeMap<>();
    for (int i = 0; i < nodes.length; i++) {
      int layer = nodes[i][0], latent = nodes[i][1];
      coefs[i] = trace.firing(layer, latent, model.firstAblatable(), target);
      if (fires(coefs[i])) {
        byLayer.computeIfAbsent(layer, l -> new ArrayList<>()).add(i);
      } else {
        // zero everywhere: the effect is exactly zero, and its extremes would be rounding noise
        out[i] = new Result(layer, latent, List.of(), List.of());
      }
    }
    byLayer.forEach((layer, indices) -> {
      for (int from = 0; from < indices.size(); from += NODES_PER_PASS) {
        List<Integer> part = indices.subList(from, Math.min(indices.size(), from + NODES_PER_PASS));
        int[] latents = part.stream().mapToInt(i -> nodes[i][1]).toArray();
        float[][] firing = part.stream().map(i -> coefs[i]).toArray(float[][]::new);
        List<Result> results = layer(model, trace, layer, latents, firing, target, top);
        for (int k = 0; k < part.size(); k++) out[part.get(k)] = results.get(k);
      }
    });
    return List.of(out);
  }

  private static boolean fires(float[] coef) {
    for (float c : coef) if (c > 0) return true;
    return false;
  }

  /** The latents of one layer, each ablated by its activations {@code firing[k]} at positions 0..target. */
  private static List<Result> layer(SaeModel model, Trace trace, int layer, int[] latents, float[][] firing, int target,
      int top) {
    Gpt2 gpt2 = model.gpt2;
    int m = target + 1, d = gpt2.config.n_embd(), n = latents.length;
    try (NDScope scope = new NDScope()) {
      NDArray x = model.manager().create(trace.resid(layer, m), new Shape(1, m, d)).toType(DataType.FLOAT32, false);
      NDList rows = new NDList(x);
      for (int k = 0; k < n; k++) {
        rows.add(x.sub(model.manager().create(firing[k], new Shape(1, m, 1)).mul(model.sae(layer).W_dec().get(latents[k]))));
      }
      NDArray all = NDArrays.concat(rows, 0); // [1 + n, m, d]: clean first
      NDArray last = gpt2.run(all, layer, gpt2.config.n_layer(), Gpt2.NO_HOOK).get(":, " + target + ":" + m); // [1 + n, 1, d]
      NDArray logProbs = gpt2.logits(last).reshape(n + 1, -1).logSoftmax(-1); // [1 + n, V]
      List<Result> out = new ArrayList<>(n);
      for (int k = 0; k < n; k++) {
        NDArray effect = logProbs.get(0).sub(logProbs.get(k + 1)); // [V]
        out.add(new Result(layer, latents[k], SaeModel.top(effect, top, true), SaeModel.top(effect, top, false)));
      }
      return out;
    }
  }
}
