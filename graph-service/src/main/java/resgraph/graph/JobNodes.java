package resgraph.graph;

import jakarta.inject.Singleton;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import org.neo4j.driver.Value;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.platform.job.RecordedJobs;
import resgraph.v1.ChainSite;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.LayerActivations;
import resgraph.v1.Phase;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.SaeSetting;
import resgraph.v1.SparseActivations;
import resgraph.v1.TokenValue;

/**
 * (:Job) nodes and their ACTIVE relationships (see {@link GraphSchema}): RegisterJob, and what the
 * graph holds of a job; and the job each stands for, as the orchestrator records it.
 */
@Singleton
public final class JobNodes {

  /** ACTIVE rows per UNWIND statement; each carries an activation per prompt position. */
  private static final int ACTIVE_PER_STATEMENT = 1_000;

  private final Driver driver;
  private final RecordedJobs recorded;

  JobNodes(Driver driver, RecordedJobs recorded) {
    this.driver = driver;
    this.recorded = recorded;
  }

  /**
   * Stores the job and one ACTIVE relationship per latent active anywhere in its prompt, in one
   * transaction; the job alone when the request has no activations, as the orchestrator's first
   * call does. Idempotent: every write is a MERGE or SET of the same values, and what Annotate
   * added stays.
   */
  public void register(RegisterJobRequest req) {
    Job job = req.getJob();
    validate(req);
    Map<String, Object> props = properties(job, req.getPredictionsList());
    List<Map<String, Object>> active = activeRows(req.getActivationsList());
    String model = job.getSpec().getRef().getModel(), saes = job.getSpec().getRef().getSaes();
    try (Session session = driver.session()) {
      session.executeWriteWithoutResult(tx -> {
        // SET locks the job node until commit, so a concurrent registration waits and then sees this one's ACTIVE
        boolean first = tx.run("""
            MERGE (j:Job {id: $id}) ON CREATE SET j.finalized = false
            SET j += $props
            RETURN COUNT { (j)-[:ACTIVE]->() } = 0 AS first""",
            Map.of("id", job.getId(), "props", props)).single().get("first").asBoolean();
        // MERGE of a relationship looks through the job's others: on a first registration there are none to find
        String relate = first ? "CREATE (j)-[a:ACTIVE]->(f)" : "MERGE (j)-[a:ACTIVE]->(f)";
        for (int from = 0; from < active.size(); from += ACTIVE_PER_STATEMENT) {
          tx.run("""
              MATCH (j:Job {id: $id})
              UNWIND $rows AS r
              MERGE (f:Feature {model: $model, saes: $saes, hook: r.hook, latent: r.latent})
                ON CREATE SET f.layer = r.layer
              %s
              SET a.positions = r.positions, a.values = r.values""".formatted(relate),
              Map.of("id", job.getId(), "model", model, "saes", saes,
                  "rows", active.subList(from, Math.min(active.size(), from + ACTIVE_PER_STATEMENT))));
        }
      });
    }
  }

  /** What the graph holds of the job, or NOT_FOUND. */
  public StoredJob stored(String jobId) {
    if (jobId.isEmpty()) throw ResgraphException.badRequest("job_id is empty");
    try (Session session = driver.session()) {
      List<Record> rows = session.executeRead(tx -> tx.run("MATCH (j:Job {id: $id}) RETURN j", Map.of("id", jobId)).list());
      if (rows.isEmpty()) throw notRegistered(jobId, "with the graph service");
      return fromNode(rows.get(0).get("j"));
    }
  }

  /** A latent that is a candidate of the job (METHOD.md step 2: active at some position up to the target), and its activation at the target. */
  public record Candidate(String hook, int latent, double activation) {}

  /** The job's candidate latents at every site, from its ACTIVE relationships. */
  public List<Candidate> candidates(String jobId) {
    try (Session session = driver.session()) {
      return session.executeRead(tx -> tx.run("""
          MATCH (j:Job {id: $job})-[a:ACTIVE]->(f:Feature)
          WHERE a.positions[0] <= j.target
          RETURN f.hook AS hook, f.latent AS latent,
                 coalesce([i IN range(0, size(a.positions) - 1) WHERE a.positions[i] = j.target | a.values[i]][0], 0.0) AS activation""",
          Map.of("job", jobId))
          .list(r -> new Candidate(r.get("hook").asString(), r.get("latent").asInt(), r.get("activation").asDouble())));
    }
  }

