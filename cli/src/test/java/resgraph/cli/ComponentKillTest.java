package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.cli.PipelineCluster.assertSameGraph;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import resgraph.cluster.LocalCluster;
import resgraph.v1.Edge;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.Phase;

/**
 * Every component of the local cluster killed (SIGKILL, as a crash or the kernel's OOM killer ends
 * it) while a job is in flight, and started again on the same ports over the same data: the job
 * finishes with exactly the graph an undisturbed run gives, no task stored twice, and the user's
 * {@code ./resgraph run} follows its job through it all and exits 0.
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class ComponentKillTest {

  @TempDir static Path dir;
  private static PipelineCluster pipeline;
  private static LocalCluster cluster;
  private static ExecutorService background;

  @BeforeAll
  static void start() throws Exception {
    // tasks of 8 latents: a job of some 35 tasks, long enough to be killed in, short enough to run seven times
    pipeline = PipelineCluster.start(dir, 2, 8);
    cluster = pipeline.cluster();
    background = Executors.newSingleThreadExecutor();
  }

  @AfterAll
  static void stop() throws InterruptedException {
    if (background != null) background.shutdownNow();
    if (pipeline != null) pipeline.close();
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"orchestrator", "graph-service", "model-server", "worker-1", "kafka", "neo4j"})
  void runFollowsItsJobThroughAComponentKilledAndStartedAgain(String component) throws Exception {
    String name = "killed-" + component;
    Future<Cli.Run> run = background.submit(() -> pipeline.runCommand(name));
    Job inFlight = pipeline.awaitAJobWithTasksStored(3);
    assertTrue(inFlight.getProgress().getTasksDone() < inFlight.getProgress().getTasksTotal(), "the job is in flight: " + inFlight.getProgress());
    int restarts = restarts(component);
    cluster.kill(component);
    cluster.restart(component);
    assertEquals(restarts + 1, restarts(component), "the restart is recorded");

    run.get(5, TimeUnit.MINUTES);
    JsonNode graph = pipeline.graphJson(name);
    assertEquals(inFlight.getId(), graph.get("job").get("id").asText(), "the command finished the job it submitted");
    assertSameGraph(pipeline.baseline(), graph);
    pipeline.assertEachTaskStoredOnce(pipeline.awaitDone(inFlight.getId()), graph);
  }

  private static int restarts(String component) {
    return cluster.processes().stream().filter(p -> p.name().equals(component)).findFirst().orElseThrow().restarts();
  }

  @Test
  void aGraphServiceKilledMidCorpusCountsNoJobTwice() throws Exception {
    List<String> corpus = new ArrayList<>();
    for (String prompt : List.of("The ship left the harbor at dawn and the sailors", "She opened the letter slowly because",
        "Rain fell on the quiet town while the children")) {
      corpus.add(pipeline.submit(prompt).getId());
    }
    pipeline.awaitProgress(corpus.get(0), 2);
    cluster.kill("graph-service");
    cluster.restart("graph-service");
    for (String id : corpus) pipeline.awaitDone(id);

    // every finished job of this model and SAEs, each counted once: recomputed from their raw edges
    String model = pipeline.model().toString();
    GraphServiceGrpc.GraphServiceBlockingStub graph = GraphServiceGrpc.newBlockingStub(pipeline.channel(cluster.endpoints().graphService()));
    Map<String, List<Float>> weights = new TreeMap<>();
    for (Job j : pipeline.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList()) {
      if (j.getPhase() != Phase.PHASE_DONE || !j.getSpec().getRef().getModel().equals(model)) continue;
      for (Edge e : graph.getCircuit(GetCircuitRequest.newBuilder().setJobId(j.getId()).setIncludeRawEdges(true).build()).getRawEdgesList()) {
        weights.computeIfAbsent(e.getSource() + "->" + e.getTarget(), k -> new ArrayList<>()).add(e.getWeight());
      }
    }
    Cli.Run r = Cli.resgraph("cypher", "--dir", cluster.dir().toString(), "--json", "--limit", "1000000", "--param", "model=" + model,
        "MATCH (a:Feature {model: $model})-[c:CORPUS_EFFECT]->(b:Feature) RETURN a.layer AS l, a.latent AS s, b.latent AS t,"
            + " c.jobs AS jobs, c.mean AS mean");
    assertEquals(0, r.code(), r.err());
    JsonNode rows = PipelineCluster.JSON.readTree(r.out());
    assertTrue(rows.size() > 0, "statistics of the candidate edges");
    for (JsonNode row : rows) {
      String key = row.get("l").asInt() + "." + row.get("s").asInt() + "->" + (row.get("l").asInt() + 1) + "." + row.get("t").asInt();
      List<Float> w = weights.get(key);
      assertEquals(w.size(), row.get("jobs").asInt(), key + ": jobs");
      double mean = w.stream().mapToDouble(Float::doubleValue).average().orElseThrow();
      assertEquals(mean, row.get("mean").asDouble(), 1e-9 * Math.max(1, Math.abs(mean)), key + ": mean");
    }
  }
}
