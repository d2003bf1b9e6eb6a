package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import resgraph.platform.ResgraphException;

/**
 * METHOD.md "Approximations": edge weights from gradients instead of ablations. With δ_i[p] the
 * change ablating latent i makes at position p (step 3) and F_j the next site's latent j at the
 * target, as a function of the residual x at this site:
 *
 * <pre>
 *   attribution            ê[i,j] = Σ_p δ_i[p] · ∂F_j/∂x[p], at the clean residual
 *   integrated gradients   the same gradient averaged over x + ((s - ½)/S)·Δ, s = 1..S, Δ = Σ_i δ_i
 * </pre>
 *
 * over every candidate i of the site. F_j's gradient is its pre-activation's where j is on and zero
 * elsewhere, so a point costs one backward pass per batch of the latents on there, however many
 * upstream latents are asked about. Everything is float64, through DJL's autograd on the engine
 * that runs the forward pass.
 *
 * <p>Shapes: {@code n} = T + 1 positions (nothing after the target reaches it), {@code d} =
 * d_model, {@code J} downstream latents in a backward pass, {@code I} upstream latents asked about.
 */
public final class Attribution {

  public enum Method { ATTRIBUTION, INTEGRATED_GRADIENTS }

  /** DJL's PyTorch engine lets one gradient collector record at a time in the whole process. */
  private static final Object AUTOGRAD = new Object();
  /** Elements of float64 activations a backward pass may hold, about 256 MB; bounds J. */
  private static final long PASS_ELEMENTS = 1L << 25;

  private final SaeModel model;
  private final Site up, down;
  private final int target;
  private final NDManager nd;

  private Attribution(SaeModel model, Site up, Site down, int target) {
    this.model = model;
    this.up = up;
    this.down = down;
    this.target = target;
    this.nd = model.manager();
  }

  /** ê for each latent of {@code up} on the latents of {@code down} at the target, in the order given; nonzero entries only. */
  public static List<ExactAblation.Effects> run(SaeModel model, Trace trace, Site up, Site down, int[] latents, int target,
      Method method, int steps) {
    Chain.checkHop(up, down);
    if (steps < 1) throw ResgraphException.badRequest("integrated gradients need at least one step, not " + steps);
    model.sae(down);
    try (NDScope scope = new NDScope()) {
      return new Attribution(model, up, down, target).edges(trace, latents, method, steps);
    }
  }

  private List<ExactAblation.Effects> edges(Trace trace, int[] latents, Method method, int steps) {
    int n = target + 1, d = model.config().n_embd();
    double[] residual = trace.stream(up.stream(), n);
    NDArray x = nd.create(residual, new Shape(n, d)); // [n, d] float64
    double[] scale = model.sae(up).decoderScale(residual, n);
    double[][] coefficients = coefficients(trace, latents, scale);
    Upstream asked = new Upstream(latents, coefficients, latents.length == 0 ? null : model.sae(up).decoderRows(latents),
        Upstream.firing(coefficients, n));
    Map<Integer, double[]> weights = new TreeMap<>(); // j -> ê[., j] over the I latents
    if (method == Method.ATTRIBUTION) {
      accumulate(weights, x, asked, 1);
    } else {
      int[] candidates = trace.candidates(up, model.firstAblatable(), target);
      NDArray delta = candidates.length == 0 ? x.zerosLike() // Δ: [n, d]
          : nd.create(flatten(coefficients(trace, candidates, scale)), new Shape(candidates.length, n)).transpose()
              .matMul(model.sae(up).decoderRows(candidates)); // [n, K] x [K, d]
      for (int s = 1; s <= steps; s++) {
        try (NDScope step = new NDScope()) {
          accumulate(weights, x.add(delta.mul((s - 0.5) / steps)), asked, 1.0 / steps);
        }
      }
    }
    List<ExactAblation.Effects> out = new ArrayList<>(latents.length);
    for (int i = 0; i < latents.length; i++) {
      List<Integer> downstream = new ArrayList<>();
      List<Float> values = new ArrayList<>();
      for (Map.Entry<Integer, double[]> column : weights.entrySet()) {
        float w = (float) column.getValue()[i];
        if (w != 0) {
          downstream.add(column.getKey());
          values.add(w);
        }
      }
      float[] delta = new float[values.size()];
      for (int k = 0; k < delta.length; k++) delta[k] = values.get(k);
      out.add(new ExactAblation.Effects(latents[i], downstream.stream().mapToInt(Integer::intValue).toArray(), delta));
    }
    return out;
  }

  /**
   * The latents asked about, with what every point of a path reads of them: step 3's coefficients
   * [I][n], their decoder rows [I, d] float64, and per position the indices of those that fire there.
   */
  private record Upstream(int[] latents, double[][] coefficients, NDArray decoder, List<long[]> firing) {