  /** The job (its spec, phase and progress) as the orchestrator records it in resgraph.jobs, or NOT_FOUND. */
  public Job recorded(String jobId) {
    if (jobId.isEmpty()) throw ResgraphException.badRequest("job_id is empty");
    return recorded.current(jobId).map(JobRecord::getJob).orElseThrow(() -> notRegistered(jobId, "(resgraph.jobs has no record of it)"));
  }

  /** The job's phase as recorded so far; UNSPECIFIED for a job the orchestrator has no record of. */
  public Phase phase(String jobId) {
    return recorded.get(jobId).map(r -> r.getJob().getPhase()).orElse(Phase.PHASE_UNSPECIFIED);
  }

  /** Every stored job, newest first. */
  public List<StoredJob> list() {
    try (Session session = driver.session()) {
      return session.executeRead(tx -> tx.run("MATCH (j:Job) RETURN j ORDER BY j.created DESC, j.id DESC").list())
          .stream().map(r -> fromNode(r.get("j"))).toList();
    }
  }

  static ResgraphException notRegistered(String jobId, String where) {
    return ResgraphException.notFound("job \"" + jobId + "\" is not registered " + where);
  }

  private static void validate(RegisterJobRequest req) {
    Job job = req.getJob();
    if (job.getId().isEmpty()) throw ResgraphException.badRequest("job.id is empty");
    ModelRef ref = job.getSpec().getRef();
    if (ref.getModel().isEmpty() || ref.getSaes().isEmpty()) {
      throw ResgraphException.badRequest("job " + job.getId() + ": spec.ref needs both model and saes");
    }
    int n = job.getTokensCount();
    if (n == 0) throw ResgraphException.badRequest("job " + job.getId() + " has no tokens");
    if (job.getTokenStringsCount() != n) {
      throw ResgraphException.badRequest("job " + job.getId() + " has " + n + " tokens but " + job.getTokenStringsCount()
          + " token_strings");
    }
    if (job.getTarget() < 0 || job.getTarget() >= n) {
      throw ResgraphException.badRequest("job " + job.getId() + ": target " + job.getTarget() + " is outside its " + n + " tokens");
    }
    if (job.getChainCount() < 2) {
      throw ResgraphException.badRequest("job " + job.getId() + " has a chain of " + job.getChainCount() + " sites; it needs two at least");
    }
    JobRules.checkPruning(job.getSpec().getPruning());
    Set<String> chain = job.getChainList().stream().map(ChainSite::getHookName).collect(Collectors.toSet());
    for (LayerActivations site : req.getActivationsList()) {
      if (!chain.contains(site.getHookName())) {
        throw ResgraphException.badRequest("activations at " + site.getHookName() + ", which is not in job " + job.getId()
            + "'s chain " + chain);
      }
      if (site.getPositionsCount() != n) {
        throw ResgraphException.badRequest("activations at " + site.getHookName() + " cover " + site.getPositionsCount()
            + " positions, but job " + job.getId() + " has " + n + " tokens");
      }
      for (SparseActivations pos : site.getPositionsList()) {
        if (pos.getLatentsCount() != pos.getValuesCount()) {
          throw ResgraphException.badRequest("activations at " + site.getHookName() + " have " + pos.getLatentsCount()
              + " latents but " + pos.getValuesCount() + " values at one position");
        }
      }
    }
  }

  private static Map<String, Object> properties(Job job, List<TokenValue> predictions) {
    JobSpec spec = job.getSpec();
    Map<String, Object> p = new HashMap<>();
    p.put("prompt", spec.getPrompt());
    p.put("model", spec.getRef().getModel());
    p.put("saes", spec.getRef().getSaes());
    p.put("centering", spec.getRef().getCentering().name());
    p.put("method", JobRules.methodName(spec.getMethod()));
    p.put("ig_steps", JobRules.hasSteps(spec.getMethod()) ? spec.getIgSteps() : null);
    p.put("tokens", job.getTokensList());
    p.put("token_strings", job.getTokenStringsList());
    p.put("target", job.getTarget());
    p.put("layer_start", job.getLayerStart());
    p.put("layer_end", job.getLayerEnd());
    p.put("chain", job.getChainList().stream().map(ChainSite::getHookName).toList());
    p.put("release", job.getRelease());
    p.put("saes_settings", job.getSaesSettingsList().stream().map(JobNodes::settingText).toList());
    p.put("task_batch_size", spec.getTaskBatchSize());
    p.put("created", job.hasCreated() ? ZonedDateTime.ofInstant(
        Instant.ofEpochSecond(job.getCreated().getSeconds(), job.getCreated().getNanos()), ZoneOffset.UTC) : null);
    p.put("prediction_ids", predictions.stream().map(TokenValue::getId).toList());
    p.put("prediction_tokens", predictions.stream().map(TokenValue::getToken).toList());
    p.put("prediction_values", predictions.stream().map(t -> (double) t.getValue()).toList());
    return p;
  }

