package resgraph.graph;

import jakarta.inject.Singleton;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import resgraph.v1.CircuitEdge;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.TokenValue;

/**
 * Annotate: marks a pruned circuit's edges and stores its nodes' logit effects (METHOD.md step 8),
 * which finalizes the job in the graph. Idempotent: the previous circuit marks and annotations are
 * cleared in the same transaction that writes the new ones.
 */
@Singleton
public final class CircuitAnnotator {

  /** What Annotate wrote: the circuit's nodes and edges, and the job's raw edges. */
  public record Annotated(int nodes, int edges, long rawEdges) {}

  private final JobNodes jobs;
  private final StoredCircuits circuits;
  private final Driver driver;

  CircuitAnnotator(JobNodes jobs, StoredCircuits circuits, Driver driver) {
    this.jobs = jobs;
    this.circuits = circuits;
    this.driver = driver;
  }

  /** Marks {@code circuit} and stores {@code annotations}; NOT_FOUND for a job never registered. */
  public Annotated annotate(String jobId, List<CircuitEdge> circuit, List<LatentLogitEffects> annotations) {
    StoredJob job = jobs.stored(jobId);
    StoredCircuits.Totals totals = circuits.totals(jobId);
    Set<List<Object>> ends = new HashSet<>();
    for (CircuitEdge e : circuit) {
      ends.add(List.of(e.getSourceHook(), e.getSource()));
      ends.add(List.of(e.getTargetHook(), e.getTarget()));
    }
    int nodes = ends.size();
    List<List<Object>> edges = circuit.stream()
        .map(e -> List.<Object>of(e.getSourceHook(), e.getSource(), e.getTargetHook(), e.getTarget())).toList();
    List<Map<String, Object>> notes = annotations.stream().map(CircuitAnnotator::annotationRow).toList();
    Map<String, Object> params = Map.of("job", job.id(), "model", job.model(), "saes", job.saes(), "edges", edges, "notes", notes);
    try (Session session = driver.session()) {
      return session.executeWrite(tx -> {
        // only a second Annotate has marks to clear, and looking for them means visiting every edge of the job
        if (job.finalized()) tx.run("MATCH ()-[e:EFFECT {job: $job}]->() WHERE e.circuit IS NOT NULL REMOVE e.circuit", params);
        Record marked = tx.run("""
            UNWIND $edges AS c
            MATCH (a:Feature {model: $model, saes: $saes, hook: c[0], latent: c[1]})
                  -[e:EFFECT {job: $job}]->(b:Feature {model: $model, saes: $saes, hook: c[2], latent: c[3]})
            SET e.circuit = true
            RETURN count(e) AS edges, coalesce(sum(abs(e.weight)), 0.0) AS shown""", params).single();
        tx.run("""
            MATCH (:Job {id: $job})-[a:ACTIVE]->()
            WHERE a.promotes IS NOT NULL
            REMOVE a.promotes, a.promotes_ids, a.promotes_values, a.suppresses, a.suppresses_ids, a.suppresses_values""",
            params);
        // A node that was off everywhere has no ACTIVE relationship, and its logit effects are exactly zero.
        tx.run("""
            UNWIND $notes AS n
            MATCH (:Job {id: $job})-[a:ACTIVE]->(:Feature {model: $model, saes: $saes, hook: n.hook, latent: n.latent})
            SET a.promotes = n.promotes, a.promotes_ids = n.promotes_ids, a.promotes_values = n.promotes_values,
                a.suppresses = n.suppresses, a.suppresses_ids = n.suppresses_ids, a.suppresses_values = n.suppresses_values""",
            params);
        int markedEdges = marked.get("edges").asInt();
        double all = totals.absSum(), shown = marked.get("shown").asDouble();
        Map<String, Object> props = new HashMap<>();
        props.put("finalized", true);
        props.put("raw_edges", totals.edges());
        props.put("circuit_edges", markedEdges);
        props.put("circuit_nodes", nodes);
        props.put("effect_shown", all == 0 ? 0 : shown / all);
        tx.run("MATCH (j:Job {id: $job}) SET j += $props", Map.of("job", job.id(), "props", props));
        return new Annotated(nodes, markedEdges, totals.edges());
      });
    }
  }

  private static Map<String, Object> annotationRow(LatentLogitEffects e) {
    Map<String, Object> row = new LinkedHashMap<>();
    row.put("hook", e.getLatent().getHookName());
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
