package resgraph.modelserver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import resgraph.model.SafeTensors;

/**
 * Broken copies of model and SAE files, each wrong in one way, for tests that check the server
 * refuses them with a message naming the file and what is wrong.
 */
final class Corrupt {

  private static final ObjectMapper JSON = new ObjectMapper();

  private Corrupt() {}

  /** Copies a folder tree (a model folder, or a folder of SAE folders) to {@code to}; returns {@code to}. */
  static Path copy(Path from, Path to) {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path p : files.toList()) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(target);
        else Files.copy(p, target);
      }
      return to;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Every tensor of a safetensors file, in file order, as float32. */
  static Map<String, SafeTensors.Tensor> tensors(Path file) {
    SafeTensors st = SafeTensors.open(file);
    Map<String, SafeTensors.Tensor> out = new LinkedHashMap<>();
    st.entries().forEach((name, e) -> out.put(name, new SafeTensors.Tensor(e.shape(), st.read(name))));
    return out;
  }

  /** Rewrites {@code file} in place with one tensor replaced (same name, new shape or values). */
  static void replaceTensor(Path file, String name, SafeTensors.Tensor replacement) {
    Map<String, SafeTensors.Tensor> tensors = tensors(file);
    if (!tensors.containsKey(name)) throw new IllegalArgumentException(file + " has no tensor " + name);
    tensors.put(name, replacement);
    write(file, tensors);
  }

  /** Rewrites {@code file} in place with {@code name} stored as the given shape (same values, same count). */
  static void reshapeTensor(Path file, String name, long... shape) {
    SafeTensors.Tensor t = tensors(file).get(name);
    replaceTensor(file, name, new SafeTensors.Tensor(shape, t.data()));
  }

  /** Rewrites {@code file} in place with a NaN at flat index {@code at} of {@code name}. */
  static void putNaN(Path file, String name, int at) {
    SafeTensors.Tensor t = tensors(file).get(name);
    float[] data = t.data().clone();
    data[at] = Float.NaN;
    replaceTensor(file, name, new SafeTensors.Tensor(t.shape(), data));
  }

  /** Replaces {@code file} with these bytes. */
  static void bytes(Path file, byte[] bytes) {
    try {
      Files.write(file, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Replaces {@code file} with an 8-byte header length followed by {@code body}. */
  static void headerLength(Path file, long length, byte[] body) {
    ByteBuffer buf = ByteBuffer.allocate(8 + body.length).order(ByteOrder.LITTLE_ENDIAN);
    buf.putLong(length).put(body);
    bytes(file, buf.array());
  }

  /** Cuts {@code file} to its first {@code keep} bytes, as an interrupted copy would. */
  static void truncate(Path file, long keep) {
    try (var ch = java.nio.channels.FileChannel.open(file, java.nio.file.StandardOpenOption.WRITE)) {
      ch.truncate(keep);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Edits a JSON object file (a config.json or an SAE cfg.json) in place. */
  static void editJson(Path file, Consumer<ObjectNode> edit) {
    try {
      ObjectNode o = (ObjectNode) JSON.readTree(Files.readString(file));
      edit.accept(o);
      Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void write(Path file, Map<String, SafeTensors.Tensor> tensors) {
    try {
      SafeTensors.write(file, tensors, Map.of("format", "pt"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