  /** "centering: on (release gpt2-small-res-jb (by name)) at blocks.3.hook_resid_pre": one setting as a line. */
  static String settingText(SaeSetting s) {
    return s.getName() + ": " + s.getValue() + " (" + s.getSource() + ")"
        + (s.getHooksCount() == 0 ? "" : " at " + String.join(", ", s.getHooksList()));
  }

  /**
   * One row per latent active at some position: {hook, layer, latent, positions, values}, its
   * nonzero activations as parallel lists in position order. Dense, a 1,024-token prompt's rows
   * were a gigabyte of zeros, in this service's heap and in Neo4j's.
   */
  private static List<Map<String, Object>> activeRows(List<LayerActivations> layers) {
    record Fired(List<Integer> positions, List<Double> values) {}
    List<Map<String, Object>> rows = new ArrayList<>();
    for (LayerActivations layer : layers) {
      TreeMap<Integer, Fired> byLatent = new TreeMap<>();
      for (int p = 0; p < layer.getPositionsCount(); p++) {
        SparseActivations at = layer.getPositions(p);
        for (int i = 0; i < at.getLatentsCount(); i++) {
          if (at.getValues(i) == 0) continue;
          Fired f = byLatent.computeIfAbsent(at.getLatents(i), k -> new Fired(new ArrayList<>(), new ArrayList<>()));
          f.positions().add(p);
          f.values().add((double) at.getValues(i));
        }
      }
      byLatent.forEach((latent, fired) -> {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("hook", layer.getHookName());
        row.put("layer", layer.getLayer());
        row.put("latent", latent);
        row.put("positions", fired.positions());
        row.put("values", fired.values());
        rows.add(row);
      });
    }
    // by hook and latent, the order EffectsStore takes features in: a registration, the writers of
    // effects that run beside it and other registrations lock shared features in one order
    rows.sort(Comparator.comparing((Map<String, Object> r) -> (String) r.get("hook")).thenComparing(r -> (Integer) r.get("latent")));
    return rows;
  }

  /** A latent's activation at each of {@code count} positions, from an ACTIVE relationship's positions and values. */
  static float[] dense(Value active, int count) {
    float[] a = new float[count];
    List<Object> positions = active.get("positions").asList(), values = active.get("values").asList();
    for (int i = 0; i < positions.size(); i++) a[((Number) positions.get(i)).intValue()] = ((Number) values.get(i)).floatValue();
    return a;
  }

  private static StoredJob fromNode(Value node) {
    Map<String, Object> p = node.asMap();
    List<Object> ids = list(p.get("prediction_ids")), tokens = list(p.get("prediction_tokens")),
        values = list(p.get("prediction_values"));
    List<TokenValue> predictions = new ArrayList<>();
    for (int i = 0; i < ids.size(); i++) {
      predictions.add(TokenValue.newBuilder().setId(intOf(ids.get(i))).setToken((String) tokens.get(i))
          .setValue(((Number) values.get(i)).floatValue()).build());
    }
    return new StoredJob((String) p.get("id"), (String) p.get("prompt"), (String) p.get("model"), (String) p.get("saes"),
        (String) p.get("method"),
        p.get("created") instanceof ZonedDateTime created ? created.toInstant() : null,
        predictions, Boolean.TRUE.equals(p.get("finalized")),
        p.get("raw_edges") instanceof Number n ? n.longValue() : 0,
        p.get("circuit_edges") instanceof Number n ? n.intValue() : 0,
        p.get("circuit_nodes") instanceof Number n ? n.intValue() : 0,
        p.get("effect_shown") instanceof Number n ? n.doubleValue() : 0);
  }

  @SuppressWarnings("unchecked")
  private static List<Object> list(Object o) {
    return o == null ? List.of() : (List<Object>) o;
  }

  private static int intOf(Object o) {
    return ((Number) o).intValue();
  }
}
