package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import resgraph.testkit.TestCluster;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.Corpus;
import resgraph.v1.CorpusEdge;
import resgraph.v1.GetCorpusRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.ModelRef;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;

/**
 * METHOD.md "Across prompts": three finished jobs of one model and SAEs, their statistics in Neo4j
 * recomputed here from the effects the model server reported (two passes, not Welford), and a
 * repeated AddToCorpus that must not count a job twice.
 */
@ExtendWith(GraphUnderTest.Start.class)
class CorpusStatisticsTest {

  private static final List<String> PROMPTS = List.of("When Mary and John went to the store, John gave a drink to",
      "The capital of France is Paris, and the capital of Italy is", "One, two, three, four, five, six, seven, eight");

  private static GraphUnderTest cluster;
  private static ModelRef corpus;
  private static List<RealJob> jobs = new ArrayList<>();

  /**
   * Two replicas of the graph service, as a cluster runs them: the jobs' effects shared between
   * them through their group, the three jobs finalized at once, two on one replica and one on the
   * other, and the first once more on the other, as a retried finalization that reached another
   * replica: the statistics must count each job once, exactly as one replica would.
   */
  @BeforeAll
  static void finishThreeJobsOfOneModelOnTwoReplicas() throws Exception {
    cluster = GraphUnderTest.get();
    // a model name of its own, so that no other test's jobs join these statistics
    corpus = cluster.ref.toBuilder().setModel("corpus-" + Fixtures.jobId("model")).build();
    try (TestCluster.Service replica = cluster.startReplica()) {
      GraphServiceGrpc.GraphServiceBlockingStub first = cluster.graph(), second = GraphServiceGrpc.newBlockingStub(replica.channel());
      for (int i = 0; i < PROMPTS.size(); i++) jobs.add(RealJob.make(cluster, "corpus-" + i, PROMPTS.get(i), corpus));
      ExecutorService finalizers = Executors.newFixedThreadPool(PROMPTS.size());
      try {
        List<Future<Boolean>> finalized = new ArrayList<>();
        for (int i = 0; i < jobs.size(); i++) {
          GraphServiceGrpc.GraphServiceBlockingStub on = i == 1 ? second : first;
          RealJob job = jobs.get(i);
          finalized.add(finalizers.submit(() -> finish(on, job)));
        }
        for (Future<Boolean> f : finalized) assertTrue(f.get(TestCluster.DEADLINE.toSeconds(), TimeUnit.SECONDS), "counted by its first AddToCorpus");
      } finally {
        finalizers.shutdownNow();
      }
      assertFalse(finish(second, jobs.get(0)), "counted already");
    }
  }

  /** What the orchestrator asks of the graph service to finalize a job, but the logit effects. */
  private static boolean finish(GraphServiceGrpc.GraphServiceBlockingStub graph, RealJob job) {
    GraphServiceGrpc.GraphServiceBlockingStub g = graph.withDeadlineAfter(TestCluster.DEADLINE.toSeconds(), TimeUnit.SECONDS);
    PruneResponse pruned = g.prune(PruneRequest.newBuilder().setJobId(job.id()).setPruning(job.job().getSpec().getPruning()).build());
    boolean added = g.addToCorpus(AddToCorpusRequest.newBuilder().setJobId(job.id()).build()).getAdded();
    g.annotate(AnnotateRequest.newBuilder().setJobId(job.id()).addAllEdges(pruned.getEdgesList()).build());
    return added;
  }

  /** hook, latent of an edge's ends: the key of an edge across jobs. */
  private record Key(String sourceHook, int source, String targetHook, int target) {
    static Key of(RawEdge e) {
      return new Key(Fixtures.hook(e.site()), e.source(), Fixtures.hook(e.site() + 1), e.target());
    }
  }

