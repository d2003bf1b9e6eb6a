package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Properties METHOD.md implies, checked on the model code directly. */
class InvariantsTest {

  private static final Site L0 = Site.pre(0), L1 = Site.pre(1);

  private static SaeModel model;
  private static Trace trace;
  private static int[] tokens;

  @BeforeAll
  static void load() {
    Path dir = Shapes.dir(Shapes.THREE_HEADS);
    model = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu());
    tokens = model.tokenize("The cat sat on the mat, and the dog sat on the cat.");
    trace = model.trace(tokens);
  }

  @AfterAll
  static void close() {
    model.close();
  }

  @Test
  void aLatentThatNeverFiresHasNoEffects() {
    int target = tokens.length - 1;
    int[] candidates = trace.candidates(L0, 1, target);
    int silent = IntStream.range(0, model.sae(L0).d_sae()).filter(j -> Arrays.binarySearch(candidates, j) < 0)
        .findFirst().orElseThrow();
    int[] mixed = {candidates[0], silent, candidates[1]};
    for (List<ExactAblation.Effects> effects : List.of(ExactAblation.run(model, trace, L0, L1, mixed, target, 8),
        NaiveAblation.run(model, trace, L0, L1, new int[] {silent}, target))) {
      ExactAblation.Effects e = effects.stream().filter(x -> x.latent() == silent).findFirst().orElseThrow();
      assertEquals(0, e.downstream().length, "ablating a silent latent changed " + Arrays.toString(e.downstream()));
    }
    assertTrue(ExactAblation.run(model, trace, L0, L1, mixed, target, 8).get(0).downstream().length > 0);
  }

  @Test
  void perLatentDecodedDeltasSumToTheReconstructionMinusBias() {
    Sae sae = model.sae(L1);
    int d = model.config().n_embd();
    try (NDScope scope = new NDScope()) {
      for (int p = 0; p < tokens.length; p++) {
        Trace.SparseRow row = trace.acts(L1)[p];
        // the sum of what ablating each active latent alone would subtract
        double[] sum = new double[d];
        for (int k = 0; k < row.latents().length; k++) {
          float[] direction = sae.decoderRow(row.latents()[k]).toFloatArray();
          for (int i = 0; i < d; i++) sum[i] += row.values()[k] * (double) direction[i];
        }
        float[] dense = new float[sae.d_sae()];
        for (int k = 0; k < row.latents().length; k++) dense[row.latents()[k]] = row.values()[k];
        NDArray f = model.manager().create(dense).toType(DataType.FLOAT64, false);
        double[] decoded = f.matMul(sae.W_dec.toType(DataType.FLOAT64, false)).toDoubleArray(); // decode(f) - b_dec
        for (int i = 0; i < d; i++) assertEquals(decoded[i], sum[i], 1e-9 * (1 + Math.abs(decoded[i])), "position " + p);
      }
    }
  }

  @Test
  void theBosPositionIsNeverAblated() {
    assertTrue(model.prependBos);
    int target = tokens.length - 1;
    Trace.SparseRow bos = trace.acts(L0)[0];
    assertTrue(bos.latents().length > 0, "the fixture should have latents firing at BOS");
    int[] candidates = trace.candidates(L0, model.firstAblatable(), target);
    int[] onlyAtBos = Arrays.stream(bos.latents()).filter(j -> Arrays.binarySearch(candidates, j) < 0).toArray();
    assertTrue(onlyAtBos.length > 0, "the fixture should have latents firing at BOS alone");
    for (ExactAblation.Effects e : ExactAblation.run(model, trace, L0, L1, onlyAtBos, target, 64)) {
      assertEquals(0, e.downstream().length, "latent " + e.latent() + " fires only at BOS but had effects");
    }
    float[] firing = trace.firing(L0, onlyAtBos[0], model.firstAblatable(), target);
    assertEquals(0f, firing[0]);
  }

  @Test
  void effectsAreMeasuredAtTheTargetAndLaterPositionsDoNotMatter() {
    int target = tokens.length - 4;
    int[] shorter = Arrays.copyOf(tokens, target + 1);
    Trace cut = model.trace(shorter);
    int[] candidates = trace.candidates(L0, 1, target);
    assertArrayEquals(candidates, cut.candidates(L0, 1, target));
    List<ExactAblation.Effects> full = ExactAblation.run(model, trace, L0, L1, candidates, target, 64);
    List<ExactAblation.Effects> part = ExactAblation.run(model, cut, L0, L1, candidates, target, 64);
    for (int i = 0; i < candidates.length; i++) {
      assertArrayEquals(full.get(i).downstream(), part.get(i).downstream());
      assertArrayEquals(full.get(i).delta(), part.get(i).delta(), 1e-6f);
    }
  }

  @Test
  void batchingDoesNotChangeAnyEffect() {
    int target = tokens.length - 1;
    int[] candidates = trace.candidates(L0, 1, target);
    List<ExactAblation.Effects> one = ExactAblation.run(model, trace, L0, L1, candidates, target, 1);
    List<ExactAblation.Effects> all = ExactAblation.run(model, trace, L0, L1, candidates, target, candidates.length);
    for (int i = 0; i < candidates.length; i++) {
      assertArrayEquals(one.get(i).downstream(), all.get(i).downstream(), "latent " + candidates[i]);
      assertArrayEquals(one.get(i).delta(), all.get(i).delta(), 1e-6f, "latent " + candidates[i]);
    }
    assertFalse(one.isEmpty());
  }

  /**
   * Logit effects carry a group of batches to the logits a sub-block at a time, freeing each
   * sub-block's clean values and each batch's intermediate changes as it goes, and a later site's
   * ablations join a batch at that site's stream: every ablation must arrive as it does carried alone.
   */
  @Test
  void batchesCarriedTogetherChangeAsEachCarriedAlone() {
    int target = tokens.length - 1, last = 2 * model.config().n_layer();
    int[] candidates = trace.candidates(L0, 1, target), later = trace.candidates(L1, 1, target);
    int third = candidates.length / 3;
    List<int[]> parts = List.of(Arrays.copyOfRange(candidates, 0, third), Arrays.copyOfRange(candidates, third, 2 * third),
        Arrays.copyOfRange(candidates, 2 * third, candidates.length));
    try (NDScope scope = new NDScope()) {
      List<NDArray> alone = new ArrayList<>();
      try (DeltaPass pass = new DeltaPass(model, trace, target, L0.stream(), last)) {
        for (int[] part : parts) alone.add(pass.atTarget(pass.run(pass.ablation(model.sae(L0), part))));
      }
      try (DeltaPass pass = new DeltaPass(model, trace, target, L1.stream(), last)) {
        alone.set(0, alone.get(0).concat(pass.atTarget(pass.run(pass.ablation(model.sae(L1), later))), 0)); // after the first part's
      }
      try (DeltaPass pass = new DeltaPass(model, trace, target, L0.stream(), last)) {
        List<SortedMap<Integer, DeltaPass.Rows>> batches = new ArrayList<>();
        for (int[] part : parts) batches.add(new TreeMap<>(Map.of(L0.stream(), pass.ablation(model.sae(L0), part))));
        batches.get(0).put(L1.stream(), pass.ablation(model.sae(L1), later));
        List<DeltaPass.Rows> together = pass.run(batches);
        for (int k = 0; k < parts.size(); k++) {
          float[] change = alone.get(k).toFloatArray();
          assertArrayEquals(change, pass.atTarget(together.get(k)).toFloatArray(), 1e-6f, "batch " + k);
          assertTrue(IntStream.range(0, change.length).anyMatch(i -> change[i] != 0), "batch " + k + " changes nothing");
        }
      }
    }
    assertTrue(later.length > 0, "a later site's ablations to join");
  }

  /**
   * The backward pass reads what the forward pass kept; a garbage collection in between must not
   * change it. Through a whole block and each normalisation an SAE may read with, so that every
   * product and quotient by a constant is on the path.
   */
  @Test
  void gradientsDoNotDependOnWhenMemoryIsCollected() throws InterruptedException {
    for (SaeConfig.Normalization normalization : SaeConfig.Normalization.values()) {
      try (NDScope scope = new NDScope()) {
        NDArray x = model.manager().create(trace.stream(0, tokens.length), new Shape(1, tokens.length, model.config().n_embd()));
        double[] undisturbed = gradient(x, normalization, false), collected = gradient(x, normalization, true);
        assertTrue(Arrays.stream(undisturbed).allMatch(Double::isFinite), normalization + ": a finite gradient");
        assertTrue(Arrays.stream(undisturbed).anyMatch(g -> g != 0), normalization + ": a gradient at all");
        assertArrayEquals(undisturbed, collected, normalization + ": the same gradient after a collection");
      }
    }
  }

  /** ∂/∂x of Σ normalised(block 0(x))·x_clean (a sum alone is constant once centred), with a garbage collection between the passes or not. */
  private static double[] gradient(NDArray clean, SaeConfig.Normalization normalization, boolean collect) throws InterruptedException {
    NDArray x = clean.duplicate();
    try (GradientCollector collector = model.manager().getEngine().newGradientCollector()) {
      x.setRequiresGradient(true);
      NDArray y = Sae.normalize(model.gpt2.block(0, x), true, normalization).mul(clean).sum();
      if (collect) {
        System.gc();
        Thread.sleep(200); // the JVM's cleaner frees collected direct buffers on a thread of its own
      }
      collector.backward(y);
    }
    return x.getGradient().toDoubleArray();
  }
}
