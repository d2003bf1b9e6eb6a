package resgraph.graph;

import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
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
 * Stores a poll's tasks of raw edges, idempotently: every task's edges go to the {@link EdgeFiles}
 * (the store of record for raw edges, {@code resgraph.graph.writers} tasks at once) while the edges
 * people traverse go to Neo4j with each task's (:Task) marker, all of the poll's tasks in one
 * transaction, and a task whose marker exists is not written to Neo4j again (see {@link
 * GraphSchema}). A transaction per task cost Neo4j more in commits and round trips than the writes
 * themselves. A task counts as stored only once both are done; should a marker commit and its file
 * not be written (a crash, a full disk), the poll is redelivered and the missing file written then,
 * since a task's file is written whenever it is missing.
 *
 * <p>Neo4j gets each task's candidates, the edges that pass the job's pruning rule within the task
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

  /** What became of a task: its raw edges stored, by this call ({@code written}) or before, or refused for good with why. */
  public record Outcome(TaskEffects task, long edges, boolean written, double seconds, long fileMillis, String refusal) {
    static Outcome refused(TaskEffects task, String why) {
      return new Outcome(task, 0, false, 0, 0, why);
    }
  }

  /** A feature as its uniqueness constraint knows it (model, SAEs, hook, latent), with its layer. */
  private record Feature(String model, String saes, String hook, int latent, int layer) implements Comparable<Feature> {
    private static final Comparator<Feature> ORDER = Comparator.comparing(Feature::model).thenComparing(Feature::saes)
        .thenComparing(Feature::hook).thenComparingInt(Feature::latent);

    @Override
    public int compareTo(Feature o) {
      return ORDER.compare(this, o);
    }
  }

  /** A task ready to store: its edges, and what Neo4j gets of them. */
  private record Prepared(TaskEffects task, SiteChain chain, TaskEdges all, Set<RawEdge> candidates, List<RawEdge> traversed,
      double absSum) {
    String key() {
      return task.getJobId() + "/" + task.getTask();
    }
  }

  /** A task not stored yet, with the model and SAEs its job's features belong to. */
  private record Fresh(Prepared t, String model, String saes) {
    Feature feature(int site, int latent) {
      return new Feature(model, saes, t.chain().hook(site), latent, t.chain().layer(site));
    }
  }

  private final Driver driver;
  private final JobNodes jobs;
  private final EdgeFiles files;
  private final ExecutorService writers;

  EffectsStore(Driver driver, JobNodes jobs, EdgeFiles files, GraphConfig config) {
    this.driver = driver;
    this.jobs = jobs;
    this.files = files;
    this.writers = Executors.newFixedThreadPool(config.writers(), r -> new Thread(r, "edge-file-writer"));
  }

  @PreDestroy
  void close() {
    writers.shutdownNow();
  }

  /**
   * Stores the tasks' edges, marking as candidates those that pass their job's pruning rule (as the
   * orchestrator records it), or finds them already stored; says what became of each, in order. A
   * task is refused for good when it can never be stored (its effects do not fit its job's chain, a
   * non-finite effect) or its job is not registered. Anything it throws (Neo4j unreachable, a
   * deadlock that outlasted the driver's retries, a full disk) is worth retrying, the whole batch.
   */
  public List<Outcome> store(List<TaskEffects> tasks) throws InterruptedException {
    List<Future<Object>> preparing = new ArrayList<>();
    for (TaskEffects task : tasks) preparing.add(writers.submit(() -> prepare(task)));
    List<Object> ready = new ArrayList<>();
    for (Future<Object> f : preparing) ready.add(result(f));
    List<Prepared> toWrite = ready.stream().filter(Prepared.class::isInstance).map(Prepared.class::cast).toList();
    // the files on the writers while this thread waits on Neo4j: neither waits for the other's CPU
    Map<Prepared, Future<Long>> files = new IdentityHashMap<>();
    for (Prepared t : toWrite) files.put(t, writers.submit(() -> writeFile(t)));
    long start = System.nanoTime();
    Map<Prepared, Outcome> written;
    try (Session session = driver.session()) {
      written = session.executeWrite(tx -> write(tx, toWrite));
    } catch (ClientException e) {
      // a copy of one of these tasks, written at the same time by another writer, created its (:Task) first
      if (!"Neo.ClientError.Schema.ConstraintValidationFailed".equals(e.code())) throw e;
      try (Session session = driver.session()) {
        written = session.executeWrite(tx -> write(tx, toWrite));
      }
    }
    // the transaction's time, shared by the tasks it wrote, so that a job's writing time sums its tasks'
    long wroteNow = written.values().stream().filter(Outcome::written).count();
    double share = wroteNow == 0 ? 0 : (System.nanoTime() - start) / 1e9 / wroteNow;
    List<Outcome> outcomes = new ArrayList<>();
    for (Object r : ready) {
      if (r instanceof Outcome refused) {
        outcomes.add(refused);
      } else {
        Outcome o = written.get((Prepared) r);
        long fileMillis = result(files.get((Prepared) r));
        outcomes.add(o.refusal() != null ? o : new Outcome(o.task(), o.edges(), o.written(), o.written() ? fileMillis / 1e3 + share : 0,
            fileMillis, null));
      }
    }
    return outcomes;
  }

  /** What a writer's work returned, or what it threw. */
  private static <T> T result(Future<T> f) throws InterruptedException {
    try {
      return f.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) throw r;
      throw new IllegalStateException(e.getCause());
    }
  }

  /** Writes the task's edge file, if it is missing; the milliseconds it took. */
  private long writeFile(Prepared t) {
    long start = System.nanoTime();
    files.write(t.task().getJobId(), t.task().getTask(), t.chain(), t.all());
    return (System.nanoTime() - start) / 1_000_000;
  }

  /** Validates the task and ranks its edges: a {@link Prepared}, or the {@link Outcome} refusing it. */
  private Object prepare(TaskEffects task) {
    try {
      Job job = jobs.recorded(task.getJobId());
      SiteChain chain = SiteChain.of(job);
      int site = chain.position(task.getHookName());
      if (site + 1 >= job.getChainCount() || !job.getChain(site + 1).getHookName().equals(task.getMeasureHookName())) {
        throw ResgraphException.badRequest("task " + task.getTask() + " of job " + task.getJobId() + " measured "
            + task.getHookName() + " at " + task.getMeasureHookName() + ", which is not the next site of the job's chain");
      }
      TaskEdges all = edges(task, site);
      List<RawEdge> strongest = CircuitPruner.strongest(all, job.getSpec().getPruning());
      List<RawEdge> traversed = job.getSpec().getStoreEdges() == StoreEdges.STORE_EDGES_ALL ? all.list() : strongest;
      return new Prepared(task, chain, all, new HashSet<>(strongest), traversed, all.absSum());
    } catch (ResgraphException e) {
      if (e.kind().isTransient()) throw e;
      return Outcome.refused(task, e.getMessage());
    }
  }

  /** One transaction for the batch: the markers of the tasks not yet stored, their features and their edges. */
  private static Map<Prepared, Outcome> write(TransactionContext tx, List<Prepared> tasks) {
    Map<Prepared, Outcome> outcomes = new IdentityHashMap<>();
    Map<String, Record> heads = new HashMap<>();
    tx.run("""
        UNWIND $tasks AS t
        MATCH (j:Job {id: t.job})
        OPTIONAL MATCH (k:Task {job: t.job, task: t.task})
        RETURN t.job + '/' + t.task AS key, j.model AS model, j.saes AS saes, k.edges AS edges""",
        Map.of("tasks", tasks.stream().map(t -> Map.<String, Object>of("job", t.task().getJobId(), "task", t.task().getTask())).toList()))
        .forEachRemaining(r -> heads.put(r.get("key").asString(), r));
    List<Fresh> fresh = new ArrayList<>();
    Set<String> seen = new HashSet<>();
    for (Prepared t : tasks) {
      Record head = heads.get(t.key());
      if (head == null) {
        outcomes.put(t, Outcome.refused(t.task(), JobNodes.notRegistered(t.task().getJobId(), "with the graph service").getMessage()));
      } else if (!head.get("edges").isNull() || !seen.add(t.key())) {
        outcomes.put(t, new Outcome(t.task(), t.all().size(), false, 0, 0, null)); // stored before, or twice in this poll
      } else {
        fresh.add(new Fresh(t, head.get("model").asString(), head.get("saes").asString()));
        outcomes.put(t, new Outcome(t.task(), t.all().size(), true, 0, 0, null));
      }
    }
    if (fresh.isEmpty()) return outcomes;

    // First, so that a concurrent writer of the same task waits on the constraint's lock and then fails.
    tx.run("UNWIND $markers AS m CREATE (:Task {job: m.job, task: m.task, edges: m.edges, abs_sum: m.abs_sum})",
        Map.of("markers", fresh.stream().map(f -> Map.<String, Object>of("job", f.t().task().getJobId(), "task", f.t().task().getTask(),
            "edges", (long) f.t().all().size(), "abs_sum", f.t().absSum())).toList()));
    TreeSet<Feature> features = new TreeSet<>(); // sorted, so that concurrent writers lock them in one order
    for (Fresh f : fresh) {
      for (RawEdge e : f.t().traversed()) {
        features.add(f.feature(e.site(), e.source()));
        features.add(f.feature(e.site() + 1, e.target()));
      }
    }
    Map<Feature, String> ids = new HashMap<>();
    List<Feature> sorted = new ArrayList<>(features);
    for (int from = 0; from < sorted.size(); from += ROWS_PER_STATEMENT) {
      List<Feature> part = sorted.subList(from, Math.min(sorted.size(), from + ROWS_PER_STATEMENT));
      List<Map<String, Object>> rows = new ArrayList<>();
      for (int i = 0; i < part.size(); i++) {
        Feature f = part.get(i);
        rows.add(Map.of("i", i, "model", f.model(), "saes", f.saes(), "hook", f.hook(), "latent", f.latent(), "layer", f.layer()));
      }
      tx.run("""
          UNWIND $features AS f
          MERGE (n:Feature {model: f.model, saes: f.saes, hook: f.hook, latent: f.latent})
            ON CREATE SET n.layer = f.layer
          RETURN f.i AS i, elementId(n) AS id""", Map.of("features", rows))
          .forEachRemaining(r -> ids.put(part.get(r.get("i").asInt()), r.get("id").asString()));
    }
    // the edges grouped by source latent, the groups gathered into statements of about ROWS_PER_STATEMENT edges
    List<Map<String, Object>> groups = new ArrayList<>();
    int size = 0;
    for (Fresh f : fresh) {
      Map<Integer, List<RawEdge>> bySource = new LinkedHashMap<>();
      for (RawEdge e : f.t().traversed()) bySource.computeIfAbsent(e.source(), s -> new ArrayList<>()).add(e);
      for (List<RawEdge> group : bySource.values()) {
        if (!groups.isEmpty() && size + group.size() > ROWS_PER_STATEMENT) {
          createEdges(tx, groups);
          groups = new ArrayList<>();
          size = 0;
        }
        RawEdge first = group.get(0);
        groups.add(Map.of("job", f.t().task().getJobId(), "source", ids.get(f.feature(first.site(), first.source())),
            "targets", group.stream().map(e -> ids.get(f.feature(e.site() + 1, e.target()))).toList(),
            "weights", group.stream().map(e -> (double) e.weight()).toList(), // a float widens to a double exactly
            "candidates", group.stream().map(e -> f.t().candidates().contains(e) ? Boolean.TRUE : null).toList()));
        size += group.size();
      }
    }
    if (!groups.isEmpty()) createEdges(tx, groups);
    return outcomes;
  }

  /** One statement of edge groups {job, source, targets, weights, candidates}, each group the edges of one source latent. */
  private static void createEdges(TransactionContext tx, List<Map<String, Object>> groups) {
    tx.run("""
        UNWIND $groups AS g
        MATCH (a) WHERE elementId(a) = g.source
        UNWIND range(0, size(g.targets) - 1) AS i
        MATCH (b) WHERE elementId(b) = g.targets[i]
        CREATE (a)-[:EFFECT {job: g.job, weight: g.weights[i], candidate: g.candidates[i]}]->(b)""", Map.of("groups", groups));
  }

  /** The task's raw edges: every nonzero effect; refuses what can never be an edge. */
  private static TaskEdges edges(TaskEffects task, int site) {
    int capacity = 0;
    for (LatentEffects e : task.getEffectsList()) capacity += e.getDeltaCount();
    int[] sources = new int[capacity], targets = new int[capacity];
    float[] weights = new float[capacity];
    int n = 0;
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
        if (delta == 0) continue; // zero is not an edge (METHOD.md step 6)
        sources[n] = e.getLatent();
        targets[n] = e.getDownstream(i);
        weights[n++] = delta;
      }
    }
    return n == capacity ? new TaskEdges(site, sources, targets, weights)
        : new TaskEdges(site, Arrays.copyOf(sources, n), Arrays.copyOf(targets, n), Arrays.copyOf(weights, n));
  }
}
