package resgraph.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import resgraph.model.SafeTensors.DType;
import resgraph.model.SyntheticModel.Format;
import resgraph.model.SyntheticModel.Spec;

/**
 * Generated models of deliberately awkward shapes, written once per test JVM in the real file
 * formats and shared by the test classes that read them.
 */
public final class Shapes {

  /** A named shape and how its files are written. */
  public record Shape(String name, Spec spec, Format format) {
    @Override
    public String toString() {
      return name;
    }
  }

  /** 3 heads, d_model 90, 2 layers, d_sae 500, centred SAEs. */
  public static final Shape THREE_HEADS = new Shape("3 heads, d 90, 2 layers, centred",
      new Spec(2, 90, 3, 64, Gpt2Tokenizer.VOCAB, 500, 12, true, true, true, 11), Format.PLAIN);

  /** 4 heads, d_model 100, 5 layers, d_sae 333, b_dec not applied, BF16 files named transformer.*. */
  public static final Shape FIVE_LAYERS = new Shape("4 heads, d 100, 5 layers, BF16, transformer. prefix",
      new Spec(5, 100, 4, 48, Gpt2Tokenizer.VOCAB, 333, 10, false, false, true, 12), new Format(true, DType.BF16));

  /** No BOS: position 0 is ablatable too. */
  public static final Shape NO_BOS = new Shape("2 heads, d 58, 3 layers, no BOS",
      new Spec(3, 58, 2, 40, Gpt2Tokenizer.VOCAB, 217, 9, true, true, false, 13), Format.PLAIN);

  private static final Map<Shape, Path> WRITTEN = new ConcurrentHashMap<>();
  private static final Path ROOT = tempRoot();

  private Shapes() {}

  /** The folder holding {@code model/} and {@code saes/} for this shape. */
  public static Path dir(Shape shape) {
    return WRITTEN.computeIfAbsent(shape, s -> {
      Path dir = ROOT.resolve(s.spec().n_layer() + "x" + s.spec().n_embd() + "-" + s.spec().seed());
      try {
        SyntheticModel.write(s.spec(), dir, s.format());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return dir;
    });
  }

  private static Path tempRoot() {
    try {
      Path root = Files.createTempDirectory("resgraph-shapes");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        try (Stream<Path> files = Files.walk(root)) {
          files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
          // best effort: the OS cleans its temp folder anyway
        }
      }));
      return root;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