    /** Per position 0..n-1, the indices of the latents whose coefficient there is nonzero. */
    static List<long[]> firing(double[][] coefficients, int n) {
      List<long[]> firing = new ArrayList<>();
      for (int p = 0; p < n; p++) {
        int at = p;
        firing.add(IntStream.range(0, coefficients.length).filter(i -> coefficients[i][at] != 0).asLongStream().toArray());
      }
      return firing;
    }
  }

  /** -s_p·f[p, i] at each ablatable position up to the target, 0 elsewhere: step 3's change is this times W_dec[i]. */
  private double[][] coefficients(Trace trace, int[] latents, double[] scale) {
    double[][] c = new double[latents.length][target + 1];
    for (int i = 0; i < latents.length; i++) {
      float[] f = trace.firing(up, latents[i], model.firstAblatable(), target);
      for (int p = 0; p <= target; p++) c[i][p] = -scale[p] * f[p];
    }
    return c;
  }

  /**
   * Adds weight·Σ_p δ_i[p]·∂F_j/∂x[p] at residual {@code point} to every latent j on there. A latent
   * fires at few positions, so the products are taken position by position, for the latents that
   * fire there only.
   */
  private void accumulate(Map<Integer, double[]> weights, NDArray point, Upstream asked, double weight) {
    int[] on = on(point);
    int n = target + 1, d = model.config().n_embd(), count = asked.latents().length;
    long perRow = (long) n * (model.config().n_head() * n + 20L * d);
    int rows = (int) Math.max(1, Math.min(64, PASS_ELEMENTS / perRow));
    for (int start = 0; start < on.length; start += rows) {
      int[] batch = Arrays.copyOfRange(on, start, Math.min(on.length, start + rows));
      try (NDScope scope = new NDScope()) {
        NDArray gradient = gradients(point, batch); // [J, n, d]
        double[][] columns = new double[batch.length][];
        for (int k = 0; k < batch.length; k++) columns[k] = weights.computeIfAbsent(batch[k], j -> new double[count]);
        for (int p = 0; p < n; p++) {
          long[] at = asked.firing().get(p);
          if (at.length == 0) continue;
          double[] dots = asked.decoder().get(nd.create(at)).matMul(gradient.get(":, " + p + ", :").transpose()).toDoubleArray(); // [k, J]
          for (int k = 0; k < at.length; k++) {
            int i = (int) at[k];
            for (int b = 0; b < batch.length; b++) columns[b][i] += weight * asked.coefficients()[i][p] * dots[k * batch.length + b];
          }
        }
      }
    }
  }

  /** The latents of the next site on at the target when this site's residual is {@code point} [n, d]. */
  private int[] on(NDArray point) {
    try (NDScope scope = new NDScope()) {
      NDArray y = forward(point.expandDims(0)).get(0); // [1, d]
      return model.sae(down).encode(y)[0].latents();
    }
  }

  /**
   * ∂pre_j/∂x for each latent j of {@code on} at residual {@code point}: [J, n, d]. A gated SAE's
   * latent is its magnitude path's pre-activation where the gate is open, so that is the one derived.
   */
  private NDArray gradients(NDArray point, int[] on) {
    Sae sae = model.sae(down);
    Encoder encoder = sae.magnitude != null ? sae.magnitude : sae.gate;
    NDArray columns = encoder.columns(nd.create(Arrays.stream(on).asLongStream().toArray())).toType(DataType.FLOAT64, false)
        .transpose(); // [J, d]: row k is W_enc[:, on[k]]
    NDArray x = point.expandDims(0).repeat(0, on.length); // [J, n, d]: one copy of the residual per latent
    synchronized (AUTOGRAD) {
      try (GradientCollector collector = nd.getEngine().newGradientCollector()) {
        x.setRequiresGradient(true);
        NDArray in = sae.input(forward(x).get(":, 0, :")); // [J, d]
        collector.backward(in.mul(columns).sum()); // Σ_k pre_{on[k]} of copy k; b_enc has no gradient
      }
    }
    return x.getGradient();
  }

  /**
   * The computation from this site to the next, at the target only: [B, n, d] -> [B, 1, d]. Steps
   * before the span's last attention run at every position, since that attention reads them all;
   * from it on only the target's row (the last) is computed.
   */
  private NDArray forward(NDArray x) {
    int from = up.stream(), to = down.stream(), lastAttention = (to - 1) % 2 == 0 ? to - 1 : to - 2;
    for (int r = from; r < to; r++) x = r < lastAttention ? model.gpt2.step(r, x) : model.gpt2.step(r, x, (int) x.getShape().get(1) - 1);
    return x;
  }

  private static double[] flatten(double[][] rows) {
    return Arrays.stream(rows).flatMapToDouble(Arrays::stream).toArray();
  }
}
