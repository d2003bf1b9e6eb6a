package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import resgraph.model.SaeModel.TokenValue;

/**
 * METHOD.md step 8: ablate a latent as in step 3, run the rest of the model to the logits, and
 * rank the vocabulary by log_softmax(clean)[T] - log_softmax(ablated)[T].
 */
public final class LogitEffects {

  /** A latent (at a layer) and the tokens it promotes and suppresses, most extreme first. */
  public record Result(int layer, int latent, List<TokenValue> promotes, List<TokenValue> suppresses) {}

  private LogitEffects() {}

  /** Each {@code nodes[i] = {layer, latent}}, in the order given. */
  public static List<Result> run(SaeModel model, Trace trace, int[][] nodes, int target, int top) {
    List<Result> out = new ArrayList<>(nodes.length);
    for (int[] node : nodes) out.add(one(model, trace, node[0], node[1], target, top));
    return out;
  }

  private static Result one(SaeModel model, Trace trace, int layer, int latent, int target, int top) {
    Gpt2 gpt2 = model.gpt2;
    int m = target + 1, d = gpt2.config.n_embd();
    float[] coef = trace.firing(layer, latent, model.firstAblatable(), target);
    boolean fires = false;
    for (float c : coef) fires |= c > 0;
    // Zero everywhere: the effect is exactly zero, and its extremes would be rounding noise.
    if (!fires) return new Result(layer, latent, List.of(), List.of());
    try (NDScope scope = new NDScope()) {
      NDArray x = model.manager().create(trace.resid(layer, m), new Shape(1, m, d)).toType(DataType.FLOAT32, false);
      NDArray ablation = model.manager().create(coef, new Shape(1, m, 1)).mul(model.sae(layer).W_dec().get(latent));
      // Clean and ablated side by side, so both go through identical arithmetic.
      NDArray both = x.concat(x.sub(ablation), 0); // [2, m, d]
      NDArray last = gpt2.run(both, layer, gpt2.config.n_layer(), Gpt2.NO_HOOK).get(":, " + target + ":" + m); // [2, 1, d]
      NDArray logProbs = gpt2.logits(last).reshape(2, -1).logSoftmax(-1); // [2, V]
      NDArray effect = logProbs.get(0).sub(logProbs.get(1)); // [V]
      return new Result(layer, latent, SaeModel.top(effect, top, true), SaeModel.top(effect, top, false));
    }
  }
}
