package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.IntStream;
import resgraph.model.SaeConfig.Architecture;
import resgraph.platform.ResgraphException;

/**
 * METHOD.md steps 3-5 for many latents of one site at once: ablate each, run only the computation
 * from its site to the next site of the chain ({@link DeltaPass}), and encode the change at the
 * target with the next site's SAE.
 *
 * <p>The next SAE's encoder acts on the change alone, one GEMM for the batch; its activation is
 * then evaluated in float64 at the clean and the changed pre-activations, for the latents that
 * are on before or can be on after, found on the device first so that only those are read.
 *
 * <p>Shapes: {@code B} latents in a batch, {@code S} latents of the next SAE, {@code C} columns read.
 */
public final class ExactAblation {

  /** The nonzero effects of ablating one latent: e[j] for each j in {@code downstream}, ascending. */
  public record Effects(int latent, int[] downstream, float[] delta) {}

  /**
   * The next SAE's clean pre-activations at the target: for every latent, float32 values and bounds
   * on their rounding, to find the columns an ablation can change; exact float64 values only for
   * the columns batches read, taken as they read them (a gated SAE's magnitudes alike).
   */
  private static final class Clean implements Trace.Sized {
    final double[] x; // [d]: the residual at the site, at the target
    final int[] active; // the latents on at the target
    final float[] gate, gateRadius, magnitude, magnitudeRadius; // [S]; magnitude's null unless gated
    final double[] exactGate, exactMagnitude; // [S], where taken
    private final boolean[] taken;

    Clean(Sae down, NDManager nd, double[] x, int[] active) {
      this.x = x;
      this.active = active;
      try (NDScope scope = new NDScope()) {
        NDArray in = down.input(nd.create(x, new Shape(1, x.length)));
        Encoder.Bounded g = down.gate.bounded(in), m = down.magnitude == null ? null : down.magnitude.bounded(in);
        this.gate = g.value().toFloatArray();
        this.gateRadius = g.radius().toFloatArray();
        this.magnitude = m == null ? null : m.value().toFloatArray();
        this.magnitudeRadius = m == null ? null : m.radius().toFloatArray();
      }
      this.exactGate = new double[gate.length];
      this.exactMagnitude = magnitude == null ? null : new double[gate.length];
      this.taken = new boolean[gate.length];
    }

    /** Makes the exact values of these columns available, computing those not taken yet. */
    synchronized void take(Sae down, NDManager nd, int[] columns) {
      long[] missing = Arrays.stream(columns).filter(j -> !taken[j]).asLongStream().toArray();
      if (missing.length == 0) return;
      try (NDScope scope = new NDScope()) {
        NDArray in = down.input(nd.create(x, new Shape(1, x.length)));
        NDArray at = nd.create(missing);
        double[] g = down.gate.exact(in, at).toDoubleArray();
        double[] m = exactMagnitude == null ? null : down.magnitude.exact(in, at).toDoubleArray();
        for (int i = 0; i < missing.length; i++) {
          int j = (int) missing[i];
          exactGate[j] = g[i];
          if (m != null) exactMagnitude[j] = m[i];
          taken[j] = true;
        }
      }
    }

    @Override
    public long bytes() {
      int s = gate.length;
      return 8L * x.length + 4L * active.length + (magnitude == null ? 12L : 28L) * s + s;
    }
  }

  private final Sae down;
  private final NDManager nd;
  private final Clean clean;
  private final NDArray x; // [1, d] float64: the residual at the next site, at the target
  private final NDArray gate32, gateRadius32, magnitude32; // [S]: the clean float32 values and the gate's bounds

  private ExactAblation(SaeModel model, Trace trace, Site site, int target) {
    this.down = model.sae(site);
    this.nd = model.manager();
    int d = model.config().n_embd();
    this.clean = trace.derived("pre-activations " + site + " at " + target,
        () -> new Clean(down, nd, trace.streamAt(site.stream(), target), trace.acts(site)[target].latents()));
    this.x = nd.create(clean.x, new Shape(1, d));
    this.gate32 = nd.create(clean.gate);
    this.gateRadius32 = nd.create(clean.gateRadius);
    this.magnitude32 = clean.magnitude == null ? null : nd.create(clean.magnitude);
  }

