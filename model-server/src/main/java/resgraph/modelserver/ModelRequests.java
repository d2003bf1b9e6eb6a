package resgraph.modelserver;

import jakarta.inject.Singleton;
import java.util.List;
import java.util.concurrent.Semaphore;
import java.util.function.Supplier;
import resgraph.model.ExactAblation;
import resgraph.model.Gpt2Config;
import resgraph.model.Gpt2Tokenizer;
import resgraph.model.LogitEffects;
import resgraph.model.ModelException;
import resgraph.model.NaiveAblation;
import resgraph.model.Sae;
import resgraph.model.SaeModel;
import resgraph.model.Trace;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.DescribeResponse;
import resgraph.v1.LatentEffects;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LayerActivations;
import resgraph.v1.LayerCandidates;
import resgraph.v1.LayerSae;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.ModelRef;
import resgraph.v1.SparseActivations;
import resgraph.v1.Strategy;
import resgraph.v1.TokenValue;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * What the model server does for each request of the gRPC ModelService, over the resident pairs
 * and the trace cache: checks it, runs it, and shapes the reply. Heavy compute takes a permit,
 * since on a CPU two large passes at once only slow each other down.
 */
@Singleton
public final class ModelRequests {

  /** How many next-token predictions a trace reports, and tokens each logit effect, when a request does not say. */
  static final int DEFAULT_TOP = 10;

  private final ModelRegistry registry;
  private final TraceCache traces;
  private final int ablationBatch;
  private final Semaphore compute;

  public ModelRequests(ModelRegistry registry, TraceCache traces, ModelServerConfig config) {
    this.registry = registry;
    this.traces = traces;
    this.ablationBatch = config.ablationBatch();
    this.compute = new Semaphore(config.computePermits(), true);
  }

  public DescribeResponse describe(ModelRef ref) {
    try (ModelRegistry.Lease lease = registry.acquire(ref)) {
      SaeModel m = lease.loaded().model();
      Gpt2Config c = m.config();
      DescribeResponse.Builder out = DescribeResponse.newBuilder()
          .setModel(ref.getModel())
          .setModelPath(lease.loaded().modelPath())
          .setNLayer(c.n_layer())
          .setDModel(c.n_embd())
          .setNHead(c.n_head())
          .setVocabSize(c.vocab_size())
          .setNPositions(c.n_positions())
          .setSaes(ref.getSaes())
          .setSaesPath(lease.loaded().saesPath())
          .setPrependBos(m.prependBos)
          .setDevice(m.device());
      for (Sae s : m.saes()) {
        out.addLayers(LayerSae.newBuilder().setLayer(s.layer()).setHookName(s.cfg().hookName()).setDSae(s.d_sae())
            .setApplyBDecToInput(s.cfg().applyBDecToInput()).setCentered(s.centered()));
      }
      return out.build();
    }
  }

  public TokenizeResponse tokenize(ModelRef ref, String text) {
    try (ModelRegistry.Lease lease = registry.acquire(ref)) {
      SaeModel m = lease.loaded().model();
      int[] tokens = m.tokenize(text);
      m.checkTokens(tokens);
      TokenizeResponse.Builder out = TokenizeResponse.newBuilder().setBosPrepended(m.prependBos);
      for (int t : tokens) out.addTokens(t);
      out.addAllTokenStrings(Gpt2Tokenizer.tokenStrings(tokens));
      return out.build();
    }
  }

