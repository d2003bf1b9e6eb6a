package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.IntStream;
import resgraph.model.SaeConfig.Architecture;

/**
 * METHOD.md steps 3-5 for many latents of one site at once: ablate each, run only the computation
 * from its site to the next site of the chain ({@link DeltaPass}), and encode the change at the
 * target with the next site's SAE.
 *
 * <p>The next SAE's encoder acts on the change alone, in products over groups of the call's
 * ablations that cover only the columns their changes can reach; its activation is
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
      int s = gate.length; // per latent: a value and a bound in float32, an exact float64, a taken flag; as many again gated
      return 8L * x.length + 4L * active.length + (magnitude == null ? 16L : 32L) * s + s;
    }
  }

  /** Ablations that share one set of encoder columns. */
  private static final int GROUP = 32;
  /** Beyond this share of the columns, a group computes them all. */
  private static final double DENSE_ABOVE = 0.5;
  /** Ablations through the whole encoder at once, at most: a [DENSE_ROWS, S] float32 product. */
  private static final int DENSE_ROWS = 128;

  private final Sae down;
  private final NDManager nd;
  private final Clean clean;
  private final NDArray x; // [1, d] float64: the residual at the next site, at the target
  private final NDArray gate32, gateRadius32, magnitude32; // [S]: the clean float32 values and the gate's bounds
  private final NDArray gateHigh32, gateSlack32; // [S]: the clean gate's bound above, and a slack for float32 sums
  private final double[] threshold; // [S]: below this a latent is off
  private final boolean[] on; // [S]: the latents on at the target
  private final double denseAbove;

  private ExactAblation(SaeModel model, Trace trace, Site site, int target, double denseAbove) {
    this.denseAbove = denseAbove;
    this.down = model.sae(site);
    this.nd = model.manager();
    int d = model.config().n_embd();
    this.clean = trace.derived("pre-activations " + site + " at " + target,
        () -> new Clean(down, nd, trace.streamAt(site.stream(), target), trace.acts(site)[target].latents()));
    this.x = nd.create(clean.x, new Shape(1, d));
    this.gate32 = nd.create(clean.gate);
    this.gateRadius32 = nd.create(clean.gateRadius);
    this.magnitude32 = clean.magnitude == null ? null : nd.create(clean.magnitude);
    this.gateHigh32 = gate32.add(gateRadius32);
    this.gateSlack32 = gate32.abs().add(down.floor).mul(1e-6f);
    this.threshold = down.clampedThreshold();
    this.on = new boolean[threshold.length];
    for (int j : clean.active) on[j] = true;
  }

  /** The effects of each latent of {@code up} on the latents of {@code down} at the target, in the order given. */
  public static List<Effects> run(SaeModel model, Trace trace, Site up, Site down, int[] latents, int target, int batch) {
    return run(model, trace, up, down, latents, target, batch, DENSE_ABOVE);
  }

  /**
   * As above, a group of ablations computing every column of the next encoder when more than
   * {@code denseAbove} of them can change (0: always; 1: only when all can).
   */
  static List<Effects> run(SaeModel model, Trace trace, Site up, Site down, int[] latents, int target, int batch,
      double denseAbove) {
    Chain.checkHop(up, down);
    Sae from = model.sae(up);
    model.sae(down);
    Effects[] out = new Effects[latents.length];
    try (NDScope scope = new NDScope(); DeltaPass pass = new DeltaPass(model, trace, target, up.stream(), down.stream())) {
      // A latent that is off at every ablatable position changes nothing, exactly (METHOD.md step 2);
      // between sites that no attention separates, only its firing at the target can reach the target.
      int first = pass.mixesPositions() ? model.firstAblatable() : target;
      List<Integer> firing = new ArrayList<>();
      for (int i = 0; i < latents.length; i++) {
        float[] f = trace.firing(up, latents[i], model.firstAblatable(), target);
        if (IntStream.rangeClosed(first, target).anyMatch(p -> f[p] > 0)) firing.add(i);
        else out[i] = new Effects(latents[i], new int[0], new float[0]);
      }
      if (firing.isEmpty()) return Arrays.asList(out);
      // The pass goes a batch at a time; the encoder takes every change of the call at once, so that
      // the few ablations whose change reaches most of the next SAE share one read of its encoder.
      int size = pass.batchSize(batch);
      NDList changes = new NDList();
      for (int start = 0; start < firing.size(); start += size) {
        int[] ids = firing.subList(start, Math.min(firing.size(), start + size)).stream().mapToInt(i -> latents[i]).toArray();
        changes.add(Scopes.keeping(() -> pass.atTarget(pass.run(pass.ablation(from, ids))), List::of)); // x'[T] - x[T] at the next site: [B, d]
      }
      int[] ids = firing.stream().mapToInt(i -> latents[i]).toArray();
      List<Effects> effects = new ExactAblation(model, trace, down, target, denseAbove).effects(ids, NDArrays.concat(changes, 0));
      for (int k = 0; k < ids.length; k++) out[firing.get(k)] = effects.get(k);
    }
    return Arrays.asList(out);
  }

  /**
   * METHOD.md step 5 from each ablation's change at the target: e = f' - f over the next SAE's
   * latents. By Cauchy-Schwarz an ablation moves latent j's pre-activation by at most
   * |Δin|·|W_enc[:, j]|, so a latent that is off with room to spare stays off: the ablations are
   * taken in groups of similar |Δin|, and each group's encoder product covers only the columns its
   * largest change can reach ({@link #reachable}), which hold every latent on before or after.
   */
  private List<Effects> effects(int[] latents, NDArray change) {
    NDArray dIn = down.inputChange(x, change); // [B, d]
    float[] size = dIn.norm(new int[] {-1}).toFloatArray(); // [B]: |Δin|
    int[] order = IntStream.range(0, latents.length).boxed().sorted(Comparator.comparingDouble(i -> size[i]))
        .mapToInt(Integer::intValue).toArray();
    // The few largest changes can reach most columns: they go together through the whole encoder,
    // in groups of up to DENSE_ROWS, and the rest in groups of GROUP through the columns they reach.
    int dense = firstDense(order, size);
    List<int[]> groups = new ArrayList<>();
    for (int start = 0; start < dense; start += GROUP) groups.add(Arrays.copyOfRange(order, start, Math.min(dense, start + GROUP)));
    for (int start = dense; start < order.length; start += DENSE_ROWS) {
      groups.add(Arrays.copyOfRange(order, start, Math.min(order.length, start + DENSE_ROWS)));
    }
    Effects[] out = new Effects[latents.length];
    for (int[] rows : groups) {
      try (NDScope groupScope = new NDScope()) {
        measure(rows, size[rows[rows.length - 1]], dIn, latents, out);
      }
    }
    return Arrays.asList(out);
  }

  /** The effects of the ablations {@code rows} of {@code dIn}, whose largest change is {@code largest}, into {@code out}. */
  private void measure(int[] rows, float largest, NDArray dIn, int[] latents, Effects[] out) {
    long[] reach = reachable(largest); // null: every column
    NDArray at = reach == null ? null : nd.create(reach);
    NDArray group = dIn.get(nd.create(Arrays.stream(rows).asLongStream().toArray())); // [G, d]
    NDArray dPre = group.matMul(at == null ? down.gate.W : down.gate.columns(at)); // [G, d] x [d, C] -> [G, C]
    NDArray dMagnitude = down.magnitude == null ? null : group.matMul(at == null ? down.magnitude.W : down.magnitude.columns(at));
    int[] local = down.architecture() == Architecture.TOPK ? topKColumns(dPre, at, reach) : columns(dPre, dMagnitude, at, reach);
    int[] columns = Arrays.stream(local).map(c -> reach == null ? c : (int) reach[c]).toArray();
    clean.take(down, nd, columns);
    long[] picked = Arrays.stream(local).asLongStream().toArray();
    int g = rows.length;
    float[] dp = read(dPre, picked), dm = dMagnitude == null ? null : read(dMagnitude, picked); // [C', G]
    for (int i = 0; i < g; i++) {
      double[] delta = new double[columns.length], deltaMagnitude = dm == null ? null : new double[columns.length];
      for (int c = 0; c < columns.length; c++) {
        delta[c] = dp[c * g + i];
        if (dm != null) deltaMagnitude[c] = dm[c * g + i];
      }
      int latent = latents[rows[i]];
      out[rows[i]] = down.architecture() == Architecture.TOPK ? topKEffects(latent, columns, delta)
          : effects(latent, columns, delta, deltaMagnitude);
    }
  }

  /**
   * Where in {@code order} (ascending |Δin|) the changes begin that reach more than denseAbove of
   * the columns: {@link #reachable} grows with the size, so a binary search finds it.
   */
  private int firstDense(int[] order, float[] size) {
    int low = 0, high = order.length;
    while (low < high) {
      int middle = (low + high) >>> 1;
      if (reachable(size[order[middle]]) == null) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /**
   * The latents (ascending) whose pre-activation a change of encoder input of size {@code size}
   * can bring above their threshold, or keep there (TopK: among the k largest), or null when more
   * than {@code denseAbove} of all can: then the whole product is cheaper than gathering columns.
   * A change moves pre_j by at most size·|W[:, j]| and its float32 product adds the relative
   * rounding the clean bound allows for; the clean value's own bound and a slack for float32 sums
   * come on top, as in {@link #columns}.
   */
  private long[] reachable(float size) {
    NDArray span = down.gate.columnNorms.mul((float) (size * (1 + down.gate.rounding))); // [S]
    NDArray mask;
    if (down.architecture() == Architecture.TOPK) {
      NDArray high = gateHigh32.add(span), low = gate32.sub(gateRadius32).sub(span);
      NDArray kth = low.topK(Math.min(down.cfg.k(), (int) low.size()), -1, true, false).get(0).min(); // surely reached
      mask = high.add(high.abs().max().mul(1e-6f)).gte(kth);
    } else {
      mask = gateHigh32.add(span).add(gateSlack32).gt(down.floor);
    }
    long[] at = mask.nonzero().reshape(-1).toLongArray();
    return at.length > denseAbove * down.d_sae() ? null : at;
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
   * The columns (positions in {@code reach}, or latents when it is null) that are on before or can
   * be on after for some ablation of the group: the clean float32 value's bound (see {@link
   * Encoder}) and a slack for rounding pre + δ admit every column whose exact sum may pass the
   * threshold; the float64 test decides.
   */
  private int[] columns(NDArray dPre, NDArray dMagnitude, NDArray at, long[] reach) {
    float[] preMax = dPre.add(columnsOf(gate32, at)).max(new int[] {0}).toFloatArray(); // [C]
    float[] magnitudeMax = dMagnitude == null ? null : dMagnitude.add(columnsOf(magnitude32, at)).max(new int[] {0}).toFloatArray();
    return IntStream.range(0, preMax.length).filter(c -> {
      int j = reach == null ? c : (int) reach[c];
      if (on[j]) return true;
      double slack = clean.gateRadius[j] + 1e-6 * (Math.abs(clean.gate[j]) + threshold[j]);
      if (magnitudeMax == null) return preMax[c] > threshold[j] - slack;
      return preMax[c] > -slack && magnitudeMax[c] > -clean.magnitudeRadius[j] - 1e-6 * Math.abs(clean.magnitude[j]);
    }).toArray();
  }

  /**
   * TopK's columns (as {@link #columns} gives them): the clean top k, and for each ablation every
   * latent whose float32 value, widened by its clean bound and a rounding margin, reaches the k-th
   * largest of the values narrowed the same way: they hold all of its exact top k. The group's
   * columns hold every latent that can be among those, so the k-th largest is the same among them.
   */
  private int[] topKColumns(NDArray dPre, NDArray at, long[] reach) {
    NDArray after = dPre.add(columnsOf(gate32, at)); // [G, C]
    NDArray radius = columnsOf(gateRadius32, at);
    NDArray margin = after.abs().max(new int[] {-1}, true).mul(1e-6f); // float32 rounding of pre + δ, with room
    NDArray kth = after.sub(radius).topK(down.cfg.k(), -1, true, false).get(0).min(new int[] {-1}, true); // [G, 1]
    float[] near = after.add(radius).gte(kth.sub(margin)).toType(DataType.FLOAT32, false).max(new int[] {0})
        .toFloatArray(); // [C]
    TreeSet<Integer> columns = new TreeSet<>();
    for (int j : clean.active) {
      int c = reach == null ? j : Arrays.binarySearch(reach, j);
      if (c < 0) throw new IllegalStateException("latent " + j + " is on but outside the columns a change can reach");
      columns.add(c);
    }
    for (int c = 0; c < near.length; c++) if (near[c] > 0) columns.add(c);
    return columns.stream().mapToInt(Integer::intValue).toArray();
  }

  /** A per-latent [S] array at a group's columns, or whole when the group has every column. */
  private static NDArray columnsOf(NDArray perLatent, NDArray at) {
    return at == null ? perLatent : perLatent.get(at);
  }

  /** The given columns of [G, C], transposed: [C', G] row-major. */
  private float[] read(NDArray a, long[] columns) {
    return columns.length == 0 ? new float[0] : a.transpose().get(nd.create(columns)).toFloatArray();
  }
}
