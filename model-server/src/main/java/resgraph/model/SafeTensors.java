package resgraph.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import resgraph.platform.ResgraphException;

/**
 * The safetensors format: an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to its dtype, shape and byte range, then the raw little-endian data.
 *
 * <p>Parsed here rather than by DJL because DJL aborts the JVM on BF16 and trusts the header;
 * every length and offset is checked against the file before anything is read, and F16 and
 * BF16 are widened to F32.
 */
public final class SafeTensors implements Tensors {

  /** Headers of real checkpoints are a few hundred KB; anything near this is corrupt. */
  static final long MAX_HEADER_BYTES = 100L << 20;

  public enum DType {
    F32(4),
    F16(2),
    BF16(2);

    final int bytes;

    DType(int bytes) {
      this.bytes = bytes;
    }
  }

  /** One tensor's place in the file; {@code begin} and {@code end} are absolute file offsets. */
  public record Entry(String name, String dtype, long[] shape, long begin, long end) {
    public long elements() {
      long n = 1;
      for (long s : shape) n *= s;
      return n;
    }
  }

  /** A tensor to write: row-major values of the given shape, stored as {@code dtype}. */
  public record Tensor(long[] shape, float[] data, DType dtype) {
    public Tensor(long[] shape, float[] data) {
      this(shape, data, DType.F32);
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();

  private final Path file;
  private final Map<String, Entry> entries;

  private SafeTensors(Path file, Map<String, Entry> entries) {
    this.file = file;
    this.entries = entries;
  }

  public Path file() {
    return file;
  }

  public Map<String, Entry> entries() {
    return Collections.unmodifiableMap(entries);
  }

  /** Reads and checks the header; tensor data is read later, one tensor at a time. */
  public static SafeTensors open(Path file) {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = ch.size();
      if (size < 8) throw ResgraphException.unusable(file, "too short to be safetensors (" + size + " bytes)");
      ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(ch, lenBuf, 0, file);
      long headerLen = lenBuf.flip().getLong();
      if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
        throw ResgraphException.unusable(file, "safetensors header length " + headerLen
            + " is outside 2.." + MAX_HEADER_BYTES + " bytes (truncated or not a safetensors file)");
      }
      if (8 + headerLen > size) {
        throw ResgraphException.unusable(file, "safetensors header length " + headerLen
            + " runs past the end of the file (" + size + " bytes)");
      }
      ByteBuffer header = ByteBuffer.allocate((int) headerLen);
      readFully(ch, header, 8, file);
      long dataStart = 8 + headerLen;
      return new SafeTensors(file, parseHeader(file, header.array(), dataStart, size - dataStart));
    } catch (IOException e) {
      throw new ResgraphException(ResgraphException.Kind.UNUSABLE_FILE, file + ": cannot read: " + e.getMessage(), e);
    }
  }

  private static Map<String, Entry> parseHeader(Path file, byte[] header, long dataStart, long dataSize) {
    JsonNode root;
    try {
      root = JSON.readTree(new String(header, StandardCharsets.UTF_8).trim());
    } catch (JsonProcessingException e) {
      throw ResgraphException.unusable(file, "safetensors header is not valid JSON: " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) throw ResgraphException.unusable(file, "safetensors header is not a JSON object");
    Map<String, Entry> entries = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> field = it.next();
      String name = field.getKey();
      if (name.equals("__metadata__")) continue;
      JsonNode t = field.getValue();
      JsonNode shapeNode = t.get("shape");
      JsonNode offsets = t.get("data_offsets");
      if (!t.path("dtype").isTextual() || shapeNode == null || !shapeNode.isArray()
          || offsets == null || !offsets.isArray() || offsets.size() != 2) {
        throw ResgraphException.unusable(file, "tensor " + name + " needs dtype, shape and two data_offsets");
      }
      long[] shape = new long[shapeNode.size()];
      long elements = 1;
      for (int i = 0; i < shape.length; i++) {
        shape[i] = shapeNode.get(i).asLong(-1);
        if (shape[i] < 0 || shape[i] > Integer.MAX_VALUE) {
          throw ResgraphException.unusable(file, "tensor " + name + " has a bad shape " + shapeNode);
        }
        elements = Math.multiplyExact(elements, shape[i]);
      }
      long begin = offsets.get(0).asLong(-1);
      long end = offsets.get(1).asLong(-1);
      if (begin < 0 || end < begin) {
        throw ResgraphException.unusable(file, "tensor " + name + " has bad data_offsets " + offsets);
      }
      if (end > dataSize) {
        throw ResgraphException.unusable(file, "tensor " + name + " data_offsets " + offsets
            + " run past the end of the file (data section is " + dataSize + " bytes)");
      }
      String dtype = t.get("dtype").asText();
      DType known = dtypeOrNull(dtype);
      if (known != null && end - begin != elements * known.bytes) {
        throw ResgraphException.unusable(file, "tensor " + name + " is " + (end - begin) + " bytes but shape "
            + Arrays.toString(shape) + " of " + dtype + " needs " + elements * known.bytes);
      }
      entries.put(name, new Entry(name, dtype, shape, dataStart + begin, dataStart + end));
    }
    return entries;
  }

  private static DType dtypeOrNull(String dtype) {
    for (DType d : DType.values()) if (d.name().equals(dtype)) return d;
    return null;
  }

  @Override
  public boolean has(String name) {
    return entries.containsKey(name);
  }

  @Override
  public Set<String> names() {
    return entries.keySet();
  }

  @Override
  public String origin() {
    return file.toString();
  }

