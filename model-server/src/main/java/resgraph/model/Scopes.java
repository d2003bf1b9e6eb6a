package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A step of a long computation in an NDScope of its own: what it makes on the way is freed when it
 * returns, and only the arrays of its result stay, in the caller's scope. A scope around a whole
 * pass would hold every step's intermediates at once (at 1,024 positions, gigabytes of attention).
 */
final class Scopes {

  private Scopes() {}

  /** {@code step}'s result, with only the arrays {@code kept} names of it still open. */
  static <T> T keeping(Supplier<T> step, Function<T, List<NDArray>> kept) {
    T out = detached(step, kept);
    kept.apply(out).forEach(NDScope::register);
    return out;
  }

  /** The same, the arrays kept in no scope at all: for values held across scopes, which the caller closes. */
  static <T> T detached(Supplier<T> step, Function<T, List<NDArray>> kept) {
    T out;
    try (NDScope scope = new NDScope()) {
      out = step.get();
      kept.apply(out).forEach(NDScope::unregister);
    }
    return out;
  }
}
