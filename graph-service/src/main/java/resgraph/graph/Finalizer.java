package resgraph.graph;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Session;
import resgraph.graph.CircuitPruner.RawEdge;
import resgraph.v1.FinalizeResponse;
import resgraph.v1.Latent;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenValue;

/**
 * Finalize: prunes a job's raw edges into its circuit (METHOD.md step 7), annotates the circuit's
 * nodes with the tokens they promote and suppress (step 8, from the model server), and marks it
 * all in the graph. Idempotent: the previous circuit marks and annotations are cleared in the same
 * transaction that writes the new ones, and the result depends only on the stored edges.
 */
@Singleton
public final class Finalizer {

  /** How many promoted and suppressed tokens each node keeps (METHOD.md step 8). */
  static final int TOP_TOKENS = 10;
  /** Latents per LogitEffects call: each is a forward pass from its layer to the logits. */
  private static final int LATENTS_PER_CALL = 32;
  /** Generous: the model server may have to load (even download) the job's model first. */
  private static final long MODEL_DEADLINE_SECONDS = 600;

  private final Jobs jobs;
  private final Circuits circuits;
  private final Driver driver;
  private final ModelServiceGrpc.ModelServiceBlockingStub model;

  public Finalizer(Jobs jobs, Circuits circuits, Driver driver, ModelServiceGrpc.ModelServiceBlockingStub model) {
    this.jobs = jobs;
    this.circuits = circuits;
    this.driver = driver;
    this.model = model;
  }

  public FinalizeResponse finalizeJob(String jobId) {
    StoredJob job = jobs.find(jobId);
    Circuits.Totals totals = circuits.totals(jobId);
    List<RawEdge> circuit = CircuitPruner.prune(circuits.candidateEdges(jobId), job.pruning());
    List<Latent> nodes = Circuits.nodesOf(circuit);
    List<LatentLogitEffects> annotations = logitEffects(job, nodes);
    write(job, totals, circuit, nodes.size(), annotations);
    return FinalizeResponse.newBuilder().setNodes(nodes.size()).setEdges(circuit.size()).setRawEdges(totals.edges()).build();
  }

  private List<LatentLogitEffects> logitEffects(StoredJob job, List<Latent> nodes) {
    List<LatentLogitEffects> out = new ArrayList<>();
    for (int from = 0; from < nodes.size(); from += LATENTS_PER_CALL) {
      LogitEffectsRequest req = LogitEffectsRequest.newBuilder()
          .setRef(job.job().getSpec().getRef())
          .addAllTokens(job.job().getTokensList())
          .addAllLatents(nodes.subList(from, Math.min(nodes.size(), from + LATENTS_PER_CALL)))
          .setTarget(job.job().getTarget())
          .setTop(TOP_TOKENS)
          .build();
      try {
        out.addAll(model.withDeadlineAfter(MODEL_DEADLINE_SECONDS, TimeUnit.SECONDS).logitEffects(req).getEffectsList());
      } catch (StatusRuntimeException e) {
        Status.Code code = e.getStatus().getCode();
        boolean retryable = code == Status.Code.UNAVAILABLE || code == Status.Code.DEADLINE_EXCEEDED
            || code == Status.Code.RESOURCE_EXHAUSTED;
        throw new GraphException(retryable ? GraphException.Kind.UNAVAILABLE : GraphException.Kind.NOT_READY,
            "the model server cannot annotate the circuit of job " + job.id() + ": " + code + " "
                + e.getStatus().getDescription(), e);
      }
    }
    return out;
  }

  private void write(StoredJob job, Circuits.Totals totals, List<RawEdge> circuit, int nodeCount,
      List<LatentLogitEffects> annotations) {
    double all = totals.absSum(), shown = 0;
    for (RawEdge e : circuit) shown += Math.abs(e.weight());
    Map<String, Object> jobProps = new HashMap<>();
    jobProps.put("finalized", true);
    jobProps.put("raw_edges", totals.edges());
    jobProps.put("circuit_edges", circuit.size());
    jobProps.put("circuit_nodes", nodeCount);
    jobProps.put("effect_shown", all == 0 ? 0 : shown / all);
    List<List<Integer>> edges = circuit.stream().map(e -> List.of(e.layer(), e.source(), e.target())).toList();
    List<Map<String, Object>> notes = annotations.stream().map(Finalizer::annotationRow).toList();
    Map<String, Object> params = Map.of("job", job.id(), "model", job.model(), "saes", job.saes(),
        "edges", edges, "notes", notes, "props", jobProps);
    try (Session session = driver.session()) {
      session.executeWriteWithoutResult(tx -> {
        // only a second Finalize has marks to clear, and looking for them means visiting every raw edge
        if (job.finalized()) tx.run("MATCH ()-[e:EFFECT {job: $job}]->() WHERE e.circuit IS NOT NULL REMOVE e.circuit", params);
        tx.run("""
            UNWIND $edges AS c
            MATCH (a:Feature {model: $model, saes: $saes, layer: c[0], latent: c[1]})
                  -[e:EFFECT {job: $job}]->(b:Feature {model: $model, saes: $saes, layer: c[0] + 1, latent: c[2]})
            SET e.circuit = true""", params);
        tx.run("""
            MATCH (:Job {id: $job})-[a:ACTIVE]->()
            WHERE a.promotes IS NOT NULL
            REMOVE a.promotes, a.promotes_ids, a.promotes_values, a.suppresses, a.suppresses_ids, a.suppresses_values""",
            params);
        // A node that was off everywhere has no ACTIVE relationship, and its logit effects are exactly zero.
        tx.run("""
            UNWIND $notes AS n
            MATCH (:Job {id: $job})-[a:ACTIVE]->(:Feature {model: $model, saes: $saes, layer: n.layer, latent: n.latent})
            SET a.promotes = n.promotes, a.promotes_ids = n.promotes_ids, a.promotes_values = n.promotes_values,
                a.suppresses = n.suppresses, a.suppresses_ids = n.suppresses_ids, a.suppresses_values = n.suppresses_values""",
            params);
        tx.run("MATCH (j:Job {id: $job}) SET j += $props", params);
      });
    }
  }

  private static Map<String, Object> annotationRow(LatentLogitEffects e) {
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("layer", e.getLatent().getLayer());
    row.put("latent", e.getLatent().getLatent());
    putTokens(row, "promotes", e.getPromotesList());
    putTokens(row, "suppresses", e.getSuppressesList());
    return row;
  }

  private static void putTokens(Map<String, Object> row, String name, List<TokenValue> tokens) {
    row.put(name, tokens.stream().map(TokenValue::getToken).toList());
    row.put(name + "_ids", tokens.stream().map(TokenValue::getId).toList());
    row.put(name + "_values", tokens.stream().map(t -> (double) t.getValue()).toList());
  }
}