  /**
   * The tensor's values as float32 (widened from F16/BF16) in a direct buffer of native order,
   * refusing NaN and infinities. Direct, so that the weights go from the file to libtorch without a
   * copy on the heap.
   */
  public ByteBuffer buffer(String name) {
    Entry e = entries.get(name);
    if (e == null) throw ResgraphException.unusable(file, "has no tensor named " + name);
    DType dtype = dtypeOrNull(e.dtype());
    if (dtype == null) {
      throw ResgraphException.unusable(file, "tensor " + name + " has dtype " + e.dtype() + "; expected F32, F16 or BF16");
    }
    if (e.elements() > (Integer.MAX_VALUE - 8) / 4) throw ResgraphException.unusable(file, "tensor " + name + " is too large to load");
    ByteBuffer out = ByteBuffer.allocateDirect((int) e.elements() * 4).order(ByteOrder.nativeOrder());
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      if (dtype == DType.F32 && ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
        readFully(ch, out, e.begin(), file);
      } else {
        // Widened (or swapped) in chunks, so a large tensor never needs a second full-size buffer.
        FloatBuffer floats = out.asFloatBuffer();
        ByteBuffer chunk = ByteBuffer.allocate(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
        for (long pos = e.begin(); pos < e.end(); pos += chunk.limit()) {
          chunk.clear().limit((int) Math.min(chunk.capacity(), e.end() - pos));
          readFully(ch, chunk, pos, file);
          chunk.flip();
          switch (dtype) {
            case F32 -> { while (chunk.remaining() >= 4) floats.put(chunk.getFloat()); }
            case F16 -> { while (chunk.remaining() >= 2) floats.put(halfToFloat(chunk.getShort())); }
            case BF16 -> { while (chunk.remaining() >= 2) floats.put(Float.intBitsToFloat((chunk.getShort() & 0xffff) << 16)); }
          }
        }
      }
    } catch (IOException ex) {
      throw new ResgraphException(ResgraphException.Kind.UNUSABLE_FILE, file + ": cannot read tensor " + name + ": " + ex.getMessage(), ex);
    }
    out.clear();
    FloatBuffer values = out.asFloatBuffer();
    float[] chunk = new float[Math.min(values.remaining(), 1 << 16)];
    for (int start = 0; values.hasRemaining(); start += chunk.length) {
      int n = Math.min(chunk.length, values.remaining());
      values.get(chunk, 0, n);
      for (int j = 0; j < n; j++) {
        if (!Float.isFinite(chunk[j])) {
          throw ResgraphException.unusable(file, "tensor " + name + " holds " + chunk[j] + " at flat index " + (start + j));
        }
      }
    }
    return out;
  }

  /** Reads a tensor after checking that its shape is exactly {@code expected}. */
  @Override
  public ByteBuffer buffer(String name, long... expected) {
    Entry e = entries.get(name);
    if (e != null && !Arrays.equals(e.shape(), expected)) {
      throw ResgraphException.unusable(file, "tensor " + name + " has shape " + Arrays.toString(e.shape())
          + ", expected " + Arrays.toString(expected));
    }
    return buffer(name);
  }

  /** The tensor's values in an array, whatever its shape. */
  public float[] read(String name) {
    return Tensors.floats(buffer(name));
  }

  /** IEEE 754 binary16 to binary32, subnormals included. */
  static float halfToFloat(short h) {
    int bits = h & 0xffff;
    int sign = (bits & 0x8000) << 16;
    int exp = (bits >>> 10) & 0x1f;
    int mant = bits & 0x3ff;
    if (exp == 0x1f) return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
    if (exp != 0) return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    float magnitude = mant * 0x1p-24f;
    return sign == 0 ? magnitude : -magnitude;
  }

  /** Round to nearest even, as PyTorch converts float32 to bfloat16. */
  static short floatToBf16(float f) {
    int bits = Float.floatToRawIntBits(f);
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  /** Writes tensors in the given order, with an optional {@code __metadata__} map. */
  public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
    ObjectNode header = JSON.createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = header.putObject("__metadata__");
      metadata.forEach(meta::put);
    }
    long offset = 0;
    for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
      Tensor t = e.getValue();
      long bytes = (long) t.data().length * t.dtype().bytes;
      ObjectNode node = header.putObject(e.getKey());
      node.put("dtype", t.dtype().name());
      node.putPOJO("shape", t.shape());
      node.putArray("data_offsets").add(offset).add(offset + bytes);
      offset += bytes;
    }
    // Padded with spaces to a multiple of 8 so the data is aligned, as the reference writer does.
    byte[] text = JSON.writeValueAsBytes(header);
    byte[] json = Arrays.copyOf(text, (text.length + 7) / 8 * 8);
    Arrays.fill(json, text.length, json.length, (byte) ' ');
    try (OutputStream out = Files.newOutputStream(file)) {
      ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length);
      out.write(len.array());
      out.write(json);
      ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
      for (Tensor t : tensors.values()) {
        for (float v : t.data()) {
          if (buf.remaining() < 4) {
            out.write(buf.array(), 0, buf.position());
            buf.clear();
          }
          if (t.dtype() == DType.F32) buf.putFloat(v);
          else if (t.dtype() == DType.BF16) buf.putShort(floatToBf16(v));
          else throw new IllegalArgumentException("writing " + t.dtype() + " is not supported");
        }
      }
      out.write(buf.array(), 0, buf.position());
    }
  }

  private static void readFully(FileChannel ch, ByteBuffer buf, long position, Path file) throws IOException {
    long pos = position;
    while (buf.hasRemaining()) {
      int n = ch.read(buf, pos);
      if (n < 0) throw ResgraphException.unusable(file, "ends early, at byte " + pos);
      pos += n;
    }
  }
}
