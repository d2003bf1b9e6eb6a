package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import resgraph.cluster.LocalCluster;
import resgraph.model.SyntheticModel;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.AblateRequest;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.LatentEffects;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;

/**
 * The whole system as processes on this machine, as the tests of it drive it: a local cluster (a
 * real Kafka, a real Neo4j, the model server, workers, the graph service and the orchestrator)
 * over a small synthetic model, the graph of one prompt computed undisturbed (the baseline every
 * disturbed run must reproduce exactly), and the ways to submit, follow and read jobs.
 */
final class PipelineCluster implements AutoCloseable {

  static final String PROMPT = "The old lighthouse keeper climbed the stairs every night because";
  /** The model's layers: SAEs at 0..3, so edges from layers 0, 1 and 2. */
  static final int LAYERS = 4;
  static final ObjectMapper JSON = new ObjectMapper();

  private final Path dir;
  private final LocalCluster cluster;
  private final Path model, saes;
  private final int batch;
  /** One channel a server, shared by the tests and closed with the cluster. */
  private final Map<String, ManagedChannel> channels = new ConcurrentHashMap<>();
  private JsonNode baseline;

  private PipelineCluster(Path dir, LocalCluster cluster, Path model, Path saes, int batch) {
    this.dir = dir;
    this.cluster = cluster;
    this.model = model;
    this.saes = saes;
    this.batch = batch;
  }

  /**
   * Writes the model into {@code dir}, starts a cluster of {@code workers} workers over it and runs
   * the baseline; its jobs and those of {@link #run} and {@link #submit} ablate {@code batch} latents
   * a task.
   */
  static PipelineCluster start(Path dir, int workers, int batch) throws Exception {
    writeModel(dir.resolve("m"));
    Path model = dir.resolve("m/model"), saes = dir.resolve("m/saes");
    LocalCluster cluster = LocalCluster.start(dir.resolve("cluster"), new LocalCluster.Options(workers, model.toString(), saes.toString()),
        m -> {});
    PipelineCluster p = new PipelineCluster(dir, cluster, model, saes, batch);
    try {
      p.baseline = p.run("baseline");
    } catch (Exception | AssertionError e) {
      p.close();
      throw e;
    }
    return p;
  }

  /** The synthetic model every whole-system test uses: its {@code model/} and {@code saes/} under {@code folder}. */
  static void writeModel(Path folder) throws IOException {
    // an unusual shape: 3 heads, d_model 84 (not a power of two), d_sae 300 (not a multiple of it)
    SyntheticModel.write(SyntheticModel.Spec.builder().layers(LAYERS).dModel(84).heads(3).dSae(300).l0(10).centered(true).seed(21).build(),
        folder, SyntheticModel.Format.PLAIN);
  }

  @Override
  public void close() throws InterruptedException {
    for (ManagedChannel c : channels.values()) GrpcChannels.close(c);
    cluster.stop();
  }

  LocalCluster cluster() {
    return cluster;
  }

  Path model() {
    return model;
  }

  Path saes() {
    return saes;
  }

  /** The graph.json of {@link #PROMPT}, run undisturbed. */
  JsonNode baseline() {
    return baseline;
  }

  /** Where a test's files go. */
  Path dir() {
    return dir;
  }

  /** ./resgraph run against the cluster, its files in {@code dir/name}; returns its graph.json. */
  JsonNode run(String name, String... more) throws Exception {
    runCommand(name, more);
    return graphJson(name);
  }

  /** The graph.json a run named {@code name} wrote. */
  JsonNode graphJson(String name) throws IOException {
    return JSON.readTree(dir.resolve(name).resolve("graph.json").toFile());
  }