  @Test
  void everyEdgeThatIsACandidateSomewhereCarriesItsStatisticsOverEveryJob() {
    Map<Key, List<Double>> weights = new HashMap<>();
    for (RealJob job : jobs) {
      for (RawEdge e : job.rawEdges()) weights.computeIfAbsent(Key.of(e), k -> new ArrayList<>()).add((double) e.weight());
    }
    Set<Key> candidates = new HashSet<>();
    Map<Key, Record> stored = new HashMap<>();
    try (Session s = cluster.neo4j.session()) {
      for (RealJob job : jobs) {
        s.run("MATCH (a:Feature)-[e:EFFECT {job: $job}]->(b:Feature) WHERE e.candidate RETURN a.hook AS sh, a.latent AS s, b.hook AS th,"
            + " b.latent AS t", Map.of("job", job.id())).forEachRemaining(r ->
                candidates.add(new Key(r.get("sh").asString(), r.get("s").asInt(), r.get("th").asString(), r.get("t").asInt())));
      }
      s.run("""
          MATCH (a:Feature {model: $model})-[c:CORPUS_EFFECT]->(b:Feature)
          RETURN a.hook AS sh, a.latent AS s, b.hook AS th, b.latent AS t, c.jobs AS jobs, c.mean AS mean, c.variance AS variance,
                 c.min AS min, c.max AS max""", Map.of("model", corpus.getModel())).forEachRemaining(r ->
          stored.put(new Key(r.get("sh").asString(), r.get("s").asInt(), r.get("th").asString(), r.get("t").asInt()), r));
    }
    assertFalse(candidates.isEmpty());
    assertEquals(candidates, stored.keySet(), "CORPUS_EFFECT joins exactly the edges that are a candidate in some job");

    boolean recurring = false;
    for (Key k : candidates) {
      List<Double> w = weights.get(k);
      double mean = w.stream().mapToDouble(Double::doubleValue).sum() / w.size();
      double variance = w.stream().mapToDouble(x -> (x - mean) * (x - mean)).sum() / w.size();
      Record r = stored.get(k);
      assertEquals(w.size(), r.get("jobs").asInt(), k.toString());
      assertEquals(mean, r.get("mean").asDouble(), 1e-12 * Math.max(1, Math.abs(mean)), k.toString());
      // Welford's rounding is relative to mean², not to the variance
      assertEquals(variance, r.get("variance").asDouble(), 1e-10 * Math.max(variance, mean * mean), k.toString());
      assertEquals(w.stream().mapToDouble(Double::doubleValue).min().orElseThrow(), r.get("min").asDouble(), 0, k.toString());
      assertEquals(w.stream().mapToDouble(Double::doubleValue).max().orElseThrow(), r.get("max").asDouble(), 0, k.toString());
      recurring |= w.size() > 1;
    }
    assertTrue(recurring, "some candidate edge should recur across the three prompts");
  }

  @Test
  void everyCandidateNodeCarriesItsJobsAndMeanActivationAtTheTarget() {
    Map<List<Object>, List<Double>> expected = new HashMap<>();
    for (RealJob job : jobs) {
      int target = job.job().getTarget();
      job.trace().getLayersList().forEach(layer -> {
        Set<Integer> latents = new HashSet<>();
        for (int p = 0; p <= target; p++) latents.addAll(layer.getPositions(p).getLatentsList());
        for (int latent : latents) {
          float[] a = job.activations(layer.getLayer(), latent);
          boolean candidate = false;
          for (int p = 0; p <= target; p++) candidate |= a[p] > 0;
          if (candidate) expected.computeIfAbsent(List.of(layer.getHookName(), latent), k -> new ArrayList<>()).add((double) a[target]);
        }
      });
    }
    Map<List<Object>, Record> stored = new HashMap<>();
    try (Session s = cluster.neo4j.session()) {
      s.run("MATCH (f:Feature {model: $model}) WHERE f.jobs IS NOT NULL RETURN f.hook AS hook, f.latent AS latent, f.jobs AS jobs,"
          + " f.mean_activation AS mean", Map.of("model", corpus.getModel()))
          .forEachRemaining(r -> stored.put(List.of(r.get("hook").asString(), r.get("latent").asInt()), r));
    }
    assertEquals(expected.keySet(), stored.keySet());
    for (Map.Entry<List<Object>, List<Double>> e : expected.entrySet()) {
      double mean = e.getValue().stream().mapToDouble(Double::doubleValue).average().orElseThrow();
      assertEquals(e.getValue().size(), stored.get(e.getKey()).get("jobs").asInt(), e.getKey().toString());
      assertEquals(mean, stored.get(e.getKey()).get("mean").asDouble(), 1e-6 * Math.max(1, Math.abs(mean)), e.getKey().toString());
    }
  }

