package resgraph.graph;

import com.google.protobuf.Timestamp;
import jakarta.inject.Singleton;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import org.neo4j.driver.Value;
import resgraph.v1.Centering;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.LayerActivations;
import resgraph.v1.ModelRef;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.SparseActivations;
import resgraph.v1.TokenValue;

/** (:Job) nodes and their ACTIVE relationships (see {@link GraphSchema}): RegisterJob, and reading a job back. */
@Singleton
public final class Jobs {

  /** METHOD.md step 7's default, used when a job names no pruning rule. */
  public static final int DEFAULT_TOP_K = 10;

  /** ACTIVE rows per UNWIND statement; each carries an activation per prompt position. */
  private static final int ACTIVE_PER_STATEMENT = 1_000;

  private final Driver driver;

  public Jobs(Driver driver) {
    this.driver = driver;
  }

  /**
   * Stores the job and one ACTIVE relationship per latent active anywhere in its prompt, in one
   * transaction. Idempotent: every write is a MERGE or SET of the same values, and what Finalize
   * added stays.
   */
  public void register(RegisterJobRequest req) {
    Job job = req.getJob();
    validate(req);
    Map<String, Object> props = properties(job, req.getPredictionsList());
    List<Map<String, Object>> active = activeRows(req.getActivationsList(), job.getTokensCount());
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
              MERGE (f:Feature {model: $model, saes: $saes, layer: r.layer, latent: r.latent})
              %s
              SET a.activations = r.activations""".formatted(relate),
              Map.of("id", job.getId(), "model", model, "saes", saes,
                  "rows", active.subList(from, Math.min(active.size(), from + ACTIVE_PER_STATEMENT))));
        }
      });
    }
  }

  /** The job, or NOT_FOUND. */
  public StoredJob find(String jobId) {
    if (jobId.isEmpty()) throw GraphException.badRequest("job_id is empty");
    try (Session session = driver.session()) {
      List<Record> rows = session.executeRead(tx -> tx.run("MATCH (j:Job {id: $id}) RETURN j", Map.of("id", jobId)).list());
      if (rows.isEmpty()) throw GraphException.unknownJob(jobId);
      return fromNode(rows.get(0).get("j"));
    }
  }

  /** Every stored job, newest first. */
  public List<StoredJob> list() {
    try (Session session = driver.session()) {
      return session.executeRead(tx -> tx.run("MATCH (j:Job) RETURN j ORDER BY j.created DESC, j.id DESC").list())
          .stream().map(r -> fromNode(r.get("j"))).toList();
    }
  }

  private static void validate(RegisterJobRequest req) {
    Job job = req.getJob();
    if (job.getId().isEmpty()) throw GraphException.badRequest("job.id is empty");
    ModelRef ref = job.getSpec().getRef();
    if (ref.getModel().isEmpty() || ref.getSaes().isEmpty()) {
      throw GraphException.badRequest("job " + job.getId() + ": spec.ref needs both model and saes");
    }
    int n = job.getTokensCount();
    if (n == 0) throw GraphException.badRequest("job " + job.getId() + " has no tokens");
    if (job.getTokenStringsCount() != n) {
      throw GraphException.badRequest("job " + job.getId() + " has " + n + " tokens but " + job.getTokenStringsCount()
          + " token_strings");
    }
    if (job.getTarget() < 0 || job.getTarget() >= n) {
      throw GraphException.badRequest("job " + job.getId() + ": target " + job.getTarget() + " is outside its " + n + " tokens");
    }
    if (job.getLayerStart() < 0 || job.getLayerEnd() <= job.getLayerStart()) {
      throw GraphException.badRequest("job " + job.getId() + ": layer range " + job.getLayerStart() + ":" + job.getLayerEnd()
          + " is empty or negative");
    }
    Pruning p = job.getSpec().getPruning();
    if (p.getRuleCase() == Pruning.RuleCase.TOP_K && p.getTopK() < 1) {
      throw GraphException.badRequest("job " + job.getId() + ": pruning.top_k must be at least 1, not " + p.getTopK());
    }
    if (p.getRuleCase() == Pruning.RuleCase.THRESHOLD && !(p.getThreshold() >= 0 && Double.isFinite(p.getThreshold()))) {
      throw GraphException.badRequest("job " + job.getId() + ": pruning.threshold must be a finite number >= 0, not "
          + p.getThreshold());
    }
    for (LayerActivations layer : req.getActivationsList()) {
      if (layer.getPositionsCount() != n) {
        throw GraphException.badRequest("activations of layer " + layer.getLayer() + " cover " + layer.getPositionsCount()
            + " positions, but job " + job.getId() + " has " + n + " tokens");
      }
      for (SparseActivations pos : layer.getPositionsList()) {
        if (pos.getLatentsCount() != pos.getValuesCount()) {
          throw GraphException.badRequest("activations of layer " + layer.getLayer() + " have " + pos.getLatentsCount()
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
    p.put("tokens", job.getTokensList());
    p.put("token_strings", job.getTokenStringsList());
    p.put("target", job.getTarget());
    p.put("layer_start", job.getLayerStart());
    p.put("layer_end", job.getLayerEnd());
    p.put("pruning", pruningText(spec.getPruning()));
    p.put("task_batch_size", spec.getTaskBatchSize());
    p.put("created", job.hasCreated() ? ZonedDateTime.ofInstant(
        Instant.ofEpochSecond(job.getCreated().getSeconds(), job.getCreated().getNanos()), ZoneOffset.UTC) : null);
    p.put("prediction_ids", predictions.stream().map(TokenValue::getId).toList());
    p.put("prediction_tokens", predictions.stream().map(TokenValue::getToken).toList());
    p.put("prediction_values", predictions.stream().map(t -> (double) t.getValue()).toList());
    return p;
  }

  /** One row per latent active at some position: {layer, latent, activations at every position}. */
  private static List<Map<String, Object>> activeRows(List<LayerActivations> layers, int positions) {
    List<Map<String, Object>> rows = new ArrayList<>();
    for (LayerActivations layer : layers) {
      // sorted, so concurrent registrations lock shared features in one order and cannot deadlock
      TreeMap<Integer, double[]> byLatent = new TreeMap<>();
      for (int p = 0; p < layer.getPositionsCount(); p++) {
        SparseActivations at = layer.getPositions(p);
        for (int i = 0; i < at.getLatentsCount(); i++) {
          byLatent.computeIfAbsent(at.getLatents(i), k -> new double[positions])[p] = at.getValues(i);
        }
      }
      byLatent.forEach((latent, values) -> {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("layer", layer.getLayer());
        row.put("latent", latent);
        row.put("activations", values);
        rows.add(row);
      });
    }
    return rows;
  }

  static String pruningText(Pruning p) {
    return switch (p.getRuleCase()) {
      case THRESHOLD -> "threshold=" + p.getThreshold();
      case TOP_K -> "top_k=" + p.getTopK();
      case RULE_NOT_SET -> "top_k=" + DEFAULT_TOP_K;
    };
  }

  static Pruning parsePruning(String text) {
    int eq = text.indexOf('=');
    String kind = text.substring(0, eq), value = text.substring(eq + 1);
    return kind.equals("threshold") ? Pruning.newBuilder().setThreshold(Double.parseDouble(value)).build()
        : Pruning.newBuilder().setTopK(Integer.parseInt(value)).build();
  }

  private static StoredJob fromNode(Value node) {
    Map<String, Object> p = node.asMap();
    int target = intOf(p.get("target")), layerStart = intOf(p.get("layer_start")), layerEnd = intOf(p.get("layer_end"));
    boolean finalized = Boolean.TRUE.equals(p.get("finalized"));
    JobSpec spec = JobSpec.newBuilder()
        .setRef(ModelRef.newBuilder().setModel((String) p.get("model")).setSaes((String) p.get("saes"))
            .setCentering(Centering.valueOf((String) p.get("centering"))))
        .setPrompt((String) p.get("prompt"))
        .setLayerStart(layerStart)
        .setLayerEnd(layerEnd)
        .setTarget(target)
        .setPruning(parsePruning((String) p.get("pruning")))
        .setTaskBatchSize(intOf(p.get("task_batch_size")))
        .build();
    Job.Builder job = Job.newBuilder()
        .setId((String) p.get("id"))
        .setSpec(spec)
        .setPhase(finalized ? Phase.PHASE_DONE : Phase.PHASE_RUNNING)
        .setTarget(target)
        .setLayerStart(layerStart)
        .setLayerEnd(layerEnd);
    for (Object t : list(p.get("tokens"))) job.addTokens(intOf(t));
    for (Object s : list(p.get("token_strings"))) job.addTokenStrings((String) s);
    if (p.get("created") instanceof ZonedDateTime created) {
      Instant at = created.toInstant();
      job.setCreated(Timestamp.newBuilder().setSeconds(at.getEpochSecond()).setNanos(at.getNano()));
    }
    List<Object> ids = list(p.get("prediction_ids")), tokens = list(p.get("prediction_tokens")),
        values = list(p.get("prediction_values"));
    List<TokenValue> predictions = new ArrayList<>();
    for (int i = 0; i < ids.size(); i++) {
      predictions.add(TokenValue.newBuilder().setId(intOf(ids.get(i))).setToken((String) tokens.get(i))
          .setValue(((Number) values.get(i)).floatValue()).build());
    }
    return new StoredJob(job.build(), predictions, finalized,
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
