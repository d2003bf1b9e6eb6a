package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.SafeTensors.DType;
import resgraph.model.SafeTensors.Tensor;
import resgraph.platform.ResgraphException;

/** The safetensors reader on well-formed and malformed files, byte by byte. */
class SafeTensorsTest {

  @TempDir Path dir;

  /** A file from a header string and raw data, as another writer might produce it. */
  private Path file(String header, byte[] data) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h).put(data);
    Path f = dir.resolve("t.safetensors");
    Files.write(f, b.array());
    return f;
  }

  @Test
  void readsF16IncludingSubnormalsAndBf16() throws IOException {
    // 1.0, -2.0, 0.5, the smallest subnormal (2^-24), 65504 (the largest normal)
    short[] halves = {0x3c00, (short) 0xc000, 0x3800, 0x0001, 0x7bff};
    ByteBuffer d = ByteBuffer.allocate(10 + 4).order(ByteOrder.LITTLE_ENDIAN);
    for (short h : halves) d.putShort(h);
    d.putShort((short) 0x3f80).putShort((short) 0xc040); // BF16 1.0 and -3.0
    Path f = file("{\"a\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
        + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[10,14]},\"__metadata__\":{\"format\":\"pt\"}}", d.array());
    SafeTensors t = SafeTensors.open(f);
    assertArrayEquals(new float[] {1f, -2f, 0.5f, 0x1p-24f, 65504f}, t.read("a", 5));
    assertArrayEquals(new float[] {1f, -3f}, t.read("b", 2));
  }

  @Test
  void writesAndReadsBackF32AndBf16() throws IOException {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    tensors.put("x", new Tensor(new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6.25f}));
    tensors.put("y", new Tensor(new long[] {2}, new float[] {1.5f, -0.1f}, DType.BF16));
    Path f = dir.resolve("w.safetensors");
    SafeTensors.write(f, tensors, Map.of("k", "v"));
    SafeTensors t = SafeTensors.open(f);
    assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6.25f}, t.read("x", 2, 3));
    assertArrayEquals(new float[] {1.5f, -0.10009765625f}, t.read("y", 2)); // -0.1 rounded to 8 mantissa bits
    assertEquals(0, (Files.size(f) - 8 - tensorBytes(t)) % 8, "header padded to 8 bytes");
  }

  private static long tensorBytes(SafeTensors t) {
    return t.entries().values().stream().mapToLong(e -> e.end() - e.begin()).sum();
  }

  @Test
  void refusesMalformedFilesNamingTheProblem() throws IOException {
    Path tiny = dir.resolve("tiny");
    Files.write(tiny, new byte[] {1, 2, 3});
    assertProblem(tiny, "too short");
    Path huge = dir.resolve("huge");
    Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
    assertProblem(huge, "header length");
    Path pastEnd = dir.resolve("pastEnd");
    Files.write(pastEnd, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(4000).array());
    assertProblem(pastEnd, "past the end");
    assertProblem(file("{not json", new byte[0]), "not valid JSON");
    assertProblem(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]), "tensor w");
    assertProblem(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]), "needs 12");
  }

  @Test
  void refusesNanAndTheWrongShapeNamingTheTensor() throws IOException {
    Map<String, Tensor> tensors = Map.of("h.0.w", new Tensor(new long[] {2}, new float[] {1, Float.NaN}));
    Path f = dir.resolve("nan.safetensors");
    SafeTensors.write(f, tensors, Map.of());
    ResgraphException nan = assertThrows(ResgraphException.class, () -> SafeTensors.open(f).read("h.0.w", 2));
    assertTrue(nan.getMessage().contains("h.0.w") && nan.getMessage().contains("NaN"), nan.getMessage());
    ResgraphException shape = assertThrows(ResgraphException.class, () -> SafeTensors.open(f).read("h.0.w", 1, 2));
    assertTrue(shape.getMessage().contains("[2]") && shape.getMessage().contains("[1, 2]"), shape.getMessage());
    assertEquals(ResgraphException.Kind.UNUSABLE_FILE, shape.kind());
  }

  private static void assertProblem(Path f, String words) {
    ResgraphException e = assertThrows(ResgraphException.class, () -> SafeTensors.open(f));
    assertEquals(ResgraphException.Kind.UNUSABLE_FILE, e.kind());
    assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains(words), e.getMessage());
  }
}
