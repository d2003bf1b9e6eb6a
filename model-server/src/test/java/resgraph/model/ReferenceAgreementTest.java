package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import resgraph.reference.ReferenceMethod;

/**
 * The model code against the independent float64 reference of METHOD.md, on several shapes: the
 * clean trace, every candidate's ablation effects (exact, batched and unbatched; naive), and the
 * logit effects.
 */
class ReferenceAgreementTest {

  private static final String PROMPT = "When Mary and John went to the store, John gave a drink to";

  /** A loaded pair and its reference twin. */
  private record Pair(SaeModel model, ReferenceMethod reference, int[] tokens) {}

  private static final Map<Shapes.Shape, Pair> PAIRS = new ConcurrentHashMap<>();

  static Stream<Shapes.Shape> shapes() {
    return Stream.of(Shapes.THREE_HEADS, Shapes.FIVE_LAYERS, Shapes.NO_BOS);
  }

  private static Pair pair(Shapes.Shape shape) {
    return PAIRS.computeIfAbsent(shape, s -> {
      Path dir = Shapes.dir(s);
      SaeModel model = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu());
      try {
        ReferenceMethod ref = ReferenceMethod.load(dir.resolve("model"), dir.resolve("saes"), s.spec().centered());
        return new Pair(model, ref, model.tokenize(PROMPT));
      } catch (IOException e) {
        throw new AssertionError(e);
      }
    });
  }

  @AfterAll
  static void close() {
    PAIRS.values().forEach(p -> p.model().close());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void traceMatchesReference(Shapes.Shape shape) {
    Pair p = pair(shape);
    Trace trace = p.model().trace(p.tokens());
    double[][][] x = p.reference().residuals(p.tokens());
    int d = shape.spec().n_embd();
    for (int l = 0; l <= shape.spec().n_layer(); l++) {
      double[] ours = trace.stream(2 * l, p.tokens().length);
      for (int pos = 0; pos < p.tokens().length; pos++) {
        for (int k = 0; k < d; k++) assertClose(x[l][pos][k], ours[pos * d + k], 1e-9, "x_" + l + "[" + pos + "][" + k + "]");
      }
    }
    for (int l = 0; l < shape.spec().n_layer(); l++) {
      double[][] f = p.reference().activations(l, p.tokens());
      Trace.SparseRow[] rows = trace.acts(Site.pre(l));
      for (int pos = 0; pos < f.length; pos++) {
        for (int j = 0; j < f[pos].length; j++) {
          assertClose(f[pos][j], rows[pos].get(j), 1e-6, "f_" + l + "[" + pos + "][" + j + "]");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void exactAblationMatchesReference(Shapes.Shape shape) {
    Pair p = pair(shape);
    Trace trace = p.model().trace(p.tokens());
    int last = p.tokens().length - 1;
    for (int target : new int[] {last, last - 3}) {
      for (int l = 0; l + 1 < shape.spec().n_layer(); l++) {
        int[] candidates = trace.candidates(Site.pre(l), p.model().firstAblatable(), target);
        assertArrayEquals(p.reference().candidates(l, p.tokens(), target), candidates, "candidates of layer " + l);
        // batches of 1, of an odd size, and all at once must agree with the reference alike
        for (int batch : new int[] {1, 7, 4096}) {
          List<ExactAblation.Effects> effects = ExactAblation.run(p.model(), trace, Site.pre(l), Site.pre(l + 1), candidates, target, batch);
          assertEffects(p, l, target, candidates, effects, 2e-4, 0, "exact, batch " + batch);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void naiveAblationMatchesReference(Shapes.Shape shape) {
    Pair p = pair(shape);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    int[] candidates = trace.candidates(Site.pre(0), p.model().firstAblatable(), target);
    int[] some = Arrays.copyOf(candidates, Math.min(12, candidates.length));
    // the seed's subtraction of two float32 activations loses digits the exact strategy keeps:
    // its error is float32 rounding of the activations themselves
    double activations = Arrays.stream(p.reference().activations(1, p.tokens())[target]).max().orElse(0);
    assertEffects(p, 0, target, some, NaiveAblation.run(p.model(), trace, Site.pre(0), Site.pre(1), some, target), 1e-2, 1e-5 * activations,
        "naive");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("shapes")
  void logitEffectsMatchReference(Shapes.Shape shape) {
    Pair p = pair(shape);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    int layer = shape.spec().n_layer() - 2;
    int[] candidates = trace.candidates(Site.pre(layer), p.model().firstAblatable(), target);
    int earlier = trace.candidates(Site.pre(0), p.model().firstAblatable(), target)[0];
    // one call, as Finalize makes it: several latents of one layer batched, another layer between them
    int[][] nodes = {{layer, candidates[0]}, {0, earlier}, {layer, candidates[1]}, {layer, candidates[2]}};
    List<LogitEffects.Node> asked = Arrays.stream(nodes).map(n -> new LogitEffects.Node(Site.pre(n[0]), n[1])).toList();
    List<LogitEffects.Result> results = LogitEffects.run(p.model(), trace, asked, target, 10);
    for (int n = 0; n < nodes.length; n++) {
      LogitEffects.Result r = results.get(n);
      int l = nodes[n][0], latent = nodes[n][1];
      assertEquals(Site.pre(l), r.site());
      assertEquals(latent, r.latent());
      double[] ref = p.reference().logitEffects(l, latent, p.tokens(), target);
      double scale = Arrays.stream(ref).map(Math::abs).max().orElse(0);
      // float32 log-softmax of two passes: about 1e-6 of rounding in every entry
      double floor = 1e-5;
      for (SaeModel.TokenValue v : r.promotes()) assertWithin(ref[v.id()], v.value(), 1e-3 * scale + floor, "promoted " + v);
      for (SaeModel.TokenValue v : r.suppresses()) assertWithin(ref[v.id()], v.value(), 1e-3 * scale + floor, "suppressed " + v);
      // the reference's extremes are ours, unless they are within rounding of the tenth
      Integer[] order = java.util.stream.IntStream.range(0, ref.length).boxed().toArray(Integer[]::new);
      Arrays.sort(order, (a, b) -> Double.compare(ref[b], ref[a]));
      double tenth = ref[order[9]];
      for (int i = 0; i < 10; i++) {
        int id = order[i];
        boolean ours = r.promotes().stream().anyMatch(v -> v.id() == id);
        assertTrue(ours || ref[id] - tenth < 1e-3 * scale + 2 * floor, "token " + id + " should be among the promoted");
      }
      assertEquals(10, r.suppresses().size());
    }
  }

  /**
   * Every e[i, j] of the reference, nonzero or not, against ours: within {@code relative} of it,
   * plus {@code floor}, plus a millionth of the largest effect for float32 rounding.
   */
  private static void assertEffects(Pair p, int layer, int target, int[] latents, List<ExactAblation.Effects> effects,
      double relative, double floor, String what) {
    assertEquals(latents.length, effects.size());
    double[][] ref = new double[latents.length][];
    double scale = 0;
    for (int i = 0; i < latents.length; i++) {
      ref[i] = p.reference().ablate(layer, latents[i], p.tokens(), target);
      for (double v : ref[i]) scale = Math.max(scale, Math.abs(v));
    }
    int compared = 0;
    for (int i = 0; i < latents.length; i++) {
      ExactAblation.Effects e = effects.get(i);
      double[] expected = ref[i];
      assertEquals(latents[i], e.latent());
      double[] ours = new double[ref[i].length];
      for (int k = 0; k < e.downstream().length; k++) ours[e.downstream()[k]] = e.delta()[k];
      for (int j = 0; j < ours.length; j++) {
        int jj = j;
        double tolerance = relative * Math.abs(ref[i][j]) + floor + 1e-6 * scale;
        assertTrue(Math.abs(ours[j] - ref[i][j]) <= tolerance, () -> what + ": layer " + layer + " latent " + e.latent()
            + " -> " + Arrays.toString(e.downstream()) + ": ours " + Arrays.toString(e.delta())
            + " vs reference " + nonzero(expected) + " (at " + jj + ")");
        if (ref[i][j] != 0) compared++;
      }
    }
    assertTrue(latents.length == 0 || compared > 0, "no nonzero effects to compare at layer " + layer);
  }

  private static String nonzero(double[] v) {
    StringBuilder s = new StringBuilder("{");
    for (int j = 0; j < v.length; j++) if (v[j] != 0) s.append(j).append('=').append(v[j]).append(' ');
    return s.append('}').toString();
  }

  private static void assertWithin(double expected, double actual, double tolerance, String what) {
    assertTrue(Math.abs(expected - actual) <= tolerance, () -> what + ": expected " + expected + ", got " + actual);
  }

  private static void assertClose(double expected, double actual, double relative, String what) {
    double tolerance = relative * Math.max(1, Math.abs(expected));
    assertTrue(Math.abs(expected - actual) <= tolerance, () -> what + ": expected " + expected + ", got " + actual);
  }
}