  /** The effects of each latent of {@code up} on the latents of {@code down} at the target, in the order given. */
  public static List<Effects> run(SaeModel model, Trace trace, Site up, Site down, int[] latents, int target, int batch) {
    if (down.compareTo(up) <= 0 || down.stream() == up.stream()) {
      throw ResgraphException.badRequest("effects are measured at a site after the ablated one, and " + down.shortName()
          + " is not after " + up.shortName());
    }
    Sae from = model.sae(up);
    model.sae(down);
    Effects[] out = new Effects[latents.length];
    try (NDScope scope = new NDScope()) {
      DeltaPass pass = new DeltaPass(model, trace, target, up.stream(), down.stream());
      // A latent that is off at every ablatable position changes nothing, exactly (METHOD.md step 2);
      // between sites that no attention separates, only its firing at the target can reach the target.
      int first = pass.mixesPositions() ? model.firstAblatable() : target;
      List<Integer> firing = new ArrayList<>();
      for (int i = 0; i < latents.length; i++) {
        float[] f = trace.firing(up, latents[i], model.firstAblatable(), target);
        if (IntStream.rangeClosed(first, target).anyMatch(p -> f[p] > 0)) firing.add(i);
        else out[i] = new Effects(latents[i], new int[0], new float[0]);
      }
      ExactAblation measure = firing.isEmpty() ? null : new ExactAblation(model, trace, down, target);
      int size = pass.batchSize(batch);
      for (int start = 0; start < firing.size(); start += size) {
        List<Integer> chunk = firing.subList(start, Math.min(firing.size(), start + size));
        int[] ids = chunk.stream().mapToInt(i -> latents[i]).toArray();
        try (NDScope batchScope = new NDScope()) {
          NDArray change = pass.atTarget(pass.run(pass.ablation(from, ids))); // x'[T] - x[T] at the next site: [B, d]
          List<Effects> effects = measure.effects(ids, change);
          for (int k = 0; k < chunk.size(); k++) out[chunk.get(k)] = effects.get(k);
        }
      }
    }
    return Arrays.asList(out);
  }

  /** METHOD.md step 5 from each ablation's change at the target: e = f' - f over the next SAE's latents. */
  private List<Effects> effects(int[] latents, NDArray change) {
    NDArray dIn = down.inputChange(x, change); // [B, d]
    NDArray dPre = dIn.matMul(down.gate.W); // [B, d] x [d, S] -> [B, S]
    NDArray dMagnitude = down.magnitude == null ? null : dIn.matMul(down.magnitude.W);
    int[] columns = down.architecture() == Architecture.TOPK ? topKColumns(dPre) : columns(dPre, dMagnitude);
    clean.take(down, nd, columns);
    long[] picked = Arrays.stream(columns).asLongStream().toArray();
    int b = latents.length;
    float[] dp = read(dPre, picked), dm = dMagnitude == null ? null : read(dMagnitude, picked); // [C, B]
    List<Effects> out = new ArrayList<>(b);
    for (int i = 0; i < b; i++) {
      double[] delta = new double[columns.length], deltaMagnitude = dm == null ? null : new double[columns.length];
      for (int c = 0; c < columns.length; c++) {
        delta[c] = dp[c * b + i];
        if (dm != null) deltaMagnitude[c] = dm[c * b + i];
      }
      out.add(down.architecture() == Architecture.TOPK ? topKEffects(latents[i], columns, delta)
          : effects(latents[i], columns, delta, deltaMagnitude));
    }
    return out;
  }

  /** e_j = act(pre_j + δ_j) - act(pre_j) in float64; where the latent is on both times, e_j = δ_j with no cancellation. */
  private Effects effects(int latent, int[] columns, double[] delta, double[] deltaMagnitude) {
    int[] js = new int[columns.length];
    float[] es = new float[columns.length];
    int k = 0;
    for (int c = 0; c < columns.length; c++) {
      int j = columns[c];
      double pre = clean.exactGate[j], m = deltaMagnitude == null ? 0 : clean.exactMagnitude[j];
      double dm = deltaMagnitude == null ? 0 : deltaMagnitude[c];
      double before = down.activation(j, pre, m), after = down.activation(j, pre + delta[c], m + dm);
      double e = before > 0 && after > 0 ? (deltaMagnitude == null ? delta[c] : dm) : after - before;
      if (e != 0) {
        js[k] = j;
        es[k++] = (float) e;
      }
    }
    return new Effects(latent, Arrays.copyOf(js, k), Arrays.copyOf(es, k));
  }