  @Test
  void getCorpusSummarizesExactlyTheJobsAskedFor() throws Exception {
    Map<Key, List<Double>> weights = new HashMap<>();
    for (RealJob job : jobs.subList(0, 2)) {
      for (RawEdge e : job.rawEdges()) weights.computeIfAbsent(Key.of(e), k -> new ArrayList<>()).add((double) e.weight());
    }
    Corpus corpus = cluster.graph().getCorpus(GetCorpusRequest.newBuilder().addJobIds(jobs.get(0).id()).addJobIds(jobs.get(1).id())
        .setMinShare(1).setTop(1_000_000).setIncludeParquet(true).build());
    assertEquals(2, corpus.getJobs());
    assertEquals(weights.size(), corpus.getDistinctEdges());

    // min_share 1: the edges nonzero in both jobs, largest mean |weight| first
    Map<String, List<Double>> byId = new HashMap<>();
    weights.forEach((k, w) -> byId.put(id(k.sourceHook(), k.source()) + ">" + id(k.targetHook(), k.target()), w));
    long both = weights.values().stream().filter(w -> w.size() == 2).count();
    assertTrue(both > 0, "the two prompts should share some edges");
    assertEquals(both, corpus.getEdgesCount());
    double previous = Double.MAX_VALUE;
    for (CorpusEdge e : corpus.getEdgesList()) {
      List<Double> w = byId.get(e.getSource() + ">" + e.getTarget());
      double mean = (w.get(0) + w.get(1)) / 2;
      assertEquals(2, e.getJobs());
      assertEquals(mean, e.getMean(), 1e-12 * Math.max(1, Math.abs(mean)));
      assertEquals((w.get(0) - w.get(1)) * (w.get(0) - w.get(1)) / 4, e.getVariance(), 1e-10 * Math.max(1e-12, mean * mean));
      assertEquals(Math.min(w.get(0), w.get(1)), e.getMin(), 0);
      assertEquals(Math.max(w.get(0), w.get(1)), e.getMax(), 0);
      assertTrue(Math.abs(e.getMean()) <= previous);
      previous = Math.abs(e.getMean());
    }

    // corpus_edges.parquet: every distinct edge
    Path file = Files.createTempFile("corpus_edges", ".parquet");
    Files.write(file, corpus.getCorpusEdgesParquet().toByteArray());
    int rows = 0;
    try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT * FROM read_parquet('" + file + "')")) {
      List<String> columns = new ArrayList<>();
      for (int i = 1; i <= r.getMetaData().getColumnCount(); i++) columns.add(r.getMetaData().getColumnName(i));
      assertEquals(List.of("source", "target", "jobs", "mean", "variance", "min", "max"), columns);
      while (r.next()) {
        List<Double> w = byId.get(r.getString("source") + ">" + r.getString("target"));
        assertEquals(w.size(), r.getInt("jobs"));
        assertEquals(w.stream().mapToDouble(Double::doubleValue).average().orElseThrow(), r.getDouble("mean"), 1e-9);
        rows++;
      }
    } finally {
      Files.delete(file);
    }
    assertEquals(weights.size(), rows);
  }

  @Test
  void getCorpusRefusesWhatIsNotOneCorpus() {
    finish(cluster.graph(), RealJob.get()); // finished, whichever test class ran first: then only its model differs
    FinalizeTest.refused(Status.Code.INVALID_ARGUMENT, "not of the model", () -> cluster.graph().getCorpus(
        GetCorpusRequest.newBuilder().addJobIds(jobs.get(0).id()).addJobIds(RealJob.get().id()).build()));
    FinalizeTest.refused(Status.Code.INVALID_ARGUMENT, "min_share", () -> cluster.graph().getCorpus(
        GetCorpusRequest.newBuilder().addJobIds(jobs.get(0).id()).setMinShare(1.5).build()));
    FinalizeTest.refused(Status.Code.NOT_FOUND, "no-such-job", () -> cluster.graph().getCorpus(
        GetCorpusRequest.newBuilder().addJobIds("no-such-job").build()));
  }

  private static String id(String hook, int latent) {
    return hook.replaceAll("blocks\\.(\\d+)\\..*", "$1") + "." + latent;
  }
}
