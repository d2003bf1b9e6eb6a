package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import resgraph.reference.ReferenceMethod;
import resgraph.reference.ReferenceSaes;
import resgraph.reference.ReferenceSaes.Architecture;
import resgraph.reference.ReferenceSaes.Layout;

/**
 * The model code against the independent float64 reference of METHOD.md: the clean trace, every
 * candidate's ablation effects on every hop of the chain (exact, batched and unbatched; naive),
 * and the logit effects. On models of several shapes, and on SAEs of every architecture,
 * normalisation, site and cfg.json layout, written by the reference's own generator.
 */
class ReferenceAgreementTest {

  private static final String PROMPT = "When Mary and John went to the store, John gave a drink to";

  /**
   * A model shape and its SAEs: the generator's own ({@code saes} null), or ones the reference's
   * generator writes; {@code centering} is what the command line would say (null: the files decide).
   */
  record Case(String name, Shapes.Shape shape, ReferenceSaes.Spec saes, Boolean centering) {
    @Override
    public String toString() {
      return name;
    }
  }

  /** A loaded pair, its reference twin, the prompt, and the chain of its SAEs. */
  private record Pair(SaeModel model, ReferenceMethod reference, int[] tokens, List<Site> chain) {}

  private static final Map<Case, Pair> PAIRS = new ConcurrentHashMap<>();

  private static ReferenceSaes.Spec.Builder saes(String... hooks) {
    return ReferenceSaes.Spec.builder().hooks(hooks).dSae(160).l0(8).seed(hooks.length);
  }

  static Stream<Case> cases() {
    return Stream.of(
        new Case("generated SAEs: " + Shapes.THREE_HEADS, Shapes.THREE_HEADS, null, null),
        new Case("generated SAEs: " + Shapes.FIVE_LAYERS, Shapes.FIVE_LAYERS, null, null),
        new Case("generated SAEs: " + Shapes.NO_BOS, Shapes.NO_BOS, null, null),
        new Case("standard at resid_pre in res-jb's cfg.json dump, centred, realistic magnitudes", Shapes.REALISTIC,
            saes("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre", "blocks.3.hook_resid_pre")
                .layout(Layout.JB_DUMP).build(), true),
        new Case("jumprelu at resid_mid, SAELens 6 layout, b_dec not applied", Shapes.THREE_HEADS,
            saes("blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid").architecture(Architecture.JUMPRELU).layout(Layout.V6)
                .applyBDecToInput(false).centering(ReferenceSaes.Centering.UNCENTERED).build(), null),
        new Case("jumprelu from log_threshold at resid_post, BF16, centred", Shapes.FIVE_LAYERS,
            saes("blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.2.hook_resid_post", "blocks.3.hook_resid_post")
                .architecture(Architecture.JUMPRELU_LOG_THRESHOLD).dtype(ReferenceSaes.Dtype.BF16)
                .centering(ReferenceSaes.Centering.CENTERED).build(), null),
        new Case("topk as OpenAI's are stored: resid_post, layer_norm, no BOS, realistic magnitudes", Shapes.REALISTIC,
            saes("blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.2.hook_resid_post", "blocks.3.hook_resid_post")
                .architecture(Architecture.TOPK).layout(Layout.LEGACY_TOPK)
                .normalization(ReferenceMethod.Normalization.LAYER_NORM).prependBos(false)
                .folderPattern("v5_32k_layer_{l}.pt").build(), null),
        new Case("topk at resid_mid, SAELens 6 layout, constant_norm_rescale, centred", Shapes.FIVE_LAYERS,
            saes("blocks.1.hook_resid_mid", "blocks.2.hook_resid_mid", "blocks.3.hook_resid_mid")
                .architecture(Architecture.TOPK).layout(Layout.V6).normalization(ReferenceMethod.Normalization.CONSTANT_NORM_RESCALE)
                .centering(ReferenceSaes.Centering.CENTERED).build(), null),
        new Case("gated at resid_pre with a scaling factor", Shapes.THREE_HEADS,
            saes("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre").architecture(Architecture.GATED)
                .scalingFactor(ReferenceSaes.ScalingFactor.RANDOM).centering(ReferenceSaes.Centering.CENTERED).build(), null),
        new Case("a chain mixing resid_pre, resid_mid and resid_post", Shapes.FIVE_LAYERS,
            saes("blocks.0.hook_resid_pre", "blocks.0.hook_resid_mid", "blocks.1.hook_resid_mid", "blocks.1.hook_resid_post",
                "blocks.2.hook_resid_mid", "blocks.3.hook_resid_pre").layout(Layout.V6)
                .centering(ReferenceSaes.Centering.UNCENTERED).folderPattern("sae-{l}-{kind}").build(), null),
        new Case("resid_pre two blocks apart, an all-ones scaling factor", Shapes.FIVE_LAYERS,
            saes("blocks.0.hook_resid_pre", "blocks.2.hook_resid_pre", "blocks.3.hook_resid_pre")
                .scalingFactor(ReferenceSaes.ScalingFactor.ONES).centering(ReferenceSaes.Centering.UNCENTERED).build(), null));
  }

