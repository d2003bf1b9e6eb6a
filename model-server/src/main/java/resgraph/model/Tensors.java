package resgraph.model;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
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

  /**
   * The tensor's values, row-major float32 in a direct buffer of native order, after checking its
   * shape is exactly {@code shape}. A new buffer each call: the caller may change it, and DJL makes
   * an array of it without copying (the array keeps the buffer alive as libtorch's storage), so
   * loading never holds more than the weights.
   */
  ByteBuffer buffer(String name, long... shape);

  /** The same values in an array: for the small tensors that are computed with before they are loaded. */
  default float[] read(String name, long... shape) {
    return floats(buffer(name, shape));
  }

  /** Where the tensors come from, for error messages. */
  String origin();

  /** A buffer's floats from its start, in an array. */
  static float[] floats(ByteBuffer buffer) {
    FloatBuffer f = buffer.duplicate().order(buffer.order()).clear().asFloatBuffer();
    float[] out = new float[f.remaining()];
    f.get(out);
    return out;
  }

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
      public ByteBuffer buffer(String name, long... shape) {
        SafeTensors.Tensor t = tensors.get(name);
        if (t == null) throw ResgraphException.unusable(origin, "has no tensor named " + name);
        if (!Arrays.equals(t.shape(), shape)) {
          throw ResgraphException.unusable(origin, "tensor " + name + " has shape " + Arrays.toString(t.shape())
              + ", expected " + Arrays.toString(shape));
        }
        ByteBuffer out = ByteBuffer.allocateDirect(t.data().length * 4).order(ByteOrder.nativeOrder());
        out.asFloatBuffer().put(t.data());
        return out;
      }

      @Override
      public String origin() {
        return origin;
      }
    };
  }
}
