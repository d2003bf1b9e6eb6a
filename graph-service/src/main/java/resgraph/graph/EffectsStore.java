package resgraph.graph;

import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import org.neo4j.driver.TransactionContext;
import org.neo4j.driver.exceptions.ClientException;
import resgraph.platform.ResgraphException;
import resgraph.v1.Job;
import resgraph.v1.LatentEffects;
import resgraph.v1.StoreEdges;
import resgraph.v1.TaskEffects;

/**
 * Stores one task's raw edges, idempotently: every edge goes to the {@link EdgeFiles} (the store of
 * record for raw edges), then the edges people traverse go to Neo4j with the task's (:Task) marker
 * in one transaction, and a task whose marker exists is not written again (see {@link GraphSchema}).
 *
 * <p>Neo4j gets the task's candidates, the edges that pass the job's pruning rule within the task
 * (so that Prune reads those alone, see {@link CircuitPruner#strongest}), or every raw edge for a
 * job stored with {@code STORE_EDGES_ALL}. Each batch of edges is one UNWIND statement: the
 * features are MERGEd first through their uniqueness constraint, returning their element ids, then
 * the edges are CREATEd between features found by element id, a direct read, instead of a seek in
 * the constraint's four-key index per edge end.
 */
@Singleton
public final class EffectsStore {

  /** Edges (or features) per UNWIND statement: enough to amortize a round trip, few enough to keep parameters small. */
  private static final int ROWS_PER_STATEMENT = 10_000;

  /** What storing a task did: how many raw edges the task has, whether this call wrote them, and its time on the edge files. */
  public record Stored(long edges, boolean written, long fileMillis) {}

  /** Some edges of one source latent, as the statement reads them: {source, targets, weights, candidates}. */
  private record Group(List<RawEdge> edges) {
    Map<String, Object> row(Set<RawEdge> candidates, Map<Long, String> ids) {
      return Map.of("source", ids.get(edges.get(0).sourceNode()),
          "targets", edges.stream().map(e -> ids.get(e.targetNode())).toList(),
          "weights", edges.stream().map(e -> (double) e.weight()).toList(), // a float widens to a double exactly
          "candidates", edges.stream().map(e -> candidates.contains(e) ? Boolean.TRUE : null).toList());
    }
  }

  private final Driver driver;
  private final JobNodes jobs;
  private final EdgeFiles files;

  EffectsStore(Driver driver, JobNodes jobs, EdgeFiles files) {
    this.driver = driver;
    this.jobs = jobs;
    this.files = files;
  }