  private static Pair pair(Case c) {
    return PAIRS.computeIfAbsent(c, k -> {
      Path dir = Shapes.dir(k.shape());
      Path saes = dir.resolve("saes");
      try {
        if (k.saes() != null) {
          saes = dir.resolve("reference-saes-" + Integer.toHexString(k.name().hashCode()));
          ReferenceSaes.write(dir.resolve("model"), saes, k.saes());
        }
        SaeModel model = SaeModel.load(dir.resolve("model"), saes, k.centering(), null, Device.cpu());
        ReferenceMethod ref = ReferenceMethod.load(dir.resolve("model"), saes, k.centering());
        List<Site> chain = model.saes().stream().map(Sae::site).toList();
        assertEquals(chain.stream().map(Site::hookName).toList(), ref.hooks(), "the same SAEs at the same sites");
        return new Pair(model, ref, model.tokenize(PROMPT), chain);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  @AfterAll
  static void close() {
    PAIRS.values().forEach(p -> p.model().close());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void traceMatchesReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int d = c.shape().spec().n_embd(), n = p.tokens().length;
    for (int r = 0; r <= 2 * c.shape().spec().n_layer(); r++) {
      Site site = r % 2 == 0 ? Site.pre(r / 2) : new Site(r / 2, Site.Kind.MID);
      double[][] x = r == 2 * c.shape().spec().n_layer() ? p.reference().residual(new Site(r / 2 - 1, Site.Kind.POST).hookName(),
          p.tokens()) : p.reference().residual(site.hookName(), p.tokens());
      double[] ours = trace.stream(r, n);
      for (int pos = 0; pos < n; pos++) {
        for (int k = 0; k < d; k++) assertClose(x[pos][k], ours[pos * d + k], 1e-9, "stream " + r + " [" + pos + "][" + k + "]");
      }
    }
    for (Site site : p.chain()) {
      double[][] f = p.reference().activations(site.hookName(), p.tokens());
      Trace.SparseRow[] rows = trace.acts(site);
      for (int pos = 0; pos < f.length; pos++) {
        for (int j = 0; j < f[pos].length; j++) {
          assertClose(f[pos][j], rows[pos].get(j), 1e-6, "f at " + site.shortName() + " [" + pos + "][" + j + "]");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void exactAblationMatchesReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int last = p.tokens().length - 1;
    for (int target : new int[] {last, last - 3}) {
      for (int h = 0; h + 1 < p.chain().size(); h++) {
        Site up = p.chain().get(h), down = p.chain().get(h + 1);
        int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
        assertArrayEquals(p.reference().candidates(up.hookName(), p.tokens(), target), candidates, "candidates at " + up);
        double[][] expected = reference(p, up, down, candidates, target);
        // batches of 1, of an odd size, and all at once must agree with the reference alike, each group of
        // ablations reading only the encoder columns its changes can reach
        for (int batch : new int[] {1, 7, 4096}) {
          List<ExactAblation.Effects> effects = ExactAblation.run(p.model(), trace, up, down, candidates, target, batch, 1.0);
          assertEffects(expected, up, down, candidates, effects, 2e-4, 0, "exact, batch " + batch);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void leavingOutColumnsNoChangeCanReachLeavesEveryEdgeAsTheWholeProductGivesIt(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    for (int h = 0; h + 1 < p.chain().size(); h++) {
      Site up = p.chain().get(h), down = p.chain().get(h + 1);
      int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
      List<ExactAblation.Effects> whole = ExactAblation.run(p.model(), trace, up, down, candidates, target, 64, 0.0);
      float scale = 0;
      for (ExactAblation.Effects e : whole) for (float v : e.delta()) scale = Math.max(scale, Math.abs(v));
      // from every group reading only what it can reach to the largest changes sharing the whole
      // product, a call's batches of 16 grouped together
      for (double denseAbove : new double[] {1.0, 0.5, 0.2, 0.05}) {
        List<ExactAblation.Effects> reached = ExactAblation.run(p.model(), trace, up, down, candidates, target, 16, denseAbove);
        for (int i = 0; i < candidates.length; i++) {
          String what = up.shortName() + "." + candidates[i] + " -> " + down.shortName() + ", dense above " + denseAbove;
          assertArrayEquals(whole.get(i).downstream(), reached.get(i).downstream(), what + ": the same edges");
          // a product over fewer columns may round the same sums in another order
          assertArrayEquals(whole.get(i).delta(), reached.get(i).delta(), 1e-6f * scale, what + ": the same weights");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void naiveAblationMatchesReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    Site up = p.chain().get(0), down = p.chain().get(1);
    int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
    int[] some = Arrays.copyOf(candidates, Math.min(12, candidates.length));
    // the seed's subtraction of two float32 activations loses digits the exact strategy keeps:
    // its error is float32 rounding of the activations themselves
    double activations = Arrays.stream(p.reference().activations(down.hookName(), p.tokens())[target]).max().orElse(0);
    assertEffects(reference(p, up, down, some, target), up, down, some, NaiveAblation.run(p.model(), trace, up, down, some, target),
        1e-2, 1e-5 * activations, "naive");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void logitEffectsMatchReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    // one call, as finalization makes it: several latents of each site, the sites interleaved
    List<LogitEffects.Node> nodes = new ArrayList<>();
    for (int k = 0; k < 2; k++) {
      for (Site s : p.chain()) {
        int[] candidates = trace.candidates(s, p.model().firstAblatable(), target);
        if (k < candidates.length) nodes.add(new LogitEffects.Node(s, candidates[candidates.length - 1 - k]));
      }
    }
    // as one block of queries, as short prompts run, and a query at a time, as blocks of a long one;
    // every site's nodes in one pass, and in passes of three, where sites join part-way through
    for (long blockBytes : new long[] {DeltaPass.BLOCK_BYTES, 0}) {
      for (int nodesPerPass : new int[] {32, 3}) {
        assertLogitEffects(p, trace, nodes, target, LogitEffects.run(p.model(), trace, nodes, target, 10, blockBytes, nodesPerPass));
      }
    }
  }

  private static void assertLogitEffects(Pair p, Trace trace, List<LogitEffects.Node> nodes, int target,
      List<LogitEffects.Result> results) {
    for (int i = 0; i < nodes.size(); i++) {
      LogitEffects.Result r = results.get(i);
      assertEquals(nodes.get(i).site(), r.site());
      assertEquals(nodes.get(i).latent(), r.latent());
      double[] ref = p.reference().logitEffects(r.site().hookName(), r.latent(), p.tokens(), target);
      double scale = Arrays.stream(ref).map(Math::abs).max().orElse(0);
      if (scale == 0) continue; // a latent silent up to the target: both sides report nothing
      // the differences are float64 from a float32 change: as precise as the edges
      double tolerance = 2e-4 * scale;
      for (SaeModel.TokenValue v : r.promotes()) assertWithin(ref[v.id()], v.value(), tolerance, "promoted " + v);
      for (SaeModel.TokenValue v : r.suppresses()) assertWithin(ref[v.id()], v.value(), tolerance, "suppressed " + v);
      // the reference's ten extremes are ours, but for ties within that precision of the tenth
      Integer[] order = IntStream.range(0, ref.length).boxed().toArray(Integer[]::new);
      Arrays.sort(order, (a, b) -> Double.compare(ref[b], ref[a]));
      for (int k = 0; k < 10; k++) {
        int id = order[k];
        boolean ours = r.promotes().stream().anyMatch(v -> v.id() == id);
        assertTrue(ours || ref[id] - ref[order[9]] < 2 * tolerance, "token " + id + " should be among the promoted");
        int low = order[ref.length - 1 - k];
        boolean oursLow = r.suppresses().stream().anyMatch(v -> v.id() == low);
        assertTrue(oursLow || ref[order[ref.length - 10]] - ref[low] < 2 * tolerance, "token " + low + " should be among the suppressed");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void attributionMatchesFiniteDifferencesOfTheReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    for (int h = 0; h + 1 < p.chain().size(); h++) {
      Site up = p.chain().get(h), down = p.chain().get(h + 1);
      int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
      double[][] expected = new double[candidates.length][];
      for (int i = 0; i < candidates.length; i++) {
        expected[i] = p.reference().attribution(up.hookName(), candidates[i], down.hookName(), p.tokens(), target);
      }
      List<ExactAblation.Effects> ours = Attribution.run(p.model(), trace, up, down, candidates, target,
          Attribution.Method.ATTRIBUTION, 1);
      assertEffects(expected, up, down, candidates, ours, 1e-4, 0, "attribution");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void integratedGradientsMatchFiniteDifferencesOfTheReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 2, steps = 3;
    for (int h = 0; h + 1 < p.chain().size(); h++) {
      Site up = p.chain().get(h), down = p.chain().get(h + 1);
      int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
      // a few latents asked about: the path still ablates every candidate of the site
      int[] some = Arrays.copyOfRange(candidates, candidates.length / 2, Math.min(candidates.length, candidates.length / 2 + 5));
      double[][] expected = new double[some.length][];
      for (int i = 0; i < some.length; i++) {
        expected[i] = p.reference().integratedGradients(up.hookName(), some[i], down.hookName(), p.tokens(), target, steps);
      }
      List<ExactAblation.Effects> ours = Attribution.run(p.model(), trace, up, down, some, target,
          Attribution.Method.INTEGRATED_GRADIENTS, steps);
      assertEffects(expected, up, down, some, ours, 1e-4, 0, "integrated gradients");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("smoothCases")
  void integratedGradientsConvergeToTheEffectOfAblatingEveryCandidateAtOnce(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    Site up = p.chain().get(0), down = p.chain().get(1);
    int[] candidates = trace.candidates(up, p.model().firstAblatable(), target);
    double[] all = p.reference().ablateAll(up.hookName(), down.hookName(), p.tokens(), target);
    double scale = Arrays.stream(all).map(Math::abs).max().orElse(0);
    assertTrue(scale > 0, "ablating every candidate moves some latent");
    double previous = Double.POSITIVE_INFINITY;
    for (int steps : new int[] {2, 16, 256}) {
      // Σ_i ê[i, j] = Σ_p Δ[p]·(mean gradient along the path): a midpoint rule for f(x + Δ) - f(x)
      double[] sum = new double[all.length];
      for (ExactAblation.Effects e : Attribution.run(p.model(), trace, up, down, candidates, target,
          Attribution.Method.INTEGRATED_GRADIENTS, steps)) {
        for (int k = 0; k < e.downstream().length; k++) sum[e.downstream()[k]] += e.delta()[k];
      }
      double error = 0;
      for (int j = 0; j < all.length; j++) error = Math.max(error, Math.abs(sum[j] - all[j]));
      assertTrue(error < previous, steps + " steps should come closer than fewer: " + error + " vs " + previous);
      previous = error;
    }
    assertTrue(previous <= 0.02 * scale, "256 steps within 2% of the largest effect: off by " + previous + " of " + scale);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void faithfulnessMatchesReference(Case c) {
    Pair p = pair(c);
    Trace trace = p.model().trace(p.tokens());
    int target = p.tokens().length - 1;
    Chain chain = new Chain(p.chain());
    Map<Site, Set<Integer>> half = new HashMap<>(), all = new HashMap<>();
    Map<String, Set<Integer>> halfByHook = new HashMap<>(), complementByHook = new HashMap<>(), allByHook = new HashMap<>();
    for (Site s : p.chain()) {
      int[] candidates = trace.candidates(s, p.model().firstAblatable(), target);
      for (int k = 0; k < candidates.length; k++) {
        (k % 2 == 0 ? half : new HashMap<Site, Set<Integer>>()).computeIfAbsent(s, x -> new HashSet<>()).add(candidates[k]);
        all.computeIfAbsent(s, x -> new HashSet<>()).add(candidates[k]);
        (k % 2 == 0 ? halfByHook : complementByHook).computeIfAbsent(s.hookName(), x -> new HashSet<>()).add(candidates[k]);
        allByHook.computeIfAbsent(s.hookName(), x -> new HashSet<>()).add(candidates[k]);
      }
    }
    List<String> hooks = p.chain().stream().map(Site::hookName).toList();
    for (Integer contrast : new Integer[] {null, 3}) {
      Faithfulness.Result r = Faithfulness.run(p.model(), trace, chain, target, contrast, List.of(half, all, Map.of()));
      double full = p.reference().metric(hooks, allByHook, p.tokens(), target, contrast);
      double empty = p.reference().metric(hooks, Map.of(), p.tokens(), target, contrast);
      double circuit = p.reference().metric(hooks, halfByHook, p.tokens(), target, contrast);
      double complement = p.reference().metric(hooks, complementByHook, p.tokens(), target, contrast);
      // the activations removed are the sparse rows' float32 values, as in every ablation
      assertClose(full, r.full(), 1e-6, "m(M)");
      assertClose(empty, r.empty(), 1e-6, "m(empty)");
      assertClose(circuit, r.circuits().get(0).circuit(), 1e-6, "m(C)");
      assertClose(complement, r.circuits().get(0).complement(), 1e-6, "m(M without C)");
      assertClose((circuit - empty) / (full - empty), r.circuits().get(0).faithfulness(), 1e-4, "faithfulness");
      assertClose((complement - empty) / (full - empty), r.circuits().get(0).completeness(), 1e-4, "completeness");
      assertEquals(1.0, r.circuits().get(1).faithfulness(), 0, "every candidate is the whole model");
      assertEquals(0.0, r.circuits().get(1).completeness(), 0, "nothing left beside every candidate");
      assertEquals(0.0, r.circuits().get(2).faithfulness(), 0, "the empty circuit");
      assertEquals(1.0, r.circuits().get(2).completeness(), 0, "everything beside the empty circuit");
    }
  }

  /** Cases whose SAEs are continuous in their input (ReLU, no jumps), where the path integral is the whole change. */
  static Stream<Case> smoothCases() {
    return cases().filter(c -> c.saes() == null || c.name().startsWith("standard"));
  }

  /** The reference's dense effects of each latent, [latents][S]. */
  private static double[][] reference(Pair p, Site up, Site down, int[] latents, int target) {
    double[][] ref = new double[latents.length][];
    for (int i = 0; i < latents.length; i++) {
      ref[i] = p.reference().ablate(up.hookName(), latents[i], down.hookName(), p.tokens(), target);
    }
    return ref;
  }

  /**
   * Every e[i, j] of the reference, nonzero or not, against ours: within {@code relative} of it,
   * plus {@code floor}, plus a millionth of the largest effect for float32 rounding.
   */
  private static void assertEffects(double[][] ref, Site up, Site down, int[] latents, List<ExactAblation.Effects> effects,
      double relative, double floor, String what) {
    assertEquals(latents.length, effects.size());
    double scale = 0;
    for (double[] row : ref) for (double v : row) scale = Math.max(scale, Math.abs(v));
    int compared = 0;
    for (int i = 0; i < latents.length; i++) {
      ExactAblation.Effects e = effects.get(i);
      double[] expected = ref[i];
      assertEquals(latents[i], e.latent());
      double[] ours = new double[expected.length];
      for (int k = 0; k < e.downstream().length; k++) ours[e.downstream()[k]] = e.delta()[k];
      for (int j = 0; j < ours.length; j++) {
        int jj = j;
        double tolerance = relative * Math.abs(expected[j]) + floor + 1e-6 * scale;
        assertTrue(Math.abs(ours[j] - expected[j]) <= tolerance, () -> what + ": " + up.shortName() + "." + e.latent()
            + " -> " + down.shortName() + " " + Arrays.toString(e.downstream()) + ": ours " + Arrays.toString(e.delta())
            + " vs reference " + nonzero(expected) + " (at " + jj + ")");
        if (expected[j] != 0) compared++;
      }
    }
    assertTrue(latents.length == 0 || compared > 0, "no nonzero effects to compare from " + up + " to " + down);
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
