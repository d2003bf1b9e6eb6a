package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import resgraph.model.SaeModel.TokenValue;

/**
 * METHOD.md step 8: ablate a latent as in step 3, run the rest of the model to the logits, and rank
 * the vocabulary by log_softmax(clean)[T] - log_softmax(ablated)[T].
 *
 * <p>The change is carried to the last stream as edges are ({@link DeltaPass}), then through ln_f
 * and the unembedding at the target. With z the clean logits and dz their change, the effect is
 * {@code log Σ_v softmax(z)_v·exp(dz_v) - dz}, evaluated in float64, so it keeps the precision of
 * dz and the top and bottom tokens are not decided by rounding.
 */
public final class LogitEffects {

  /** A latent at a site, to annotate. */
  public record Node(Site site, int latent) {}

  /** A latent and the tokens it promotes and suppresses, most extreme first. */
  public record Result(Site site, int latent, List<TokenValue> promotes, List<TokenValue> suppresses) {}

  /** The clean next-token probabilities at the target, float64 [V]. */
  private record Clean(double[] probabilities) implements Trace.Sized {
    @Override
    public long bytes() {
      return 8L * probabilities.length;
    }
  }

  /**
   * Nodes carried through the pass together: bounds the [B, V] logits, and at full context the
   * changes, held at once.
   */
  private static final int NODES_PER_PASS = 32;

  private LogitEffects() {}

  /** Each node's effects, in the order given. */
  public static List<Result> run(SaeModel model, Trace trace, List<Node> nodes, int target, int top) {
    return run(model, trace, nodes, target, top, DeltaPass.BLOCK_BYTES, NODES_PER_PASS);
  }

  /**
   * The same, with attention into every query taken in blocks of at most {@code blockBytes}, and
   * at most {@code nodesPerPass} nodes a pass.
   *
   * <p>The nodes of every site share one pass from the earliest site on, a site's joining it at its
   * stream: each block's weights are read once for all of them, and the unembedding, the largest
   * matrix, once a group rather than once a site.
   */
  static List<Result> run(SaeModel model, Trace trace, List<Node> nodes, int target, int top, long blockBytes, int nodesPerPass) {
    Result[] out = new Result[nodes.size()];
    List<Integer> firing = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node n = nodes.get(i);
      float[] f = trace.firing(n.site(), n.latent(), model.firstAblatable(), target);
      boolean fires = false;
      for (float v : f) fires |= v > 0;
      if (fires) firing.add(i);
      else out[i] = new Result(n.site(), n.latent(), List.of(), List.of()); // exactly zero: its extremes would be noise
    }
    if (firing.isEmpty()) return List.of(out);
    firing.sort(Comparator.comparing((Integer i) -> nodes.get(i).site().stream()).thenComparing(i -> nodes.get(i).site())); // as they join
    int first = nodes.get(firing.get(0)).site().stream(), last = 2 * model.config().n_layer(), d = model.config().n_embd();
    try (NDScope scope = new NDScope(); DeltaPass pass = new DeltaPass(model, trace, target, first, last, blockBytes)) {
      NDArray x = model.manager().create(trace.streamAt(last, target), new Shape(1, d)); // [1, d] float64
      NDArray p = model.manager().create(clean(model, trace, target).probabilities()); // [V]
      for (int start = 0; start < firing.size(); start += nodesPerPass) {
        List<Integer> group = firing.subList(start, Math.min(firing.size(), start + nodesPerPass));
        List<Result> results = group(model, pass, group.stream().map(nodes::get).toList(), x, p, top);
        for (int k = 0; k < group.size(); k++) out[group.get(k)] = results.get(k);
      }
    }
    return List.of(out);
  }

  /**
   * A group's nodes (in the order of their streams) through the pass together, a sub-block at a
   * time, so that the pass holds one sub-block's clean values rather than those of every block to
   * the logits; in batches as large as the pass allows.
   */
  private static List<Result> group(SaeModel model, DeltaPass pass, List<Node> nodes, NDArray x, NDArray p, int top) {
    try (NDScope scope = new NDScope()) {
      int size = pass.batchSize(nodes.size());
      List<List<Node>> parts = new ArrayList<>();
      for (int start = 0; start < nodes.size(); start += size) parts.add(nodes.subList(start, Math.min(nodes.size(), start + size)));
      List<SortedMap<Integer, DeltaPass.Rows>> entering = new ArrayList<>();
      for (List<Node> part : parts) {
        SortedMap<Integer, DeltaPass.Rows> byStream = new TreeMap<>();
        Map<Site, List<Integer>> bySite = new LinkedHashMap<>();
        for (Node n : part) bySite.computeIfAbsent(n.site(), s -> new ArrayList<>()).add(n.latent());
        bySite.forEach((site, latents) -> byStream.merge(site.stream(),
            pass.ablation(model.sae(site), latents.stream().mapToInt(Integer::intValue).toArray()), DeltaPass.Rows::then));
        entering.add(byStream);
      }
      List<DeltaPass.Rows> changed = pass.run(entering);
      List<Result> results = new ArrayList<>();
      for (int k = 0; k < parts.size(); k++) {
        try (NDScope batch = new NDScope()) {
          results.addAll(batch(model, parts.get(k), x, p, pass.atTarget(changed.get(k)), top)); // [B, d] at the target
        }
      }
      return results;
    }
  }

  private static List<Result> batch(SaeModel model, List<Node> nodes, NDArray x, NDArray p, NDArray change, int top) {
    Gpt2 gpt2 = model.gpt2;
    NDArray dln = Change.of(v -> gpt2.layerNorm(gpt2.ln_f, v), x, change); // [B, d]
    NDArray dz = dln.matMul(gpt2.wte.transpose()).toType(DataType.FLOAT64, false); // [B, d] x [d, V] -> [B, V]
    NDArray shift = dz.max(new int[] {-1}, true); // [B, 1], so that exp cannot overflow
    NDArray lse = dz.sub(shift).exp().mul(p).sum(new int[] {-1}, true).log().add(shift); // [B, 1]: lse(z + dz) - lse(z)
    NDArray effect = lse.sub(dz); // [B, V]: log_softmax(clean) - log_softmax(ablated)
    List<Result> out = new ArrayList<>(nodes.size());
    for (int k = 0; k < nodes.size(); k++) {
      NDArray e = effect.get(k);
      out.add(new Result(nodes.get(k).site(), nodes.get(k).latent(), SaeModel.top(e, top, true), SaeModel.top(e, top, false)));
    }
    return out;
  }

  /** softmax of the clean logits at the target; the logits in float32 (the unembedding is the largest matrix), widened. */
  private static Clean clean(SaeModel model, Trace trace, int target) {
    return trace.derived("probabilities at " + target, () -> {
      try (NDScope scope = new NDScope()) {
        int d = model.config().n_embd();
        NDArray x = model.manager().create(trace.streamAt(2 * model.config().n_layer(), target), new Shape(1, 1, d));
        NDArray h = model.gpt2.layerNorm(model.gpt2.ln_f, x).toType(DataType.FLOAT32, false);
        NDArray logits = h.matMul(model.gpt2.wte.transpose()).reshape(-1).toType(DataType.FLOAT64, false); // [V]
        return new Clean(logits.softmax(0).toDoubleArray());
      }
    });
  }
}
