package resgraph.graph;

import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
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
import resgraph.v1.Pruning;
import resgraph.v1.TaskEffects;

/**
 * Writes one task's raw edges into Neo4j, idempotently: the edges and the task's (:Task) marker
 * commit in one transaction, and a task whose marker exists is not written again (see
 * {@link GraphSchema}).
 *
 * <p>Each batch of edges is one UNWIND statement: the features are MERGEd first through their
 * uniqueness constraint, returning their element ids, then the edges are CREATEd between features
 * found by element id, a direct read, instead of a seek in the constraint's four-key index per
 * edge end. A MERGE per edge would run at some 3,000 edges a second. The edges that pass the job's
 * pruning rule within the task are marked candidates, so that Prune reads those alone (see
 * {@link CircuitPruner#strongest}).
 */
@Singleton
public final class EffectsStore {

  /** Edges (or features) per UNWIND statement: enough to amortize a round trip, few enough to keep parameters small. */
  private static final int ROWS_PER_STATEMENT = 10_000;

  /** What storing a task did: how many raw edges the task has, and whether this call wrote them. */
  public record Stored(long edges, boolean written) {}

  /** The nonzero effects of one ablated latent. */
  private record Group(int source, List<Integer> targets, List<Double> weights) {
    int edges() {
      return targets.size();
    }

    /**
     * {source, targets, weights, candidates}, as the statement reads it: source and targets are
     * the features' element ids in {@code ids}, candidates[i] is true or null.
     */
    Map<String, Object> row(int site, Set<RawEdge> candidates, Map<Long, String> ids) {
      List<String> targetIds = new ArrayList<>(targets.size());
      List<Boolean> flags = new ArrayList<>(targets.size());
      for (int i = 0; i < targets.size(); i++) {
        targetIds.add(ids.get(RawEdge.node(site + 1, targets.get(i))));
        flags.add(candidates.contains(edge(site, i)) ? Boolean.TRUE : null);
      }
      return Map.of("source", ids.get(RawEdge.node(site, source)), "targets", targetIds, "weights", weights, "candidates", flags);
    }

    RawEdge edge(int site, int i) {
      return new RawEdge(site, source, targets.get(i), weights.get(i).floatValue());
    }
  }

  private final Driver driver;
  private final JobNodes jobs;

  EffectsStore(Driver driver, JobNodes jobs) {
    this.driver = driver;
    this.jobs = jobs;
  }

