package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;

/**
 * One affine map of an SAE's encoder, {@code in · W + b} over its S latents ([d, S] float32 weights),
 * computed two ways: for every latent in float32, with a bound on how far that can be from the
 * exact value; and exactly, in the input's dtype, for chosen latents only. A float64 clean pass
 * then widens only the columns whose exact value can matter, never the whole encoder.
 *
 * <p>The bound: the float32 product of d terms differs from the exact sum by at most
 * {@code d·u·Σ_k |in_k·W_kj|} (u = 2^-24, any order of summation), rounding {@code in} to float32
 * adds {@code u·Σ_k |in_k·W_kj|}, and adding {@code b} one more {@code u·|b_j|}. With Cauchy-Schwarz,
 * {@code Σ_k |in_k·W_kj| <= |in|·|W[:, j]|}; the bound taken is twice the first-order sum, which
 * covers the second-order terms and the float32 rounding of the bound itself.
 */
final class Encoder {

  private static final double UNIT_ROUNDOFF = Math.ulp(1.0f) / 2;

  final NDArray W; // [d, S]
  final NDArray b; // [S]
  final NDArray columnNorms; // [S]: |W[:, j]|
  private final NDArray biasSizes; // [S]: |b_j|
  final double rounding; // the bound's factor on |in|·|W[:, j]| + |b_j|: also bounds a float32 product's relative error

  /** From the weights [d, S] as a direct buffer of native order, which becomes the array's storage. */
  Encoder(ByteBuffer w, float[] bias, int d, int s, NDManager m) {
    FloatBuffer values = w.asFloatBuffer();
    double[] squares = new double[s];
    float[] row = new float[s];
    for (int k = 0; k < d; k++) {
      values.get(row);
      for (int j = 0; j < s; j++) squares[j] += (double) row[j] * row[j];
    }
    float[] norms = new float[s], sizes = new float[s];
    for (int j = 0; j < s; j++) {
      norms[j] = (float) Math.sqrt(squares[j]);
      sizes[j] = Math.abs(bias[j]);
    }
    this.W = m.create(w, new Shape(d, s), DataType.FLOAT32);
    this.b = m.create(bias, new Shape(s));
    this.columnNorms = m.create(norms, new Shape(s));
    this.biasSizes = m.create(sizes, new Shape(s));
    this.rounding = 2 * (d + 2) * UNIT_ROUNDOFF;
  }

  /** The float32 values and their error bounds for every latent of each row of in [n, d]: two [n, S] float32. */
  record Bounded(NDArray value, NDArray radius) {

    /** Per latent, 1 where some row's exact value may be above {@code floor} [S], else 0: [S] float32. */
    NDArray mayExceed(NDArray floor) {
      return value.add(radius).gt(floor).toType(DataType.FLOAT32, false).max(new int[] {0});
    }

    /** Per latent, 1 where some row's exact value may be among that row's k largest, else 0: [S] float32. */
    NDArray mayBeAmongTop(int k) {
      NDArray kth = value.sub(radius).topK(k, -1, true, false).get(0).min(new int[] {-1}, true); // [n, 1]: surely reached
      return value.add(radius).gte(kth).toType(DataType.FLOAT32, false).max(new int[] {0});
    }
  }

  Bounded bounded(NDArray in) {
    NDArray value = in.toType(DataType.FLOAT32, false).matMul(W).add(b); // [n, S]
    NDArray size = in.norm(new int[] {-1}, true).toType(DataType.FLOAT32, false); // [n, 1]
    return new Bounded(value, size.mul(columnNorms).add(biasSizes).mul((float) rounding));
  }

  /** {@code in · W[:, columns] + b[columns]} in in's dtype: [n, d] -> [n, C]. */
  NDArray exact(NDArray in, NDArray columns) {
    DataType t = in.getDataType();
    return in.matMul(columns(columns).toType(t, false)).add(b.get(columns).toType(t, false));
  }

  /** W[:, columns], [d, C] float32 (a transposed view of the gathered rows of Wᵀ, which a product reads as is). */
  NDArray columns(NDArray columns) {
    return W.transpose().get(columns).transpose();
  }
}