  /**
   * TopK: the k largest of pre + δ among the columns read (they hold every latent that can be
   * among them), ties to the lower latent, ReLU'd; minus the clean activations.
   */
  private Effects topKEffects(int latent, int[] columns, double[] delta) {
    List<double[]> after = new ArrayList<>(columns.length);
    double[] pre = clean.exactGate;
    for (int c = 0; c < columns.length; c++) after.add(new double[] {pre[columns[c]] + delta[c], columns[c]});
    Trace.SparseRow kept = SparseRows.keep(after, down.cfg.k());
    TreeSet<Integer> touched = new TreeSet<>();
    for (int j : kept.latents()) touched.add(j);
    for (int j : clean.active) touched.add(j);
    int[] js = new int[touched.size()];
    float[] es = new float[touched.size()];
    int k = 0;
    for (int j : touched) {
      boolean wasOn = Arrays.binarySearch(clean.active, j) >= 0, isOn = Arrays.binarySearch(kept.latents(), j) >= 0;
      int c = Arrays.binarySearch(columns, j);
      double e = wasOn && isOn ? delta[c] : (isOn ? pre[j] + delta[c] : 0) - (wasOn ? pre[j] : 0);
      if (e != 0) {
        js[k] = j;
        es[k++] = (float) e;
      }
    }
    return new Effects(latent, Arrays.copyOf(js, k), Arrays.copyOf(es, k));
  }

  /**
   * The columns that are on before or can be on after for some ablation of the batch: the clean
   * float32 value's bound (see {@link Encoder}) and a slack for rounding pre + δ admit every
   * column whose exact sum may pass the threshold; the float64 test decides.
   */
  private int[] columns(NDArray dPre, NDArray dMagnitude) {
    float[] preMax = dPre.add(gate32).max(new int[] {0}).toFloatArray(); // [S]
    float[] magnitudeMax = dMagnitude == null ? null : dMagnitude.add(magnitude32).max(new int[] {0}).toFloatArray();
    double[] threshold = down.clampedThreshold();
    boolean[] on = new boolean[preMax.length];
    for (int j : clean.active) on[j] = true;
    return IntStream.range(0, preMax.length).filter(j -> {
      if (on[j]) return true;
      double slack = clean.gateRadius[j] + 1e-6 * (Math.abs(clean.gate[j]) + threshold[j]);
      if (magnitudeMax == null) return preMax[j] > threshold[j] - slack;
      return preMax[j] > -slack && magnitudeMax[j] > -clean.magnitudeRadius[j] - 1e-6 * Math.abs(clean.magnitude[j]);
    }).toArray();
  }

  /**
   * TopK's columns: the clean top k, and for each ablation every latent whose float32 value, widened
   * by its clean bound and a rounding margin, reaches the k-th largest of the values narrowed the
   * same way: they hold all of its exact top k.
   */
  private int[] topKColumns(NDArray dPre) {
    NDArray after = dPre.add(gate32); // [B, S]
    NDArray margin = after.abs().max(new int[] {-1}, true).mul(1e-6f); // float32 rounding of pre + δ, with room
    NDArray kth = after.sub(gateRadius32).topK(down.cfg.k(), -1, true, false).get(0).min(new int[] {-1}, true); // [B, 1]
    float[] near = after.add(gateRadius32).gte(kth.sub(margin)).toType(DataType.FLOAT32, false).max(new int[] {0})
        .toFloatArray(); // [S]
    TreeSet<Integer> columns = new TreeSet<>();
    for (int j : clean.active) columns.add(j);
    for (int j = 0; j < near.length; j++) if (near[j] > 0) columns.add(j);
    return columns.stream().mapToInt(Integer::intValue).toArray();
  }

  /** The given columns of [B, S], transposed: [C, B] row-major. */
  private float[] read(NDArray a, long[] columns) {
    return columns.length == 0 ? new float[0] : a.transpose().get(nd.create(columns)).toFloatArray();
  }
}
