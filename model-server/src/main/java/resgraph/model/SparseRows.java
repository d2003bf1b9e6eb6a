package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/** SAE activations [n, S] as one sparse row per position, read from the device's nonzero entries only. */
final class SparseRows {

  private SparseRows() {}

  /** [n, S] -> the nonzero entries of each row, latents ascending. */
  static Trace.SparseRow[] of(NDArray f) {
    int n = (int) f.getShape().get(0);
    long width = f.getShape().get(1);
    NDArray nz = f.nonzero(); // [K, 2]: (position, latent), row-major order
    long[] at = nz.toLongArray();
    float[] values = f.flatten().get(nz.get(":, 0").mul(width).add(nz.get(":, 1"))).toType(DataType.FLOAT32, false)
        .toFloatArray();
    int[] counts = new int[n];
    for (int k = 0; k < values.length; k++) counts[(int) at[2 * k]]++;
    Trace.SparseRow[] rows = new Trace.SparseRow[n];
    int k = 0;
    for (int p = 0; p < n; p++) {
      int[] latents = new int[counts[p]];
      float[] vals = new float[counts[p]];
      for (int i = 0; i < counts[p]; i++, k++) {
        latents[i] = (int) at[2 * k + 1];
        vals[i] = values[k];
      }
      rows[p] = new Trace.SparseRow(latents, vals);
    }
    return rows;
  }

  /** Rows read from some columns of the latents, each column's latent in {@code latents} (ascending). */
  static Trace.SparseRow[] relabel(Trace.SparseRow[] rows, long[] latents) {
    Trace.SparseRow[] out = new Trace.SparseRow[rows.length];
    for (int p = 0; p < rows.length; p++) {
      int[] at = rows[p].latents().clone();
      for (int i = 0; i < at.length; i++) at[i] = (int) latents[at[i]];
      out[p] = new Trace.SparseRow(at, rows[p].values());
    }
    return out;
  }

  /** n rows with no latent on. */
  static Trace.SparseRow[] empty(int n) {
    Trace.SparseRow[] rows = new Trace.SparseRow[n];
    Arrays.fill(rows, new Trace.SparseRow(new int[0], new float[0]));
    return rows;
  }

  /**
   * TopK of each row of the pre-activations [n, S]: the k largest entries ReLU'd, the rest zero.
   * Ties at the k-th value go to the lower latent index (METHOD.md), decided here rather than by
   * the device's sort, whose order among equal values is unspecified.
   */
  static Trace.SparseRow[] topK(NDArray pre, int k) {
    int n = (int) pre.getShape().get(0);
    long width = pre.getShape().get(1);
    if (k >= width) return of(pre.maximum(0));
    NDArray kth = pre.topK(k, -1, true, false).get(0).min(new int[] {-1}, true); // [n, 1]: the k-th largest
    NDArray nz = pre.gte(kth).nonzero(); // [K, 2], K >= n·k: the top k and any ties with the k-th
    long[] at = nz.toLongArray();
    double[] values = pre.flatten().get(nz.get(":, 0").mul(width).add(nz.get(":, 1"))).toType(DataType.FLOAT64, false)
        .toDoubleArray();
    List<List<double[]>> byRow = new ArrayList<>();
    for (int p = 0; p < n; p++) byRow.add(new ArrayList<>());
    for (int i = 0; i < values.length; i++) byRow.get((int) at[2 * i]).add(new double[] {values[i], at[2 * i + 1]});
    Trace.SparseRow[] rows = new Trace.SparseRow[n];
    for (int p = 0; p < n; p++) rows[p] = keep(byRow.get(p), k);
    return rows;
  }

  /** The k best (value, latent) pairs, larger value first and then lower latent, ReLU'd, as a row. */
  static Trace.SparseRow keep(List<double[]> candidates, int k) {
    List<double[]> sorted = new ArrayList<>(candidates);
    sorted.sort(Comparator.<double[]>comparingDouble(c -> -c[0]).thenComparingDouble(c -> c[1]));
    List<double[]> kept = new ArrayList<>(sorted.subList(0, Math.min(k, sorted.size())));
    kept.removeIf(c -> c[0] <= 0);
    kept.sort(Comparator.comparingDouble(c -> c[1]));
    int[] latents = new int[kept.size()];
    float[] vals = new float[kept.size()];
    for (int i = 0; i < latents.length; i++) {
      latents[i] = (int) kept.get(i)[1];
      vals[i] = (float) kept.get(i)[0];
    }
    return new Trace.SparseRow(latents, vals);
  }
}
