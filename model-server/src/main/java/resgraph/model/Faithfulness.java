package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BiPredicate;

/**
 * METHOD.md "Approximations": how much of the model's behaviour a circuit carries. The metric m(X)
 * is the clean top-1 next token's log-probability at the target (minus a contrast token's), with
 * every candidate latent not in X ablated at every site of the chain, in order: each site encodes
 * the residual as modified so far and removes the decoded contributions of the latents ablated
 * there (step 3). With M every candidate and ∅ none, a circuit C scores
 *
 * <pre>
 *   faithfulness = (m(C) - m(∅)) / (m(M) - m(∅))      completeness = (m(M∖C) - m(∅)) / (m(M) - m(∅))
 * </pre>
 *
 * Each m is one float64 forward pass from the chain's first site, positions up to the target only.
 */
public final class Faithfulness {

  /** One circuit's metric, its complement's, and the two ratios. */
  public record Score(int nodes, double circuit, double complement, double faithfulness, double completeness) {}

  /** The token m reads, m(M), m(∅), and each circuit's score in the order given. */
  public record Result(int metricToken, double full, double empty, List<Score> circuits) {}

  private final SaeModel model;
  private final Trace trace;
  private final Chain chain;
  private final int target;
  private final Integer contrast;
  private final Map<Site, int[]> candidates = new HashMap<>();
  private final int metricToken;

  private Faithfulness(SaeModel model, Trace trace, Chain chain, int target, Integer contrast) {
    this.model = model;
    this.trace = trace;
    this.chain = chain;
    this.target = target;
    this.contrast = contrast;
    for (Site s : chain.sites()) candidates.put(s, trace.candidates(s, model.firstAblatable(), target));
    this.metricToken = cleanTop();
  }

  /** Scores each circuit (its nodes by site; latents that are not candidates change nothing). */
  public static Result run(SaeModel model, Trace trace, Chain chain, int target, Integer contrast, List<Map<Site, Set<Integer>>> circuits) {
    try (NDScope scope = new NDScope()) {
      Faithfulness f = new Faithfulness(model, trace, chain, target, contrast);
      double full = f.metric(keeping(Map.of(), false)), empty = f.metric(keeping(Map.of(), true));
      List<Score> scores = new ArrayList<>();
      for (Map<Site, Set<Integer>> circuit : circuits) {
        int nodes = 0;
        for (Site s : chain.sites()) {
          Set<Integer> in = circuit.getOrDefault(s, Set.of());
          nodes += (int) Arrays.stream(f.candidates.get(s)).filter(in::contains).count();
        }
        double m = f.metric(keeping(circuit, true)), complement = f.metric(keeping(circuit, false));
        scores.add(new Score(nodes, m, complement, (m - empty) / (full - empty), (complement - empty) / (full - empty)));
      }
      return new Result(f.metricToken, full, empty, scores);
    }
  }

  /** Which candidates stay: those in {@code nodes} when {@code inside}, else those outside them. */
  private static BiPredicate<Site, Integer> keeping(Map<Site, Set<Integer>> nodes, boolean inside) {
    return (site, latent) -> nodes.getOrDefault(site, Set.of()).contains(latent) == inside;
  }

  /** m with every candidate that {@code keep} rejects ablated. */
  private double metric(BiPredicate<Site, Integer> keep) {
    try (NDScope scope = new NDScope()) {
      NDManager nd = model.manager();
      int n = target + 1, d = model.config().n_embd(), first = chain.sites().get(0).stream(), last = 2 * model.config().n_layer();
      Map<Integer, Site> byStream = new HashMap<>();
      for (Site s : chain.sites()) byStream.put(s.stream(), s);
      NDArray x = nd.create(trace.stream(first, n), new Shape(1, n, d)); // [1, n, d] float64
      NDArray out = model.gpt2.run(x, first, last, (stream, resid) -> {
        Site site = byStream.get(stream);
        if (site == null) return resid;
        int[] ablated = Arrays.stream(candidates.get(site)).filter(i -> !keep.test(site, i)).toArray();
        return ablated.length == 0 ? resid : resid.add(removal(site, resid.get(0), ablated).expandDims(0));
      });
      double[] logProbs = model.gpt2.logits(out.get(":, " + target + ":" + n + ", :")).reshape(-1).logSoftmax(0).toDoubleArray();
      return logProbs[metricToken] - (contrast == null ? 0 : logProbs[contrast]);
    }
  }

  /** Step 3 for several latents at once on the residual as it is now: -Σ_i s_p·f[p, i]·W_dec[i], [n, d] float64. */
  private NDArray removal(Site site, NDArray resid, int[] latents) {
    Sae sae = model.sae(site);
    int n = target + 1;
    Trace.SparseRow[] f = sae.encode(resid);
    double[] scale = sae.decoderScale(resid.toDoubleArray(), n);
    double[] c = new double[n * latents.length]; // [n, K]
    for (int p = model.firstAblatable(); p < n; p++) {
      for (int k = 0; k < latents.length; k++) c[p * latents.length + k] = -scale[p] * f[p].get(latents[k]);
    }
    return model.manager().create(c, new Shape(n, latents.length)).matMul(sae.decoderRows(latents)); // [n, K] x [K, d] -> [n, d]
  }

  /** The clean run's likeliest next token at the target, which m reads. */
  private int cleanTop() {
    NDArray x = model.manager().create(trace.streamAt(2 * model.config().n_layer(), target), new Shape(1, 1, model.config().n_embd()));
    return (int) model.gpt2.logits(x).reshape(-1).argMax().getLong();
  }
}
