package resgraph.modelserver;

import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.function.Supplier;
import resgraph.model.Attribution;
import resgraph.model.Chain;
import resgraph.model.ExactAblation;
import resgraph.model.Faithfulness;
import resgraph.model.Gpt2Config;
import resgraph.model.Gpt2Tokenizer;
import resgraph.model.LogitEffects;
import resgraph.model.NaiveAblation;
import resgraph.model.Sae;
import resgraph.model.SaeConfig;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.TorchThreads;
import resgraph.model.Trace;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.ChainSite;
import resgraph.v1.CircuitScore;
import resgraph.v1.DescribeResponse;
import resgraph.v1.FaithfulnessRequest;
import resgraph.v1.FaithfulnessResponse;
import resgraph.v1.LatentEffects;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LayerActivations;
import resgraph.v1.LayerCandidates;
import resgraph.v1.LayerSae;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.Method;
import resgraph.v1.ModelRef;
import resgraph.v1.NodeSet;
import resgraph.v1.SaeSetting;
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
      Optional<ModelSources.Recognised> release = lease.loaded().release();
      release.ifPresent(r -> out.setRelease(r.describe()));
      for (Sae s : m.saes()) {
        out.addLayers(LayerSae.newBuilder().setLayer(s.site().layer()).setHookName(s.site().hookName())
            .setSite(s.site().shortName()).setDSae(s.d_sae()).setApplyBDecToInput(s.cfg.applyBDecToInput())
            .setCentered(s.centered).setArchitecture(s.architecture().word()).setK(s.cfg.k())
            .setNormalizeActivations(s.cfg.normalization().word)
            .setNeuronpedia(neuronpedia(lease.loaded(), s.site())));
      }
      out.addAllSettings(settings(m.saes(), release));
      return out.build();
    }
  }

  /** The SAE's id on Neuronpedia, when its release is hosted there; else empty. */
  private static String neuronpedia(ModelRegistry.Loaded loaded, Site site) {
    return loaded.release().flatMap(r -> r.release().member(site)).map(SaeReleases.Member::neuronpedia).orElse("");
  }

  /** Each decision about the SAEs once, with the hooks it applies to when it does not apply to all. */
  private static List<SaeSetting> settings(Collection<Sae> saes, Optional<ModelSources.Recognised> release) {
    List<SaeSetting> out = new ArrayList<>();
    release.ifPresent(r -> out.add(SaeSetting.newBuilder().setName("release").setValue(r.release().name()).setSource(r.how()).build()));
    Map<SaeConfig.Setting, List<String>> hooks = new LinkedHashMap<>();
    for (Sae s : saes) {
      for (SaeConfig.Setting setting : s.cfg.settings()) {
        hooks.computeIfAbsent(setting, k -> new ArrayList<>()).add(s.site().hookName());
      }
    }
    hooks.forEach((setting, at) -> {
      if (setting.name().equals("hook")) return; // every SAE's own, as LayerSae.hook_name says
      out.add(SaeSetting.newBuilder().setName(setting.name()).setValue(setting.value()).setSource(setting.source())
          .addAllHooks(at.size() == saes.size() ? List.of() : at).build());
    });
    return out;
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
    int k = count(req.getTopPredictions(), "top_predictions");
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      Chain chain = m.chain(req.hasLayerStart() ? req.getLayerStart() : null, req.hasLayerEnd() ? req.getLayerEnd() : null,
          req.getSitesList());
      Trace t = trace(m, tokens);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      TraceResponse.Builder out = TraceResponse.newBuilder().setTarget(target);
      for (Site site : chain.sites()) {
        out.addChain(ChainSite.newBuilder().setHookName(site.hookName()).setSite(site.shortName()).setLayer(site.layer())
            .setDSae(m.sae(site).d_sae()).setNodePrefix(chain.nodePrefix(site))
            .setNeuronpedia(neuronpedia(lease.loaded(), site)));
        LayerActivations.Builder layer = LayerActivations.newBuilder().setLayer(site.layer()).setHookName(site.hookName());
        for (Trace.SparseRow row : t.acts(site)) {
          SparseActivations.Builder p = SparseActivations.newBuilder();
          for (int i = 0; i < row.latents().length; i++) p.addLatents(row.latents()[i]).addValues(row.values()[i]);
          layer.addPositions(p);
        }
        out.addLayers(layer);
        LayerCandidates.Builder candidates = LayerCandidates.newBuilder().setLayer(site.layer()).setHookName(site.hookName());
        for (int latent : t.candidates(site, m.firstAblatable(), target)) candidates.addLatents(latent);
        out.addCandidates(candidates);
      }
      List<SaeModel.TokenValue> predictions = withPermit(() -> m.predictions(t, target, k == 0 ? DEFAULT_TOP : k));
      predictions.forEach(v -> out.addPredictions(tokenValue(v)));
      return out.build();
    }
  }

  public AblateResponse ablate(AblateRequest req) {
    if (req.getStrategy() == Strategy.UNRECOGNIZED) {
      throw ResgraphException.badRequest("strategy " + req.getStrategyValue() + " is none of STRATEGY_EXACT (0), STRATEGY_NAIVE (1)");
    }
    Attribution.Method approximation = approximation(req.getMethod(), req.getMethodValue());
    if (approximation != null && req.getStrategy() == Strategy.STRATEGY_NAIVE) {
      throw ResgraphException.badRequest("STRATEGY_NAIVE reruns the model per ablation; " + req.getMethod() + " takes no ablation");
    }
    int steps = igSteps(req.getIgSteps());
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      m.checkTokens(tokens);
      Site up = site(m, req.getHookName(), req.getLayer());
      Site down = req.getMeasureHookName().isEmpty() ? m.chain(null, null, List.of()).next(up) : site(m, req.getMeasureHookName(), 0);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      for (int latent : req.getLatentsList()) m.checkLatent(up, Integer.toUnsignedLong(latent));
      Trace t = trace(m, tokens);
      int[] latents = req.getLatentsCount() == 0 ? t.candidates(up, m.firstAblatable(), target)
          : req.getLatentsList().stream().mapToInt(Integer::intValue).toArray();
      List<ExactAblation.Effects> effects = withPermit(() -> approximation != null
          ? Attribution.run(m, t, up, down, latents, target, approximation, steps)
          : req.getStrategy() == Strategy.STRATEGY_NAIVE
          ? NaiveAblation.run(m, t, up, down, latents, target)
          : ExactAblation.run(m, t, up, down, latents, target, ablationBatch));
      AblateResponse.Builder out = AblateResponse.newBuilder().setLayer(up.layer()).setTarget(target)
          .setHookName(up.hookName()).setMeasureHookName(down.hookName());
      for (ExactAblation.Effects e : effects) {
        LatentEffects.Builder le = LatentEffects.newBuilder().setLatent(e.latent());
        for (int i = 0; i < e.downstream().length; i++) le.addDownstream(e.downstream()[i]).addDelta(e.delta()[i]);
        out.addEffects(le);
      }
      return out.build();
    }
  }

  public LogitEffectsResponse logitEffects(LogitEffectsRequest req) {
    int top = count(req.getTop(), "top");
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      m.checkTokens(tokens);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      List<LogitEffects.Node> nodes = new ArrayList<>();
      for (resgraph.v1.Latent l : req.getLatentsList()) {
        Site site = site(m, l.getHookName(), l.getLayer());
        m.checkLatent(site, Integer.toUnsignedLong(l.getLatent()));
        nodes.add(new LogitEffects.Node(site, l.getLatent()));
      }
      Trace t = trace(m, tokens);
      List<LogitEffects.Result> results = withPermit(() -> LogitEffects.run(m, t, nodes, target, top == 0 ? DEFAULT_TOP : top));
      LogitEffectsResponse.Builder out = LogitEffectsResponse.newBuilder().setTarget(target);
      for (LogitEffects.Result r : results) {
        LatentLogitEffects.Builder le = LatentLogitEffects.newBuilder().setLatent(resgraph.v1.Latent.newBuilder()
            .setLayer(r.site().layer()).setLatent(r.latent()).setHookName(r.site().hookName()));
        r.promotes().forEach(v -> le.addPromotes(tokenValue(v)));
        r.suppresses().forEach(v -> le.addSuppresses(tokenValue(v)));
        out.addEffects(le);
      }
      return out.build();
    }
  }

  public FaithfulnessResponse faithfulness(FaithfulnessRequest req) {
    try (ModelRegistry.Lease lease = registry.acquire(req.getRef())) {
      SaeModel m = lease.loaded().model();
      int[] tokens = tokens(req.getTokensList());
      m.checkTokens(tokens);
      int target = m.target(req.hasTarget() ? req.getTarget() : null, tokens.length);
      Chain chain = m.chain(null, null, req.getSitesList());
      Integer contrast = req.hasContrast() ? req.getContrast() : null;
      if (contrast != null && (contrast < 0 || contrast >= m.config().vocab_size())) {
        throw ResgraphException.badRequest("contrast token " + contrast + " is outside the vocabulary 0.." + (m.config().vocab_size() - 1));
      }
      List<Map<Site, Set<Integer>>> circuits = new ArrayList<>();
      for (NodeSet set : req.getCircuitsList()) {
        Map<Site, Set<Integer>> circuit = new HashMap<>();
        for (resgraph.v1.Latent l : set.getNodesList()) {
          Site site = site(m, l.getHookName(), l.getLayer());
          if (!chain.sites().contains(site)) {
            throw ResgraphException.badRequest("node " + site.shortName() + "." + l.getLatent() + " is not on the chain "
                + Chain.describe(chain.sites()));
          }
          m.checkLatent(site, Integer.toUnsignedLong(l.getLatent()));
          circuit.computeIfAbsent(site, s -> new HashSet<>()).add(l.getLatent());
        }
        circuits.add(circuit);
      }
      Trace t = trace(m, tokens);
      Faithfulness.Result r = withPermit(() -> Faithfulness.run(m, t, chain, target, contrast, circuits));
      FaithfulnessResponse.Builder out = FaithfulnessResponse.newBuilder().setTarget(target).setMFull(r.full()).setMEmpty(r.empty())
          .setMetricToken(TokenValue.newBuilder().setId(r.metricToken()).setToken(Gpt2Tokenizer.decode(r.metricToken()))
              .setValue((float) r.full()));
      if (contrast != null) out.setContrast(contrast);
      for (Faithfulness.Score s : r.circuits()) {
        out.addCircuits(CircuitScore.newBuilder().setNodes(s.nodes()).setMCircuit(s.circuit()).setMComplement(s.complement())
            .setFaithfulness(s.faithfulness()).setCompleteness(s.completeness()));
      }
      return out.build();
    }
  }

  /** The gradient method a request asks for; null for the exact ablation. */
  private static Attribution.Method approximation(Method method, int value) {
    return switch (method) {
      case METHOD_ABLATION -> null;
      case METHOD_ATTRIBUTION -> Attribution.Method.ATTRIBUTION;
      case METHOD_INTEGRATED_GRADIENTS -> Attribution.Method.INTEGRATED_GRADIENTS;
      case UNRECOGNIZED -> throw ResgraphException.badRequest("method " + value + " is none of METHOD_ABLATION (0), "
          + "METHOD_ATTRIBUTION (1), METHOD_INTEGRATED_GRADIENTS (2)");
    };
  }

  /** Integrated gradients' steps: 0 means METHOD.md's default. */
  private static int igSteps(int steps) {
    if (steps < 0 || steps > JobRules.MAX_IG_STEPS) {
      throw ResgraphException.badRequest("ig_steps " + steps + " is outside 1.." + JobRules.MAX_IG_STEPS + " (0 means "
          + JobRules.DEFAULT_IG_STEPS + ")");
    }
    return steps == 0 ? JobRules.DEFAULT_IG_STEPS : steps;
  }

  /** The site a request names: by hook name or short name, else by layer when that is unambiguous. */
  private static Site site(SaeModel m, String name, int layer) {
    if (name.isEmpty()) return m.siteOfLayer(layer);
    try {
      Site s = Site.parse(name);
      m.sae(s);
      return s;
    } catch (IllegalArgumentException e) {
      throw ResgraphException.badRequest(e.getMessage());
    }
  }

  /** A count a request may leave at 0 for the default, but not make negative. */
  private static int count(int value, String field) {
    if (value < 0) throw ResgraphException.badRequest(field + " is " + value + "; it must be 0 (the default) or more");
    return value;
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
      throw new ResgraphException(ResgraphException.Kind.UNAVAILABLE, "interrupted while waiting for the device");
    }
    try {
      TorchThreads.adopt(); // a request's bits must not depend on which server thread took it
      return work.get();
    } finally {
      compute.release();
      NativeMemory.trim();
    }
  }

  private static int[] tokens(List<Integer> ids) {
    return ids.stream().mapToInt(Integer::intValue).toArray();
  }

  private static TokenValue tokenValue(SaeModel.TokenValue v) {
    return TokenValue.newBuilder().setId(v.id()).setToken(v.token()).setValue(v.value()).build();
  }
}
