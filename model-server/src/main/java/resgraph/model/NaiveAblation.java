package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * The seed code's procedure, kept only to compare against: for each latent in turn, rerun the
 * whole model from the embeddings to the logits with the latent zeroed at its site, then subtract
 * the clean activations of the next site at the target. Same definition as {@link ExactAblation},
 * at the cost of a full forward pass per latent and float32 cancellation.
 */
public final class NaiveAblation {

  private NaiveAblation() {}

  public static List<ExactAblation.Effects> run(SaeModel model, Trace trace, Site up, Site down, int[] latents, int target) {
    Sae from = model.sae(up), to = model.sae(down);
    int n = trace.length();
    double[] scale = from.decoderScale(trace.stream(up.stream(), n), n);
    List<ExactAblation.Effects> out = new ArrayList<>(latents.length);
    float[] before = dense(pass(model, trace, up, down, target, null), to.d_sae());
    for (int latent : latents) {
      try (NDScope scope = new NDScope()) {
        float[] f = trace.firing(up, latent, model.firstAblatable(), target);
        float[] coef = new float[n];
        for (int p = 0; p < f.length; p++) coef[p] = (float) (scale[p] * f[p]);
        NDArray ablation = model.manager().create(coef, new Shape(1, n, 1)).mul(from.decoderRow(latent)); // [1, n, d]
        float[] after = dense(pass(model, trace, up, down, target, ablation), to.d_sae());
        List<Integer> nonzero = new ArrayList<>();
        for (int j = 0; j < after.length; j++) if (after[j] != before[j]) nonzero.add(j);
        int[] js = nonzero.stream().mapToInt(Integer::intValue).toArray();
        float[] es = new float[js.length];
        for (int k = 0; k < js.length; k++) es[k] = after[js[k]] - before[js[k]];
        out.add(new ExactAblation.Effects(latent, js, es));
      }
    }
    return out;
  }

  /** One float32 run of the whole model (logits included, as the seed paid for them), the next SAE read on the way. */
  private static Trace.SparseRow pass(SaeModel model, Trace trace, Site up, Site down, int target, NDArray ablation) {
    Gpt2 gpt2 = model.gpt2;
    Trace.SparseRow[][] next = new Trace.SparseRow[1][];
    Gpt2.StreamHook hook = (r, resid) -> {
      if (r == up.stream() && ablation != null) resid = resid.sub(ablation);
      if (r == down.stream()) next[0] = model.sae(down).encode(resid.get("0, " + target + ":" + (target + 1))); // [1, d]
      return resid;
    };
    NDArray logits = gpt2.logits(gpt2.run(gpt2.embed(trace.tokens()), 0, 2 * gpt2.config.n_layer(), hook));
    logits.getFloat(0, 0, 0);
    return next[0][0];
  }

  private static float[] dense(Trace.SparseRow row, int width) {
    float[] f = new float[width];
    for (int i = 0; i < row.latents().length; i++) f[row.latents()[i]] = row.values()[i];
    return f;
  }
}
