package resgraph.model;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The clean forward pass of one token sequence (METHOD.md step 1), computed in float64: the
 * residual stream entering every block and every SAE's activations at every position. Plain Java
 * arrays, so a cached trace is shared by concurrent requests and freed by the garbage collector.
 *
 * <p>Ablations measure small differences from this pass, so it is kept at float64 precision:
 * an error here would show up in every effect, where float32 rounding of a change only scales it.
 */
public final class Trace {

  /** The nonzero activations of one position: latents ascending, values parallel. */
  public record SparseRow(int[] latents, float[] values) {
    public float get(int latent) {
      int i = Arrays.binarySearch(latents, latent);
      return i >= 0 ? values[i] : 0f;
    }
  }

  private final int[] tokens;
  private final int dModel;
  private final double[][] resid;
  private final Map<Integer, SparseRow[]> acts;
  private final Map<String, Object> derived = new ConcurrentHashMap<>();

  /**
   * @param resid {@code resid[l]} is x_l row-major [n, d] for l = 0..n_layer (the last is the final residual)
   * @param acts the SAE activations by layer, one sparse row per position
   */
  public Trace(int[] tokens, int dModel, double[][] resid, Map<Integer, SparseRow[]> acts) {
    this.tokens = tokens.clone();
    this.dModel = dModel;
    this.resid = resid;
    this.acts = Map.copyOf(acts);
  }

  public int[] tokens() {
    return tokens.clone();
  }

  public int length() {
    return tokens.length;
  }

  /** x_l at positions 0..to-1, row-major [to, d]. */
  public double[] resid(int layer, int to) {
    return Arrays.copyOf(resid[layer], to * dModel);
  }

  /** x_l at one position, [d]. */
  public double[] residAt(int layer, int position) {
    return Arrays.copyOfRange(resid[layer], position * dModel, (position + 1) * dModel);
  }

  public SparseRow[] acts(int layer) {
    SparseRow[] rows = acts.get(layer);
    if (rows == null) throw new IllegalStateException("no SAE activations at layer " + layer);
    return rows;
  }

  /** f_l[p, latent] for p = 0..target, zero at positions before {@code firstAblatable}. */
  public float[] firing(int layer, int latent, int firstAblatable, int target) {
    SparseRow[] rows = acts(layer);
    float[] f = new float[target + 1];
    for (int p = firstAblatable; p <= target; p++) f[p] = rows[p].get(latent);
    return f;
  }

  /** METHOD.md step 2: latents active at some ablatable position up to the target, ascending. */
  public int[] candidates(int layer, int firstAblatable, int target) {
    TreeSet<Integer> seen = new TreeSet<>();
    SparseRow[] rows = acts(layer);
    for (int p = firstAblatable; p <= target; p++) for (int j : rows[p].latents()) seen.add(j);
    return seen.stream().mapToInt(Integer::intValue).toArray();
  }

  /** A derived value that knows its size, so the cache bound counts it. */
  public interface Sized {
    long bytes();
  }

  /** A value derived from this trace, computed once per key (such as a layer's clean pass at a target). */
  @SuppressWarnings("unchecked")
  public <T> T derived(String key, Supplier<T> compute) {
    return (T) derived.computeIfAbsent(key, k -> compute.get());
  }

  /** Roughly the heap this trace holds, for a cache bounded in bytes. */
  public long bytes() {
    long b = 4L * tokens.length;
    for (double[] r : resid) b += 8L * r.length;
    for (SparseRow[] rows : acts.values()) for (SparseRow r : rows) b += 8L * r.latents().length + 32;
    for (Object v : derived.values()) if (v instanceof Sized sized) b += sized.bytes();
    return b;
  }
}
