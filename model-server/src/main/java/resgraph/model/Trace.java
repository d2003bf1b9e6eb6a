package resgraph.model;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The clean forward pass of one token sequence (METHOD.md step 1), computed in float64: the
 * residual at every stream (see {@link Site}) and every SAE's activations at every position. Plain
 * Java arrays, so a cached trace is shared by concurrent requests and freed by the garbage collector.
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
  private final double[][] streams;
  private final Map<Site, SparseRow[]> acts;
  private final Map<String, Object> derived = new ConcurrentHashMap<>();

  /**
   * @param streams {@code streams[r]} is residual stream r row-major [n, d], r = 0..2·n_layer
   * @param acts the SAE activations by site, one sparse row per position
   */
  public Trace(int[] tokens, int dModel, double[][] streams, Map<Site, SparseRow[]> acts) {
    this.tokens = tokens.clone();
    this.dModel = dModel;
    this.streams = streams;
    this.acts = Map.copyOf(acts);
  }

  public int[] tokens() {
    return tokens.clone();
  }

  public int length() {
    return tokens.length;
  }

  /** Stream r at positions 0..to-1, row-major [to, d]. */
  public double[] stream(int r, int to) {
    return Arrays.copyOf(streams[r], to * dModel);
  }

  /** Stream r at one position, [d]. */
  public double[] streamAt(int r, int position) {
    return Arrays.copyOfRange(streams[r], position * dModel, (position + 1) * dModel);
  }

  public SparseRow[] acts(Site site) {
    SparseRow[] rows = acts.get(site);
    if (rows == null) throw new IllegalStateException("no SAE activations at " + site);
    return rows;
  }

  /** f[p, latent] at a site for p = 0..target, zero at positions before {@code firstAblatable}. */
  public float[] firing(Site site, int latent, int firstAblatable, int target) {
    SparseRow[] rows = acts(site);
    float[] f = new float[target + 1];
    for (int p = firstAblatable; p <= target; p++) f[p] = rows[p].get(latent);
    return f;
  }

  /** METHOD.md step 2: latents active at some ablatable position up to the target, ascending. */
  public int[] candidates(Site site, int firstAblatable, int target) {
    TreeSet<Integer> seen = new TreeSet<>();
    SparseRow[] rows = acts(site);
    for (int p = firstAblatable; p <= target; p++) for (int j : rows[p].latents()) seen.add(j);
    return seen.stream().mapToInt(Integer::intValue).toArray();
  }

  /** A derived value that knows its size, so the cache bound counts it. */
  public interface Sized {
    long bytes();
  }

  /** A value derived from this trace, computed once per key (such as a block's clean values at a target). */
  @SuppressWarnings("unchecked")
  public <T> T derived(String key, Supplier<T> compute) {
    return (T) derived.computeIfAbsent(key, k -> compute.get());
  }

  /** Roughly the heap this trace holds, for a cache bounded in bytes. */
  public long bytes() {
    long b = 4L * tokens.length;
    for (double[] r : streams) b += 8L * r.length;
    for (SparseRow[] rows : acts.values()) for (SparseRow r : rows) b += 8L * r.latents().length + 32;
    for (Object v : derived.values()) if (v instanceof Sized sized) b += sized.bytes();
    return b;
  }
}