  /**
   * Stores the task's edges, marking as candidates those that pass the job's pruning rule (as the
   * orchestrator records it), or finds them already stored. Throws {@link ResgraphException} for a
   * message that can never be stored (BAD_REQUEST) or whose job is not registered (NOT_FOUND);
   * anything else it throws (Neo4j unreachable, a deadlock that outlasted the driver's retries) is
   * worth retrying.
   */
  public Stored store(TaskEffects task) {
    List<List<Group>> batches = batches(groups(task));
    Job job = jobs.recorded(task.getJobId());
    Pruning rule = job.getSpec().getPruning();
    SiteChain chain = SiteChain.of(job);
    int site = chain.position(task.getHookName());
    if (site + 1 >= job.getChainCount() || !job.getChain(site + 1).getHookName().equals(task.getMeasureHookName())) {
      throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + " measured "
          + task.getHookName() + " at " + task.getMeasureHookName() + ", which is not the next site of the job's chain");
    }
    long edges = batches.stream().flatMap(List::stream).mapToLong(Group::edges).sum();
    List<Map<String, Object>> features = features(task, chain, site);
    try (Session session = driver.session()) {
      return session.executeWrite(tx -> write(tx, task, site, rule, edges, batches, features));
    } catch (ClientException e) {
      // a copy of this task, written at the same time by another writer, created its (:Task) first
      if (!"Neo.ClientError.Schema.ConstraintValidationFailed".equals(e.code())) throw e;
      try (Session session = driver.session()) {
        return session.executeWrite(tx -> write(tx, task, site, rule, edges, batches, features));
      }
    }
  }

  private static Stored write(TransactionContext tx, TaskEffects task, int site, Pruning rule, long edges,
      List<List<Group>> batches, List<Map<String, Object>> features) {
    Map<String, Object> key = Map.of("job", task.getJobId(), "task", task.getTask());
    List<Record> head = tx.run("""
        MATCH (j:Job {id: $job})
        OPTIONAL MATCH (t:Task {job: $job, task: $task})
        RETURN j.model AS model, j.saes AS saes, t.edges AS edges""", key).list();
    if (head.isEmpty()) throw JobNodes.notRegistered(task.getJobId(), "with the graph service");
    if (!head.get(0).get("edges").isNull()) return new Stored(head.get(0).get("edges").asLong(), false);
    String model = head.get(0).get("model").asString(), saes = head.get(0).get("saes").asString();
    List<RawEdge> all = new ArrayList<>();
    for (List<Group> batch : batches) {
      for (Group g : batch) for (int i = 0; i < g.edges(); i++) all.add(g.edge(site, i));
    }
    Set<RawEdge> candidates = new HashSet<>(CircuitPruner.strongest(all, rule));
    double absSum = all.stream().mapToDouble(e -> Math.abs(e.weight())).sum();

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
          Map.of("job", task.getJobId(), "groups", batch.stream().map(g -> g.row(site, candidates, ids)).toList()));
    }
    return new Stored(edges, true);
  }

  /** Each latent's nonzero effects; refuses what can never be an edge. */
  private static List<Group> groups(TaskEffects task) {
    List<Group> groups = new ArrayList<>();
    for (LatentEffects e : task.getEffectsList()) {
      if (e.getDownstreamCount() != e.getDeltaCount()) {
        throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + ": latent " + e.getLatent()
            + " has " + e.getDownstreamCount() + " downstream latents but " + e.getDeltaCount() + " deltas");
      }
      List<Integer> targets = new ArrayList<>();
      List<Double> weights = new ArrayList<>();
      for (int i = 0; i < e.getDownstreamCount(); i++) {
        float delta = e.getDelta(i);
        if (!Float.isFinite(delta)) {
          throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + ": the effect of latent "
              + e.getLatent() + " on " + e.getDownstream(i) + " is " + delta);
        }
        if (delta == 0) continue; // not an edge (METHOD.md step 6)
        targets.add(e.getDownstream(i));
        weights.add((double) delta); // a float widens to a double exactly, so the weight reads back as the same float
      }
      if (!targets.isEmpty()) groups.add(new Group(e.getLatent(), targets, weights));
    }
    return groups;
  }

  /** Groups into statements of about {@link #ROWS_PER_STATEMENT} edges (a larger group is a statement alone). */
  private static List<List<Group>> batches(List<Group> groups) {
    List<List<Group>> batches = new ArrayList<>();
    List<Group> batch = new ArrayList<>();
    int edges = 0;
    for (Group g : groups) {
      if (!batch.isEmpty() && edges + g.edges() > ROWS_PER_STATEMENT) {
        batches.add(batch);
        batch = new ArrayList<>();
        edges = 0;
      }
      batch.add(g);
      edges += g.edges();
    }
    if (!batch.isEmpty()) batches.add(batch);
    return batches;
  }

  /**
   * The features the edges join, {site, hook, layer, latent} with site the position in the chain,
   * sorted so that concurrent writers lock them in one order.
   */
  private static List<Map<String, Object>> features(TaskEffects task, SiteChain chain, int site) {
    TreeSet<Integer> sources = new TreeSet<>(), targets = new TreeSet<>();
    for (LatentEffects e : task.getEffectsList()) {
      for (int i = 0; i < e.getDownstreamCount(); i++) {
        if (e.getDelta(i) != 0) {
          sources.add(e.getLatent());
          targets.add(e.getDownstream(i));
        }
      }
    }
    List<Map<String, Object>> out = new ArrayList<>();
    for (int s : sources) out.add(Map.of("site", site, "hook", chain.hook(site), "layer", chain.layer(site), "latent", s));
    for (int t : targets) {
      out.add(Map.of("site", site + 1, "hook", chain.hook(site + 1), "layer", chain.layer(site + 1), "latent", t));
    }
    return out;
  }
}
