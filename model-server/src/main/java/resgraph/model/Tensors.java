package resgraph.model;

import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import resgraph.platform.ResgraphException;

/** Named float32 tensors of known shapes: a safetensors file, or arrays a generator just made. */
public interface Tensors {

  /** Whether a tensor of this name exists. */
  boolean has(String name);

  /** Every tensor's name. */
  Set<String> names();

  /** The tensor's values, row-major, after checking its shape is exactly {@code shape}. */
  float[] read(String name, long... shape);

  /** Where the tensors come from, for error messages. */
  String origin();

  /** Tensors held in memory, checked as strictly as a file. */
  static Tensors of(Map<String, SafeTensors.Tensor> tensors, String origin) {
    return new Tensors() {
      @Override
      public boolean has(String name) {
        return tensors.containsKey(name);
      }

      @Override
      public Set<String> names() {
        return tensors.keySet();
      }

      @Override
      public float[] read(String name, long... shape) {
        SafeTensors.Tensor t = tensors.get(name);
        if (t == null) throw ResgraphException.unusable(origin, "has no tensor named " + name);
        if (!Arrays.equals(t.shape(), shape)) {
          throw ResgraphException.unusable(origin, "tensor " + name + " has shape " + Arrays.toString(t.shape())
              + ", expected " + Arrays.toString(shape));
        }
        return t.data();
      }

      @Override
      public String origin() {
        return origin;
      }
    };
  }
}
