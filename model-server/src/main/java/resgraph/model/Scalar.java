package resgraph.model;

import ai.djl.ndarray.NDArray;

/**
 * A number as an array, for the products and quotients that autograd may differentiate. DJL's
 * {@code mul(Number)} and {@code div(Number)} wrap the number in an array over a JVM direct buffer
 * and close that array as soon as the result is formed, while autograd keeps it for the backward
 * pass: a garbage collection in between frees the buffer, and the gradient reads freed memory
 * (integrated gradients came out NaN now and then). This array stays open, and its buffer alive,
 * until the caller's NDScope closes.
 */
final class Scalar {

  private Scalar() {}

  /** {@code value} as a 0-dim array of like's manager; a product or quotient keeps like's dtype. */
  static NDArray of(NDArray like, double value) {
    return like.getManager().create(value);
  }
}