  /**
   * Stores the task's edges, marking as candidates those that pass the job's pruning rule (as the
   * orchestrator records it), or finds them already stored. Throws {@link ResgraphException} for a
   * message that can never be stored (BAD_REQUEST) or whose job is not registered (NOT_FOUND);
   * anything else it throws (Neo4j unreachable, a deadlock that outlasted the driver's retries, a
   * full disk) is worth retrying.
   */
  public Stored store(TaskEffects task) {
    Job job = jobs.recorded(task.getJobId());
    SiteChain chain = SiteChain.of(job);
    int site = chain.position(task.getHookName());
    if (site + 1 >= job.getChainCount() || !job.getChain(site + 1).getHookName().equals(task.getMeasureHookName())) {
      throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + " measured "
          + task.getHookName() + " at " + task.getMeasureHookName() + ", which is not the next site of the job's chain");
    }
    List<RawEdge> all = edges(task, site);
    Set<RawEdge> candidates = new HashSet<>(CircuitPruner.strongest(all, job.getSpec().getPruning()));
    List<RawEdge> traversed = job.getSpec().getStoreEdges() == StoreEdges.STORE_EDGES_ALL ? all
        : all.stream().filter(candidates::contains).toList();
    long start = System.nanoTime();
    files.write(task.getJobId(), task.getTask(), chain, site, all);
    long fileMillis = (System.nanoTime() - start) / 1_000_000;
    double absSum = all.stream().mapToDouble(e -> Math.abs(e.weight())).sum();
    List<List<Group>> batches = batches(traversed);
    List<Map<String, Object>> features = features(traversed, chain);
    try (Session session = driver.session()) {
      return session.executeWrite(tx -> write(tx, task, all.size(), absSum, candidates, batches, features, fileMillis));
    } catch (ClientException e) {
      // a copy of this task, written at the same time by another writer, created its (:Task) first
      if (!"Neo.ClientError.Schema.ConstraintValidationFailed".equals(e.code())) throw e;
      try (Session session = driver.session()) {
        return session.executeWrite(tx -> write(tx, task, all.size(), absSum, candidates, batches, features, fileMillis));
      }
    }
  }

  private static Stored write(TransactionContext tx, TaskEffects task, long edges, double absSum, Set<RawEdge> candidates,
      List<List<Group>> batches, List<Map<String, Object>> features, long fileMillis) {
    Map<String, Object> key = Map.of("job", task.getJobId(), "task", task.getTask());
    List<Record> head = tx.run("""
        MATCH (j:Job {id: $job})
        OPTIONAL MATCH (t:Task {job: $job, task: $task})
        RETURN j.model AS model, j.saes AS saes, t.edges AS edges""", key).list();
    if (head.isEmpty()) throw JobNodes.notRegistered(task.getJobId(), "with the graph service");
    if (!head.get(0).get("edges").isNull()) return new Stored(head.get(0).get("edges").asLong(), false, fileMillis);
    String model = head.get(0).get("model").asString(), saes = head.get(0).get("saes").asString();

    // First, so that a concurrent writer of the same task waits on the constraint's lock and then fails.
    tx.run("CREATE (:Task {job: $job, task: $task, edges: $edges, abs_sum: $abs_sum})",
        Map.of("job", task.getJobId(), "task", task.getTask(), "edges", edges, "abs_sum", absSum));
    Map<Long, String> ids = new HashMap<>();
    for (int from = 0; from < features.size(); from += ROWS_PER_STATEMENT) {
      tx.run("""
          UNWIND $features AS f
          MERGE (n:Feature {model: $model, saes: $saes, hook: f.hook, latent: f.latent})
            ON CREATE SET n.layer = f.layer
          RETURN f.site AS site, f.latent AS latent, elementId(n) AS id""",
          Map.of("model", model, "saes", saes,
              "features", features.subList(from, Math.min(features.size(), from + ROWS_PER_STATEMENT))))
          .forEachRemaining(r -> ids.put(RawEdge.node(r.get("site").asInt(), r.get("latent").asInt()), r.get("id").asString()));
    }
    for (List<Group> batch : batches) {
      tx.run("""
          UNWIND $groups AS g
          MATCH (a) WHERE elementId(a) = g.source
          UNWIND range(0, size(g.targets) - 1) AS i
          MATCH (b) WHERE elementId(b) = g.targets[i]
          CREATE (a)-[:EFFECT {job: $job, weight: g.weights[i], candidate: g.candidates[i]}]->(b)""",
          Map.of("job", task.getJobId(), "groups", batch.stream().map(g -> g.row(candidates, ids)).toList()));
    }
    return new Stored(edges, true, fileMillis);
  }

  /** The task's raw edges: every nonzero effect; refuses what can never be an edge. */
  private static List<RawEdge> edges(TaskEffects task, int site) {
    List<RawEdge> edges = new ArrayList<>();
    for (LatentEffects e : task.getEffectsList()) {
      if (e.getDownstreamCount() != e.getDeltaCount()) {
        throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + ": latent " + e.getLatent()
            + " has " + e.getDownstreamCount() + " downstream latents but " + e.getDeltaCount() + " deltas");
      }
      for (int i = 0; i < e.getDownstreamCount(); i++) {
        float delta = e.getDelta(i);
        if (!Float.isFinite(delta)) {
          throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + ": the effect of latent "
              + e.getLatent() + " on " + e.getDownstream(i) + " is " + delta);
        }
        if (delta != 0) edges.add(new RawEdge(site, e.getLatent(), e.getDownstream(i), delta)); // zero is not an edge (METHOD.md step 6)
      }
    }
    return edges;
  }

  /**
   * The edges grouped by source latent (in the task's order), the groups gathered into statements
   * of about {@link #ROWS_PER_STATEMENT} edges (a larger group is a statement alone).
   */
  private static List<List<Group>> batches(List<RawEdge> edges) {
    Map<Integer, List<RawEdge>> bySource = new LinkedHashMap<>();
    for (RawEdge e : edges) bySource.computeIfAbsent(e.source(), s -> new ArrayList<>()).add(e);
    List<List<Group>> batches = new ArrayList<>();
    List<Group> batch = new ArrayList<>();
    int size = 0;
    for (List<RawEdge> group : bySource.values()) {
      if (!batch.isEmpty() && size + group.size() > ROWS_PER_STATEMENT) {
        batches.add(batch);
        batch = new ArrayList<>();
        size = 0;
      }
      batch.add(new Group(group));
      size += group.size();
    }
    if (!batch.isEmpty()) batches.add(batch);
    return batches;
  }

  /**
   * The features the edges join, {site, hook, layer, latent} with site the position in the chain,
   * sorted so that concurrent writers lock them in one order.
   */
  private static List<Map<String, Object>> features(List<RawEdge> edges, SiteChain chain) {
    TreeSet<Long> nodes = new TreeSet<>();
    for (RawEdge e : edges) {
      nodes.add(e.sourceNode());
      nodes.add(e.targetNode());
    }
    List<Map<String, Object>> out = new ArrayList<>();
    for (long n : nodes) {
      int site = (int) (n >>> 32), latent = (int) n;
      out.add(Map.of("site", site, "hook", chain.hook(site), "layer", chain.layer(site), "latent", latent));
    }
    return out;
  }
}
