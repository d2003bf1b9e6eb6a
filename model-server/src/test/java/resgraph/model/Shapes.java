package resgraph.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import resgraph.model.SafeTensors.DType;
import resgraph.model.SyntheticModel.Format;
import resgraph.model.SyntheticModel.Spec;
import resgraph.platform.Folders;

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
      Spec.builder().layers(2).dModel(90).heads(3).dSae(500).l0(12).centered(true).seed(11).build(), Format.PLAIN);

  /** 4 heads, d_model 100, 5 layers, d_sae 333, b_dec not applied, BF16 files named transformer.*. */
  public static final Shape FIVE_LAYERS = new Shape("4 heads, d 100, 5 layers, BF16, transformer. prefix",
      Spec.builder().layers(5).dModel(100).heads(4).positions(48).dSae(333).l0(10).applyBDecToInput(false).seed(12).build(), new Format(true, DType.BF16));

  /** No BOS: position 0 is ablatable too. */
  public static final Shape NO_BOS = new Shape("2 heads, d 58, 3 layers, no BOS",
      Spec.builder().layers(3).dModel(58).heads(2).positions(40).dSae(217).l0(9).centered(true).prependBos(false).seed(13).build(), Format.PLAIN);

  /** GPT-2-small-like magnitudes (a BOS norm in the thousands, outlier dimensions), 4 heads, d_model 64, 4 layers. */
  public static final Shape REALISTIC = new Shape("realistic magnitudes, 4 heads, d 64, 4 layers",
      Spec.builder().layers(4).dModel(64).heads(4).dSae(200).l0(8).centered(true).realistic(true).seed(14).build(),
      Format.PLAIN);

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
        try {
          Folders.delete(root);
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
