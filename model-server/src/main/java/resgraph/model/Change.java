package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.function.UnaryOperator;

/**
 * How a nonlinear map moves when its input moves: {@code f(base + delta) - f(base)}, evaluated in
 * float64 and returned in float32. Ablations carry their changes apart from the clean values they
 * perturb; linear maps act on a change alone, and only here is a change put back together with its
 * clean value, at a precision that keeps the difference's own digits.
 */
final class Change {

  private Change() {}

  static NDArray of(UnaryOperator<NDArray> f, NDArray base, NDArray delta) {
    NDArray b64 = base.toType(DataType.FLOAT64, false);
    NDArray after = f.apply(b64.add(delta.toType(DataType.FLOAT64, false)));
    return after.sub(f.apply(b64)).toType(DataType.FLOAT32, false);
  }
}