  public TraceResponse trace(TraceRequest req) {
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      Trace t = trace(m, tokens);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      TraceResponse.Builder out = TraceResponse.newBuilder().setTarget(target);
      for (Sae s : m.saes()) {
        LayerActivations.Builder layer = LayerActivations.newBuilder().setLayer(s.layer());
        for (Trace.SparseRow row : t.acts(s.layer())) {
          SparseActivations.Builder p = SparseActivations.newBuilder();
          for (int i = 0; i < row.latents().length; i++) p.addLatents(row.latents()[i]).addValues(row.values()[i]);
          layer.addPositions(p);
        }
        out.addLayers(layer);
        LayerCandidates.Builder candidates = LayerCandidates.newBuilder().setLayer(s.layer());
        for (int latent : t.candidates(s.layer(), m.firstAblatable(), target)) candidates.addLatents(latent);
        out.addCandidates(candidates);
      }
      int k = req.getTopPredictions() > 0 ? req.getTopPredictions() : DEFAULT_TOP;
      List<SaeModel.TokenValue> predictions = withPermit(() -> m.predictions(t, target, k));
      predictions.forEach(v -> out.addPredictions(tokenValue(v)));
      return out.build();
    }
  }

  public AblateResponse ablate(AblateRequest req) {
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      m.checkTokens(tokens);
      int layer = req.getLayer();
      m.checkAblatableLayer(layer);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      for (int latent : req.getLatentsList()) m.checkLatent(layer, Integer.toUnsignedLong(latent));
      Trace t = trace(m, tokens);
      int[] latents = req.getLatentsCount() == 0 ? t.candidates(layer, m.firstAblatable(), target)
          : req.getLatentsList().stream().mapToInt(Integer::intValue).toArray();
      List<ExactAblation.Effects> effects = withPermit(() -> req.getStrategy() == Strategy.STRATEGY_NAIVE
          ? NaiveAblation.run(m, t, layer, latents, target)
          : ExactAblation.run(m, t, layer, latents, target, ablationBatch));
      AblateResponse.Builder out = AblateResponse.newBuilder().setLayer(layer).setTarget(target);
      for (ExactAblation.Effects e : effects) {
        LatentEffects.Builder le = LatentEffects.newBuilder().setLatent(e.latent());
        for (int i = 0; i < e.downstream().length; i++) le.addDownstream(e.downstream()[i]).addDelta(e.delta()[i]);
        out.addEffects(le);
      }
      return out.build();
    }
  }

  public LogitEffectsResponse logitEffects(LogitEffectsRequest req) {
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      m.checkTokens(tokens);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      int[][] nodes = new int[req.getLatentsCount()][];
      for (int i = 0; i < nodes.length; i++) {
        int layer = req.getLatents(i).getLayer();
        long latent = Integer.toUnsignedLong(req.getLatents(i).getLatent());
        m.sae(layer);
        m.checkLatent(layer, latent);
        nodes[i] = new int[] {layer, (int) latent};
      }
      int top = req.getTop() > 0 ? req.getTop() : DEFAULT_TOP;
      Trace t = trace(m, tokens);
      List<LogitEffects.Result> results = withPermit(() -> LogitEffects.run(m, t, nodes, target, top));
      LogitEffectsResponse.Builder out = LogitEffectsResponse.newBuilder().setTarget(target);
      for (LogitEffects.Result r : results) {
        LatentLogitEffects.Builder le = LatentLogitEffects.newBuilder()
            .setLatent(resgraph.v1.Latent.newBuilder().setLayer(r.layer()).setLatent(r.latent()));
        r.promotes().forEach(v -> le.addPromotes(tokenValue(v)));
        r.suppresses().forEach(v -> le.addSuppresses(tokenValue(v)));
        out.addEffects(le);
      }
      return out.build();
    }
  }

  private Trace trace(SaeModel m, int[] tokens) {
    m.checkTokens(tokens);
    return traces.get(m, tokens, () -> withPermit(() -> m.trace(tokens)));
  }

  private <T> T withPermit(Supplier<T> work) {
    try {
      compute.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ModelException(ModelException.Kind.UNAVAILABLE, "interrupted while waiting for the device");
    }
    try {
      return work.get();
    } finally {
      compute.release();
    }
  }

  private static int[] tokens(List<Integer> ids) {
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  private static TokenValue tokenValue(SaeModel.TokenValue v) {
    return TokenValue.newBuilder().setId(v.id()).setToken(v.token()).setValue(v.value()).build();
  }
}