  /** ./resgraph run against the cluster, checked to have written every file; what it printed. */
  Cli.Run runCommand(String name, String... more) throws IOException {
    List<String> args = new ArrayList<>(List.of("run", "--dir", cluster.dir().toString(), "--model", model.toString(),
        "--saes", saes.toString(), "--prompt", PROMPT, "--batch", Integer.toString(batch), "--out", dir.resolve(name).toString()));
    args.addAll(List.of(more));
    Cli.Run r = Cli.resgraph(args.toArray(String[]::new));
    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("circuit: "), r.out());
    for (String f : List.of("graph.json", "raw_edges.parquet", "graph.dot", "graph.svg", "graph.html", "neuronpedia.json")) {
      assertTrue(Files.size(dir.resolve(name).resolve(f)) > 0, f);
    }
    assertTrue(Files.readString(dir.resolve(name).resolve("graph.svg")).contains("<svg"), "graph.svg is an SVG");
    assertTrue(r.err().contains(cluster.endpoints().viewer() + "/jobs/"), "the run points at the served viewer: " + r.err());
    return r;
  }

  /** The model server's Ablate at every ablated layer for the graph's prompt, all candidates at once: "source->target" to weight. */
  Map<String, Double> ablateEveryLayer(JsonNode graph, AblateRequest.Builder how) {
    ModelServiceGrpc.ModelServiceBlockingStub ms = ModelServiceGrpc.newBlockingStub(channel(cluster.endpoints().modelServer()));
    how.setRef(ModelRef.newBuilder().setModel(model.toString()).setSaes(saes.toString()));
    graph.get("tokens").forEach(t -> how.addTokens(t.asInt()));
    Map<String, Double> direct = new TreeMap<>();
    for (int layer = 0; layer < LAYERS - 1; layer++) {
      for (LatentEffects e : ms.ablate(how.setLayer(layer).build()).getEffectsList()) {
        for (int k = 0; k < e.getDownstreamCount(); k++) {
          direct.put(layer + "." + e.getLatent() + "->" + (layer + 1) + "." + e.getDownstream(k), (double) e.getDelta(k));
        }
      }
    }
    return direct;
  }

  /** "source->target" to weight. */
  static Map<String, Double> edges(JsonNode graph, String field) {
    Map<String, Double> m = new TreeMap<>();
    for (JsonNode e : graph.get(field)) m.put(e.get("source").asText() + "->" + e.get("target").asText(), e.get("weight").asDouble());
    return m;
  }

  static void assertSameGraph(JsonNode expected, JsonNode actual) {
    assertEquals(edges(expected, "raw_edges"), edges(actual, "raw_edges"), "raw edges");
    assertEquals(edges(expected, "edges"), edges(actual, "edges"), "circuit edges");
    assertEquals(expected.get("nodes"), actual.get("nodes"), "circuit nodes and their annotations");
  }

  /**
   * Every task of the job is stored, and none twice: one (:Task) marker a task, no pair of latents
   * with two EFFECT relationships of the job, one edge file a task, and the markers' edge counts
   * adding up to graph.json's raw edges, each once.
   */
  void assertEachTaskStoredOnce(Job job, JsonNode graph) throws IOException {
    int tasks = job.getProgress().getTasksTotal();
    JsonNode markers = cypher("MATCH (t:Task {job: $job}) RETURN count(t) AS n, count(DISTINCT t.task) AS distinct, min(t.task) AS first,"
        + " max(t.task) AS last, sum(t.edges) AS edges", job.getId()).get(0);
    assertEquals(tasks, markers.get("n").asInt(), "a marker a task: " + markers);
    assertEquals(tasks, markers.get("distinct").asInt(), "tasks 0.." + (tasks - 1) + ": " + markers);
    assertEquals(tasks - 1, markers.get("last").asInt() - markers.get("first").asInt(), "tasks 0.." + (tasks - 1) + ": " + markers);
    JsonNode twice = cypher("MATCH (a)-[r:EFFECT {job: $job}]->(b) WITH a, b, count(r) AS n WHERE n > 1 RETURN count(*) AS pairs",
        job.getId()).get(0);
    assertEquals(0, twice.get("pairs").asInt(), "latent pairs with two EFFECTs of the job");
    assertEquals(graph.get("raw_edges").size(), edges(graph, "raw_edges").size(), "no raw edge twice in graph.json");
    assertEquals(graph.get("raw_edges").size(), markers.get("edges").asLong(), "the tasks' edges are the job's raw edges");
    try (Stream<Path> files = Files.list(cluster.dir().resolve("edges").resolve(job.getId()))) {
      assertEquals(tasks, files.filter(f -> f.getFileName().toString().matches("task-\\d+\\.parquet")).count(), "an edge file a task");
    }
  }

  /** Rows of a read-only Cypher query through ./resgraph cypher, with {@code $job} bound to {@code job}. */
  JsonNode cypher(String query, String job) throws IOException {
    Cli.Run r = Cli.resgraph("cypher", "--dir", cluster.dir().toString(), "--json", "--limit", "1000000", "--param", "job=" + job, query);
    assertEquals(0, r.code(), r.err());
    return JSON.readTree(r.out());
  }

  JobServiceGrpc.JobServiceBlockingStub jobs() {
    return JobServiceGrpc.newBlockingStub(channel(cluster.endpoints().orchestrator())).withDeadlineAfter(5, TimeUnit.MINUTES);
  }

  /** A job of {@code prompt}, its circuit the top 10 edges a layer pair. */
  Job submit(String prompt) {
    return submit(prompt, batch);
  }

  /** The same in tasks of {@code latents}. */
  Job submit(String prompt, int latents) {
    return jobs().submit(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel(model.toString()).setSaes(saes.toString()))
        .setPrompt(prompt).setTaskBatchSize(latents).setPruning(Pruning.newBuilder().setTopK(10)).build());
  }

  void awaitProgress(String id, int tasks) {
    for (Iterator<Job> it = jobs().watch(GetJobRequest.newBuilder().setId(id).build()); it.hasNext(); ) {
      Job j = it.next();
      if (j.getProgress().getTasksDone() >= tasks) return;
    }
    throw new AssertionError("job " + id + " ended before " + tasks + " tasks were stored");
  }

  /** The newest job once it has this many tasks stored (it may be one `run` submitted). */
  Job awaitAJobWithTasksStored(int tasks) throws InterruptedException {
    for (long end = System.nanoTime() + TimeUnit.MINUTES.toNanos(2); System.nanoTime() < end; Thread.sleep(100)) {
      List<Job> all = jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList();
      if (!all.isEmpty() && all.get(0).getPhase() == Phase.PHASE_RUNNING && all.get(0).getProgress().getTasksDone() >= tasks) {
        return all.get(0);
      }
    }
    throw new AssertionError("no job got " + tasks + " tasks stored within two minutes");
  }

  Job awaitDone(String id) {
    Job last = null;
    for (Iterator<Job> it = jobs().watch(GetJobRequest.newBuilder().setId(id).build()); it.hasNext(); ) last = it.next();
    assertEquals(Phase.PHASE_DONE, last.getPhase(), last.getError());
    return last;
  }

  /** The job's graph.json, as the graph service exports it. */
  JsonNode graphOf(Job job) throws IOException {
    return JSON.readTree(GraphServiceGrpc.newBlockingStub(channel(cluster.endpoints().graphService())).export(ExportRequest.newBuilder()
        .setJobId(job.getId()).setFormat(ExportFormat.EXPORT_FORMAT_JSON).build()).getContent().toByteArray());
  }

  /** Adds workers until the cluster has {@code n}. */
  void ensureWorkers(int n) {
    while (cluster.processes().stream().filter(p -> p.name().startsWith("worker-")).count() < n) cluster.startWorker();
  }

  /**
   * The channel to one of the cluster's servers, over TLS with the cluster's token, as the command
   * line opens them; shared, and closed with the cluster.
   */
  ManagedChannel channel(String address) {
    return channels.computeIfAbsent(address, a -> GrpcChannels.open(a, ClusterDir.credentials(cluster)));
  }
}
