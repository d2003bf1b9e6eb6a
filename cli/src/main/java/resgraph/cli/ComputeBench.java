package resgraph.cli;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.List;
import resgraph.model.Attribution;
import resgraph.model.Chain;
import resgraph.model.ExactAblation;
import resgraph.model.Gpt2Config;
import resgraph.model.NaiveAblation;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.Trace;

/**
 * The model server's compute, measured in-process on a loaded model: exact ablations per second
 * and the useful FLOPs they do, the seed's naive procedure on a sample, the approximate methods'
 * cost over the same chain, and this machine's GEMM throughput through the same engine.
 */
final class ComputeBench {

  /** What one measurement found. */
  record Result(int candidates, long rawEdges, double seconds, double flops, double naivePerSecond, int naiveSample) {
    double perSecond() {
      return candidates / seconds;
    }

    double gflops() {
      return flops / seconds / 1e9;
    }
  }

  private ComputeBench() {}

  /**
   * Useful floating-point work of one exact ablation (multiply-adds count two), from the shapes:
   * the changed rows' keys, values and queries ({@code 2·R·d·3d}); at the target the attention
   * scores and mixing over m positions ({@code 4·m·d}), the output projection ({@code 2·d²}), the
   * MLP ({@code 2·2·d·n_inner}) and the next SAE's encoder ({@code 2·d·S}). LayerNorm, GELU, softmax
   * and the ReLU are O(d) per row and left out.
   */
  static double flops(Gpt2Config c, int changedRows, int positions, int dSae) {
    double d = c.n_embd();
    return 2 * changedRows * d * 3 * d + 4.0 * positions * d + 2 * d * d + 4 * d * c.n_inner() + 2 * d * dSae;
  }

  /** Exact ablation of every candidate of each site of {@code chain} but the last, timed after a warm-up batch. */
  static Result exact(SaeModel m, Trace t, Chain chain, int batch, int naivePerSite) {
    int target = t.length() - 1;
    List<Site> ablated = chain.sites().subList(0, chain.sites().size() - 1);
    Site first = ablated.get(0);
    ExactAblation.run(m, t, first, chain.next(first), Arrays.copyOf(t.candidates(first, m.firstAblatable(), target), 8),
        target, batch); // warm-up: lazy initialisation and the clean pass at the target
    int candidates = 0;
    long edges = 0;
    double flops = 0;
    long start = System.nanoTime();
    for (Site site : ablated) {
      int[] latents = t.candidates(site, m.firstAblatable(), target);
      candidates += latents.length;
      for (ExactAblation.Effects e : ExactAblation.run(m, t, site, chain.next(site), latents, target, batch)) {
        edges += e.downstream().length;
      }
      for (int latent : latents) {
        int rows = 0;
        for (float f : t.firing(site, latent, m.firstAblatable(), target)) if (f > 0) rows++;
        flops += flops(m.config(), rows, target + 1, m.sae(chain.next(site)).d_sae());
      }
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    int sampled = 0;
    double naiveSeconds = 0;
    if (naivePerSite > 0) {
      NaiveAblation.run(m, t, first, chain.next(first), new int[] {t.candidates(first, m.firstAblatable(), target)[0]}, target);
      for (Site site : ablated.subList(0, Math.min(3, ablated.size()))) {
        int[] sample = Arrays.copyOf(t.candidates(site, m.firstAblatable(), target), naivePerSite);
        long s = System.nanoTime();
        NaiveAblation.run(m, t, site, chain.next(site), sample, target);
        naiveSeconds += (System.nanoTime() - s) / 1e9;
        sampled += sample.length;
      }
    }
    return new Result(candidates, edges, seconds, flops, sampled == 0 ? 0 : sampled / naiveSeconds, sampled);
  }

  /** One method over every layer pair of a chain: wall seconds per pair, the raw edges it found, and rates. */
  record MethodCost(int pairs, int candidates, long rawEdges, double seconds) {
    double secondsPerPair() {
      return seconds / pairs;
    }

    double edgesPerSecond() {
      return rawEdges / seconds;
    }

    double latentsPerSecond() {
      return candidates / seconds;
    }
  }

  /** The exact measurement as a method's cost, to set beside the approximations'. */
  static MethodCost cost(Result exact, Chain chain) {
    return new MethodCost(chain.sites().size() - 1, exact.candidates(), exact.rawEdges(), exact.seconds());
  }

  /** An approximate method's edges for every candidate of each site of {@code chain} but the last, timed after a warm-up. */
  static MethodCost approximate(SaeModel m, Trace t, Chain chain, Attribution.Method method, int steps) {
    int target = t.length() - 1;
    List<Site> ablated = chain.sites().subList(0, chain.sites().size() - 1);
    Site first = ablated.get(0);
    Attribution.run(m, t, first, chain.next(first), new int[0], target, method, 1); // warm-up: the engine's autograd
    int candidates = 0;
    long edges = 0;
    long start = System.nanoTime();
    for (Site site : ablated) {
      int[] latents = t.candidates(site, m.firstAblatable(), target);
      candidates += latents.length;
      for (ExactAblation.Effects e : Attribution.run(m, t, site, chain.next(site), latents, target, method, steps)) {
        edges += e.downstream().length;
      }
    }
    return new MethodCost(ablated.size(), candidates, edges, (System.nanoTime() - start) / 1e9);
  }

  /** GFLOP/s of the ablations' dominant product, [B, d] x [d, S] in float32, best of several. */
  static double gemmGflops(int d, int dSae, int batch) {
    try (NDManager nd = NDManager.newBaseManager(SaeModel.defaultDevice()); NDScope scope = new NDScope()) {
      NDArray a = nd.randomNormal(new Shape(batch, d)), b = nd.randomNormal(new Shape(d, dSae));
      double best = Double.MAX_VALUE;
      for (int i = 0; i < 7; i++) {
        long s = System.nanoTime();
        try (NDArray c = a.matMul(b)) {
          c.getFloat(0, 0); // forces the product to finish
        }
        best = Math.min(best, (System.nanoTime() - s) / 1e9);
      }
      return 2.0 * batch * d * dSae / best / 1e9;
    }
  }
}
