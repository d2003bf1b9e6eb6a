package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.cli.PipelineCluster.assertSameGraph;
import static resgraph.cli.PipelineCluster.edges;

import com.fasterxml.jackson.databind.JsonNode;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.reflection.v1.ServerReflectionGrpc;
import io.grpc.reflection.v1.ServerReflectionRequest;
import io.grpc.reflection.v1.ServerReflectionResponse;
import io.grpc.reflection.v1.ServiceResponse;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.neo4j.driver.AuthToken;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.exceptions.AuthenticationException;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.ClientCredentials;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.testkit.KafkaProbe;
import resgraph.model.Site;
import resgraph.model.SaeConfig;
import resgraph.model.SyntheticModel;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.Edge;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobSpec;
import resgraph.v1.LatentEffects;
import resgraph.v1.ModelRef;
import resgraph.v1.Method;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.TaskEffects;

/**
 * The whole system as processes on this machine: a real Kafka, a real Neo4j, the model server,
 * workers, the graph service and the orchestrator, driven through the resgraph command and gRPC.
 * Every raw edge must equal what the model server's Ablate gives directly, the circuit must be the
 * pruning of an independent implementation, and neither a duplicated message nor jobs sharing the
 * workers may change a graph. (Components killed mid-job: {@link ComponentKillTest}.)
 */
@Timeout(value = 15, unit = TimeUnit.MINUTES)
class PipelineTest {

  @TempDir static Path dir;
  private static PipelineCluster pipeline;
  private static LocalCluster cluster;
  private static Path model, saes;
  private static JsonNode baseline;
  private static KafkaProbe kafka;

  @BeforeAll
  static void start() throws Exception {
    // small tasks make many of them, so a job is still running when a test interferes with it
    pipeline = PipelineCluster.start(dir, 1, 3);
    cluster = pipeline.cluster();
    model = pipeline.model();
    saes = pipeline.saes();
    baseline = pipeline.baseline();
    kafka = new KafkaProbe(cluster.endpoints().kafka());
  }

  @AfterAll
  static void stop() throws InterruptedException {
    if (kafka != null) kafka.close();
    if (pipeline != null) pipeline.close();
  }

  @Test
  void aChainThatMixesSitesRunsEndToEndAndRecordsHowItsSaesWereRead() throws Exception {
    Path mixed = dir.resolve("mixed");
    SyntheticModel.write(SyntheticModel.Spec.builder().layers(3).dModel(48).heads(2).dSae(160).l0(8).centered(true).seed(5)
        .kinds(Set.of(Site.Kind.PRE, Site.Kind.MID)).architecture(SaeConfig.Architecture.JUMPRELU).build(), mixed,
        SyntheticModel.Format.PLAIN);
    Path out = dir.resolve("mixed-out");
    Cli.Run r = Cli.resgraph("run", "--dir", cluster.dir().toString(), "--model", mixed.resolve("model").toString(),
        "--saes", mixed.resolve("saes").toString(), "--prompt", PipelineCluster.PROMPT, "--sites", "0,0m,1m,2", "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("over sites 0, 0m, 1m, 2"), r.err());
    assertTrue(r.err().contains("centering: on  (cfg.json model_from_pretrained_kwargs.center_writing_weights)"), r.err());
    assertTrue(r.err().contains("architecture: jumprelu"), r.err());

    JsonNode g = PipelineCluster.JSON.readTree(out.resolve("graph.json").toFile());
    List<String> prefixes = new ArrayList<>();
    g.get("job").get("chain").forEach(site -> prefixes.add(site.get("node_prefix").asText()));
    assertEquals(List.of("0", "0m", "1m", "2"), prefixes, "a chain that mixes kinds names its nodes by site");
    Set<String> settings = new HashSet<>();
    g.get("job").get("saes_settings").forEach(x -> settings.add(x.get("name").asText() + "=" + x.get("value").asText()));
    assertTrue(settings.containsAll(Set.of("centering=on", "architecture=jumprelu", "normalize_activations=none")), settings.toString());
    for (JsonNode n : g.get("nodes")) assertTrue(n.get("id").asText().matches("(0|0m|1m|2)\\.\\d+"), n.get("id").asText());

    // the hop 0m -> 1m (block 0's MLP, block 1's attention) stored exactly what Ablate between those sites gives
    ModelServiceGrpc.ModelServiceBlockingStub ms = ModelServiceGrpc.newBlockingStub(pipeline.channel(cluster.endpoints().modelServer()));
    List<Integer> tokens = new ArrayList<>();
    g.get("tokens").forEach(t -> tokens.add(t.asInt()));
    AblateResponse direct = ms.ablate(AblateRequest.newBuilder().setRef(ModelRef.newBuilder().setModel(mixed.resolve("model").toString())
        .setSaes(mixed.resolve("saes").toString())).addAllTokens(tokens).setHookName("0m").setMeasureHookName("1m").build());
    Map<String, Double> expected = new TreeMap<>();
    for (LatentEffects e : direct.getEffectsList()) {
      for (int k = 0; k < e.getDownstreamCount(); k++) expected.put("0m." + e.getLatent() + "->1m." + e.getDownstream(k), (double) e.getDelta(k));
    }
    Map<String, Double> stored = new TreeMap<>(edges(g, "raw_edges"));
    stored.keySet().removeIf(k -> !k.startsWith("0m."));
    assertFalse(expected.isEmpty(), "a vacuous comparison");
    assertEquals(expected.keySet(), stored.keySet());
  }

  @Test
  void aCorpusRunsEveryPromptAndSharesOutTheEdgesTheyHaveInCommon() throws Exception {
    Path prompts = dir.resolve("prompts.txt");
    Files.writeString(prompts, String.join("\n", PipelineCluster.PROMPT, "{\"prompt\": \"The cat sat on the mat and then it\", \"target\": 5}", "",
        "Every morning the baker opened the shop before dawn") + "\n");
    Path out = dir.resolve("corpus");
    Cli.Run r = Cli.resgraph("run", "--dir", cluster.dir().toString(), "--model", model.toString(), "--saes", saes.toString(),
        "--prompts", prompts.toString(), "--min-share", "0.6", "--out", out.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("3/3 prompts"), r.err());
    assertTrue(r.out().contains("corpus of 3 prompts"), r.out());

    // every prompt's own files; the statistics recomputed here from their graph.json
    Map<String, List<Double>> weights = new TreeMap<>();
    for (int i = 1; i <= 3; i++) {
      Path folder = out.resolve("prompt-00" + i);
      for (String f : List.of("graph.json", "raw_edges.parquet", "graph.svg", "graph.html")) assertTrue(Files.size(folder.resolve(f)) > 0, f);
      JsonNode g = PipelineCluster.JSON.readTree(folder.resolve("graph.json").toFile());
      if (i == 2) assertEquals(5, g.get("target").asInt());
      // each weight as the float it was written from (graph.json writes a float's shortest decimal)
      edges(g, "raw_edges").forEach((k, w) -> weights.computeIfAbsent(k, x -> new ArrayList<>()).add((double) (float) (double) w));
    }
    JsonNode corpus = PipelineCluster.JSON.readTree(out.resolve("corpus.json").toFile());
    assertEquals(3, corpus.get("jobs").asInt());
    assertEquals(weights.size(), corpus.get("distinct_edges").asLong());
    long shared = weights.values().stream().filter(w -> w.size() >= 2).count();
    assertTrue(shared > 0, "the prompts should share some edges");
    assertEquals(Math.min(50, shared), corpus.get("edges").size());
    for (JsonNode e : corpus.get("edges")) {
      List<Double> w = weights.get(e.get("source").asText() + "->" + e.get("target").asText());
      double mean = w.stream().mapToDouble(Double::doubleValue).average().orElseThrow();
      double variance = w.stream().mapToDouble(x -> (x - mean) * (x - mean)).sum() / w.size();
      assertEquals(w.size(), e.get("jobs").asInt());
      assertEquals(mean, e.get("mean").asDouble(), 1e-9 * Math.max(1, Math.abs(mean)));
      assertEquals(variance, e.get("variance").asDouble(), 1e-9 * Math.max(1e-9, mean * mean));
      assertEquals((float) w.stream().mapToDouble(Double::doubleValue).min().orElseThrow(), (float) e.get("min").asDouble());
      assertEquals((float) w.stream().mapToDouble(Double::doubleValue).max().orElseThrow(), (float) e.get("max").asDouble());
    }
    assertTrue(Files.size(out.resolve("corpus_edges.parquet")) > 0);
    assertTrue(Files.readString(out.resolve("corpus.svg")).contains("<svg"));
    assertTrue(Files.readString(out.resolve("corpus.html")).contains("<svg"));
  }

  @Test
  void thePythonClientRunsACorpusAndReadsTheCircuitItsPromptsShare() throws Exception {
    Path client = Path.of("..", "clients", "python").toAbsolutePath().normalize();
    Path stubs = dir.resolve("python-stubs");
    exec(List.of("bash", client.resolve("generate.sh").toString(), stubs.toString()));
    Path prompts = dir.resolve("python-prompts.txt");
    Files.writeString(prompts, PipelineCluster.PROMPT + "\nThe lighthouse keeper climbed the stairs every night because\n");
    // Debian's python3-grpcio installs for the system Python, which a version manager may shadow as python3
    String python = Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
    JsonNode out = PipelineCluster.JSON.readTree(exec(List.of(python, client.resolve("resgraph_corpus.py").toString(), prompts.toString(),
        "--cluster", cluster.dir().toString(), "--model", model.toString(), "--saes", saes.toString(), "--stubs", stubs.toString(),
        "--min-share", "1", "--json")));

    // what both prompts share, recomputed here from each job's raw edges as the graph service returns them
    List<String> ids = new ArrayList<>();
    out.get("jobs").forEach(j -> ids.add(j.asText()));
    assertEquals(2, ids.size());
    GraphServiceGrpc.GraphServiceBlockingStub graph = GraphServiceGrpc.newBlockingStub(pipeline.channel(cluster.endpoints().graphService()));
    Map<String, List<Float>> weights = new TreeMap<>();
    for (String id : ids) {
      for (Edge e : graph.getCircuit(GetCircuitRequest.newBuilder().setJobId(id).setIncludeRawEdges(true).build()).getRawEdgesList()) {
        weights.computeIfAbsent(e.getSource() + "->" + e.getTarget(), k -> new ArrayList<>()).add(e.getWeight());
      }
    }
    JsonNode corpus = out.get("corpus");
    assertEquals(2, corpus.get("jobs").asInt());
    assertEquals(weights.size(), corpus.get("distinct_edges").asLong());
    long shared = weights.values().stream().filter(w -> w.size() == 2).count();
    assertEquals(Math.min(50, shared), corpus.path("edges").size());
    for (JsonNode e : corpus.path("edges")) {
      List<Float> w = weights.get(e.get("source").asText() + "->" + e.get("target").asText());
      assertEquals(((double) w.get(0) + w.get(1)) / 2, e.get("mean").asDouble(), 1e-12);
    }
  }

  /** Runs a program to the end; its standard output, or a failure with everything it printed. */
  private static String exec(List<String> command) throws Exception {
    Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.PIPE).start();
    CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
      try {
        return p.getErrorStream().readAllBytes();
      } catch (IOException e) {
        return new byte[0];
      }
    });
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(10, TimeUnit.MINUTES), command + " did not end");
    assertEquals(0, p.exitValue(), command + ":\n" + out + new String(err.get(), StandardCharsets.UTF_8));
    return out;
  }

  @Test
  void aPromptsFileWithAMistakeNamesItsLine() throws Exception {
    Path prompts = dir.resolve("bad-prompts.txt");
    Files.writeString(prompts, PipelineCluster.PROMPT + "\n{\"prompt\": \"x\", \"tagret\": 3}\n");
    Cli.Run r = Cli.resgraph("run", "--dir", cluster.dir().toString(), "--model", model.toString(), "--saes", saes.toString(),
        "--prompts", prompts.toString(), "--out", dir.resolve("bad-corpus").toString());
    assertEquals(2, r.code(), "a usage error");
    assertTrue(r.err().contains("line 2") && r.err().contains("tagret") && !r.err().contains("\tat "), r.err());
  }

  @Test
  void everyRawEdgeIsWhatAblateGivesAndTheCircuitIsTheIndependentPruning() throws IOException {
    assertIsWhatAblateGives(baseline);
    Map<String, Double> stored = edges(baseline, "raw_edges");
    long inNeo4j = count("MATCH ()-[r:EFFECT {job: $job}]->() RETURN count(r) AS n");
    assertEquals(count("MATCH ()-[r:EFFECT {job: $job}]->() WHERE r.candidate RETURN count(r) AS n"), inNeo4j,
        "Neo4j holds the candidates");
    assertTrue(inNeo4j >= baseline.get("edges").size() && inNeo4j < stored.size(), inNeo4j + " candidates");
  }

  @Test
  void anApproximateMethodRunsAsAJobOfItsOwnAndIsScoredAgainstTheExactGraph() throws Exception {
    JsonNode ig = pipeline.run("integrated-gradients", "--method", "integrated-gradients", "--ig-steps", "4");
    assertEquals("integrated-gradients", ig.get("method").asText());
    assertEquals(4, ig.get("ig_steps").asInt());
    assertEquals("ablation", baseline.get("method").asText());
    // its raw edges are what the model server's Ablate gives for the method, all candidates at once
    Map<String, Double> direct = pipeline.ablateEveryLayer(ig, AblateRequest.newBuilder().setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(4));
    Map<String, Double> stored = edges(ig, "raw_edges");
    assertEquals(direct.keySet(), stored.keySet(), "the job's edges are the method's");
    // the same float32 weights; graph.json writes them as shortest decimals
    direct.forEach((edge, w) -> assertEquals(w, stored.get(edge), 1e-6 * Math.abs(w), edge));

    String exact = baseline.get("job").get("id").asText(), approx = ig.get("job").get("id").asText();
    Cli.Run self = Cli.resgraph("compare", "--dir", cluster.dir().toString(), exact, exact, "--json", "--out", dir.resolve("self").toString());
    assertEquals(0, self.code(), self.err());
    JsonNode same = PipelineCluster.JSON.readTree(self.out());
    for (JsonNode a : same.get("pairs")) {
      for (String f : List.of("pearson", "spearman", "sign_agreement", "top_k_recall", "circuit_edge_jaccard", "circuit_node_jaccard")) {
        assertEquals(1.0, a.get(f).asDouble(), 1e-12, f + " of a graph with itself, " + a.get("source_hook") + " -> " + a.get("target_hook"));
      }
    }
    Cli.Run vs = Cli.resgraph("compare", "--dir", cluster.dir().toString(), exact, approx, "--json", "--out", dir.resolve("vs").toString());
    assertEquals(0, vs.code(), vs.err());
    JsonNode c = PipelineCluster.JSON.readTree(vs.out());
    assertEquals(3, c.get("pairs").size(), "one agreement per layer pair");
    assertEquals("integrated-gradients", c.get("job_b").get("method").asText());
    JsonNode overall = c.get("overall");
    assertEquals(edges(baseline, "raw_edges").size(), overall.get("edges_a").asLong());
    assertEquals(direct.size(), overall.get("edges_b").asLong());
    assertTrue(overall.get("pearson").asDouble() > -1 && overall.get("pearson").asDouble() < 1, overall.toString());
    assertTrue(Files.readString(dir.resolve("vs/scatter.svg")).contains("<svg"), "the scatter is a picture");

    Cli.Run f = Cli.resgraph("faithfulness", "--dir", cluster.dir().toString(), exact, approx, "--budgets", "2,5",
        "--out", dir.resolve("faithfulness").toString());
    assertEquals(0, f.code(), f.err());
    JsonNode scores = PipelineCluster.JSON.readTree(dir.resolve("faithfulness/faithfulness.json").toFile());
    assertEquals(2, scores.size(), "one entry per job");
    for (JsonNode job : scores) {
      assertEquals(List.of("pruned", "top 2", "top 5"), job.get("circuits").findValuesAsText("circuit"));
      assertTrue(Double.isFinite(job.get("m_full").asDouble()) && job.get("m_full").asDouble() != job.get("m_empty").asDouble(),
          "ablating every candidate moves the metric: " + job);
    }
    assertTrue(Files.readString(dir.resolve("faithfulness/faithfulness.svg")).contains("integrated-gradients"), "the plot names the methods");
  }

  @Test
  void rawEdgesParquetIsGraphJsonsRawEdges() throws Exception {
    Map<String, Float> parquet = new TreeMap<>(), json = new TreeMap<>();
    try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement s = c.createStatement();
        ResultSet r = s.executeQuery("SELECT source, target, weight FROM read_parquet('" + dir.resolve("baseline/raw_edges.parquet") + "')")) {
      while (r.next()) parquet.put(r.getString(1) + "->" + r.getString(2), r.getFloat(3));
    }
    // graph.json writes each float's shortest decimal, which reads back as that float exactly
    edges(baseline, "raw_edges").forEach((k, w) -> json.put(k, (float) (double) w));
    assertEquals(json, parquet);
  }

  /** METHOD.md step 7 written again from its text: top k per layer pair, then edges on a path of two. */
  static Set<String> prune(Map<String, Double> raw, int k) {
    Map<Integer, List<Map.Entry<String, Double>>> pairs = raw.entrySet().stream()
        .collect(Collectors.groupingBy(e -> Integer.parseInt(e.getKey().substring(0, e.getKey().indexOf('.')))));
    Set<String> kept = new HashSet<>();
    for (List<Map.Entry<String, Double>> pair : pairs.values()) {
      pair.sort(Comparator.<Map.Entry<String, Double>>comparingDouble(e -> -Math.abs(e.getValue()))
          .thenComparingInt(e -> latent(e.getKey().split("->")[0])).thenComparingInt(e -> latent(e.getKey().split("->")[1])));
      pair.stream().limit(k).forEach(e -> kept.add(e.getKey()));
    }
    Set<String> sources = new HashSet<>(), targets = new HashSet<>();
    for (String e : kept) {
      sources.add(e.split("->")[0]);
      targets.add(e.split("->")[1]);
    }
    return kept.stream().filter(e -> targets.contains(e.split("->")[0]) || sources.contains(e.split("->")[1]))
        .collect(Collectors.toCollection(java.util.TreeSet::new));
  }

  private static int latent(String node) {
    return Integer.parseInt(node.substring(node.indexOf('.') + 1));
  }

  /**
   * The graph's raw edges are what the model server's Ablate gives for its prompt, and its circuit
   * is their pruning to the top 10 a layer pair (METHOD.md step 7) as {@link #prune} does it.
   */
  private static void assertIsWhatAblateGives(JsonNode graph) {
    Map<String, Double> direct = pipeline.ablateEveryLayer(graph, AblateRequest.newBuilder());
    double largest = direct.values().stream().mapToDouble(Math::abs).max().orElse(0);
    Map<String, Double> stored = edges(graph, "raw_edges");
    assertEquals(direct.keySet(), stored.keySet(), "the same raw edges");
    for (Map.Entry<String, Double> e : direct.entrySet()) {
      double s = stored.get(e.getKey());
      // the job ablated in tasks, the direct call all at once: float32 sums may round differently,
      // by about a ten-millionth of the largest change (see ReferenceAgreementTest for the precision)
      assertTrue(Math.abs(s - e.getValue()) <= 1e-4 * Math.abs(e.getValue()) + 1e-6 * largest,
          e.getKey() + ": stored " + s + ", Ablate " + e.getValue());
    }
    assertEquals(prune(stored, 10), edges(graph, "edges").keySet(), "METHOD.md step 7, top 10");
  }

  /** A count of the baseline job's, from a Cypher query returning n. */
  private static long count(String cypher) throws IOException {
    return pipeline.cypher(cypher, baseline.get("job").get("id").asText()).get(0).get("n").asLong();
  }

  @Test
  void threeWorkersGiveTheSameGraphAsOne() throws Exception {
    pipeline.ensureWorkers(3);
    assertSameGraph(baseline, pipeline.run("three-workers"));
  }

  @Test
  void eightJobsSubmittedAtOnceToThreeWorkersEachGetTheGraphOfTheirOwnPrompt() throws Exception {
    pipeline.ensureWorkers(3);
    List<String> prompts = List.of("The ship left the harbor at dawn", "She opened the letter slowly because",
        "Rain fell on the quiet town", "Every morning the baker opened the", "The committee voted against the plan",
        "A small dog barked at the", "The river flooded the valley and", "He tuned the old piano so");
    ExecutorService callers = Executors.newFixedThreadPool(prompts.size());
    List<Job> submitted = new ArrayList<>();
    try {
      List<Future<Job>> calls = new ArrayList<>();
      // tasks of 16 latents: some 15 a job, eight jobs' worth shared by three workers in a couple of minutes
      for (String prompt : prompts) calls.add(callers.submit(() -> pipeline.submit(prompt, 16)));
      for (Future<Job> call : calls) submitted.add(call.get(5, TimeUnit.MINUTES));
    } finally {
      callers.shutdownNow();
    }
    for (int i = 0; i < prompts.size(); i++) {
      Job done = pipeline.awaitDone(submitted.get(i).getId());
      JsonNode graph = pipeline.graphOf(done);
      assertEquals(prompts.get(i), graph.get("prompt").asText(), "job " + done.getId());
      assertIsWhatAblateGives(graph);
      pipeline.assertEachTaskStoredOnce(done, graph);
    }
  }

  @Test
  void everyComponentListensOnLoopbackOnly() throws Exception {
    List<Integer> ports = new ArrayList<>();
    for (LocalCluster.Proc p : cluster.processes()) if (p.port() > 0) ports.add(p.port());
    String viewer = cluster.endpoints().viewer();
    ports.add(Integer.parseInt(viewer.substring(viewer.lastIndexOf(':') + 1)));
    assertEquals(6, ports.size(), "Kafka, Neo4j, the model server, the graph service (gRPC and HTTP), the orchestrator");
    List<InetAddress> outside = new ArrayList<>();
    for (NetworkInterface nic : Collections.list(NetworkInterface.getNetworkInterfaces())) {
      if (nic.isUp() && !nic.isLoopback()) outside.addAll(Collections.list(nic.getInetAddresses()));
    }
    for (int port : ports) {
      try (Socket s = new Socket()) {
        s.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
      }
      for (InetAddress address : outside) {
        try (Socket s = new Socket()) {
          assertThrows(IOException.class, () -> s.connect(new InetSocketAddress(address, port), 2_000),
              "port " + port + " answers on " + address + ", not only on loopback");
        }
      }
    }
  }

  @Test
  void everyServerRefusesCallsWithoutTheClustersToken() throws Exception {
    Path ca = cluster.credentials().resolve("ca.crt");
    Path wrong = dir.resolve("wrong-credentials");
    Files.createDirectories(wrong);
    Files.copy(ca, wrong.resolve("ca.crt"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    Files.writeString(wrong.resolve("token"), "not-the-token\n");
    Map<String, String> servers = Map.of("model server", cluster.endpoints().modelServer(), "orchestrator", cluster.endpoints().orchestrator(),
        "graph service", cluster.endpoints().graphService());
    for (Map.Entry<String, String> server : servers.entrySet()) {
      String address = server.getValue();
      ManagedChannel plaintext = GrpcChannels.open(address, ClientCredentials.insecure());
      ManagedChannel tlsAlone = io.grpc.Grpc.newChannelBuilder(address, io.grpc.TlsChannelCredentials.newBuilder().trustManager(ca.toFile()).build()).build();
      ManagedChannel wrongToken = GrpcChannels.open(address, ClientCredentials.fromFolder(wrong));
      try {
        assertEquals(io.grpc.Status.Code.UNAVAILABLE, listServices(plaintext).getStatus().getCode(), server.getKey() + " speaks plaintext");
        StatusRuntimeException none = listServices(tlsAlone);
        assertEquals(io.grpc.Status.Code.UNAUTHENTICATED, none.getStatus().getCode(), server.getKey());
        assertTrue(none.getStatus().getDescription().contains("bearer token"), none.getStatus().toString());
        StatusRuntimeException bad = listServices(wrongToken);
        assertEquals(io.grpc.Status.Code.UNAUTHENTICATED, bad.getStatus().getCode(), server.getKey());
        assertTrue(bad.getStatus().getDescription().contains("not this cluster's"), bad.getStatus().toString());
        // health stays open to probes: it tells only whether the server serves
        assertEquals(io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING, io.grpc.health.v1.HealthGrpc.newBlockingStub(tlsAlone)
            .withDeadlineAfter(30, TimeUnit.SECONDS).check(io.grpc.health.v1.HealthCheckRequest.getDefaultInstance()).getStatus(), server.getKey());
      } finally {
        for (ManagedChannel c : List.of(plaintext, tlsAlone, wrongToken)) c.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
    Cli.Run refused = Cli.resgraph("cypher", "--dir", cluster.dir().toString(), "--credentials", wrong.toString(), "MATCH (n) RETURN count(n)");
    assertEquals(1, refused.code());
    assertTrue(refused.err().contains("UNAUTHENTICATED") && refused.err().lines().count() == 1, refused.err());
    assertFalse(refused.err().contains(Files.readString(cluster.credentials().resolve("token")).strip()), "no token in the message");
  }

  /** The services a server lists through reflection over this channel. */
  private static List<String> services(ManagedChannel channel) throws Exception {
    CompletableFuture<ServerReflectionResponse> answer = new CompletableFuture<>();
    StreamObserver<ServerReflectionRequest> requests = ServerReflectionGrpc.newStub(channel)
        .withDeadlineAfter(60, TimeUnit.SECONDS).serverReflectionInfo(new StreamObserver<>() {
          @Override
          public void onNext(ServerReflectionResponse value) {
            answer.complete(value);
          }

          @Override
          public void onError(Throwable t) {
            answer.completeExceptionally(t);
          }

          @Override
          public void onCompleted() {
            answer.completeExceptionally(new AssertionError("the stream ended without an answer"));
          }
        });
    requests.onNext(ServerReflectionRequest.newBuilder().setListServices("").build());
    List<String> services = answer.get(60, TimeUnit.SECONDS).getListServicesResponse().getServiceList().stream()
        .map(ServiceResponse::getName).toList();
    requests.onCompleted();
    return services;
  }

  /** How a server refuses a reflection call made over this channel. */
  private static StatusRuntimeException listServices(ManagedChannel channel) {
    java.util.concurrent.ExecutionException e = assertThrows(java.util.concurrent.ExecutionException.class, () -> services(channel));
    return (StatusRuntimeException) e.getCause();
  }

  @Test
  void effectsDeliveredTwiceChangeNothing() throws Exception {
    String id = baseline.get("job").get("id").asText();
    long before = count("MATCH ()-[r:EFFECT {job: $job}]->() RETURN count(r) AS n");
    TaskEffects first = kafka.readAll(Topics.EFFECTS, TaskEffects.parser(), e -> e.getJobId().equals(id)).get(0).value();
    long storedBefore = storedEvents(id, first.getTask());
    kafka.publish(Topics.EFFECTS, id, first);
    // the graph service answers a redelivery with another stored event: once it is there, the copy was handled
    Await.until("a stored event for the copy", Duration.ofMinutes(2), () -> storedEvents(id, first.getTask()) > storedBefore);
    assertEquals(before, count("MATCH ()-[r:EFFECT {job: $job}]->() RETURN count(r) AS n"));
    assertEquals(Phase.PHASE_DONE, pipeline.jobs().get(GetJobRequest.newBuilder().setId(id).build()).getPhase());
  }

  @Test
  void badInputGetsAClearMessageAndLeavesEverythingRunningAndStored() throws IOException {
    long before = count("MATCH ()-[r:EFFECT {job: $job}]->() RETURN count(r) AS n");
    String[][] cases = {
        {"--prompt", "", "prompt is empty"},
        {"--layers", "3:1", "start (3) must be below the end (1)"},
        {"--layers", "0:9", "layer"},
    };
    for (String[] c : cases) {
      Cli.Run r = Cli.resgraph("run", "--dir", cluster.dir().toString(), "--model", model.toString(), "--saes", saes.toString(),
          c[0], c[1], "--out", dir.resolve("bad").toString());
      assertEquals(1, r.code(), r.err());
      assertTrue(r.err().strip().endsWith("") && r.err().contains(c[2]) && !r.err().contains("\tat "), r.err());
    }
    Cli.Run missing = Cli.resgraph("run", "--dir", cluster.dir().toString(), "--model", dir.resolve("nowhere").toString(),
        "--saes", saes.toString());
    assertEquals(1, missing.code());
    assertTrue(missing.err().contains("no model folder"), missing.err());
    Cli.Run write = Cli.resgraph("cypher", "--dir", cluster.dir().toString(), "MATCH (n:Job) DETACH DELETE n");
    assertEquals(1, write.code());
    assertTrue(write.err().contains("INVALID_ARGUMENT") && write.err().contains("read-only"), write.err());
    StatusRuntimeException grpc = org.junit.jupiter.api.Assertions.assertThrows(StatusRuntimeException.class,
        () -> pipeline.jobs().submit(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel(model.toString()).setSaes(saes.toString()))
            .setPrompt("").build()));
    assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, grpc.getStatus().getCode());
    assertTrue(cluster.healthy(), "every component still runs");
    assertEquals(before, count("MATCH ()-[r:EFFECT {job: $job}]->() RETURN count(r) AS n"), "earlier graphs intact");
  }

  @Test
  void everyServerDescribesItselfThroughReflection() throws Exception {
    Map<String, String> served = Map.of(cluster.endpoints().modelServer(), "resgraph.v1.ModelService",
        cluster.endpoints().orchestrator(), "resgraph.v1.JobService", cluster.endpoints().graphService(), "resgraph.v1.GraphService");
    for (Map.Entry<String, String> server : served.entrySet()) {
      List<String> services = services(pipeline.channel(server.getKey()));
      assertTrue(services.containsAll(List.of(server.getValue(), "grpc.health.v1.Health")), server + ": " + services);
    }
  }

  @Test
  void statusReportsTheComponentsTheBoltUriAndTheViewer() throws Exception {
    Cli.Run r = Cli.resgraph("status", "--dir", cluster.dir().toString(), "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode s = PipelineCluster.JSON.readTree(r.out());
    assertTrue(s.get("running").asBoolean());
    assertEquals(cluster.endpoints().bolt(), s.get("bolt").asText());
    String viewer = s.get("endpoints").get("viewer").asText();
    // a browser: it keeps cookies and follows redirects
    java.net.http.HttpClient browser = java.net.http.HttpClient.newBuilder().cookieHandler(new java.net.CookieManager())
        .followRedirects(java.net.http.HttpClient.Redirect.NORMAL).build();
    assertEquals(401, browser.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(viewer + "/jobs")).build(),
        java.net.http.HttpResponse.BodyHandlers.discarding()).statusCode(), "the browser before it logs in");
    java.net.http.HttpResponse<String> jobsPage = browser.send(
        java.net.http.HttpRequest.newBuilder(java.net.URI.create(s.get("viewer_login").asText())).build(),
        java.net.http.HttpResponse.BodyHandlers.ofString());
    assertEquals(200, jobsPage.statusCode());
    assertEquals(viewer + "/jobs", jobsPage.uri().toString(), "the link leads to the jobs, its token left behind");
    assertTrue(jobsPage.body().contains(baseline.get("job").get("id").asText()), "the served viewer lists the run's job");
    Set<String> names = new HashSet<>();
    s.get("components").forEach(c -> names.add(c.get("name").asText()));
    assertTrue(names.containsAll(List.of("kafka", "neo4j", "model-server", "graph-service", "orchestrator")), names.toString());
    assertTrue(names.stream().anyMatch(n -> n.startsWith("worker-")), names.toString());
  }

  @Test
  void neo4jLetsInOnlyThePasswordStatusShowsItsOwner() throws Exception {
    Cli.Run r = Cli.resgraph("status", "--dir", cluster.dir().toString(), "--json");
    assertEquals(0, r.code(), r.err());
    String password = PipelineCluster.JSON.readTree(r.out()).get("neo4j_password").asText();
    assertEquals(cluster.neo4jPassword(), password);
    assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(cluster.neo4jPasswordFile()),
        "the password file is its owner's alone");
    String bolt = cluster.endpoints().bolt();
    for (AuthToken stranger : List.of(AuthTokens.none(), AuthTokens.basic("neo4j", "neo4j"), AuthTokens.basic("neo4j", password + "x"))) {
      try (Driver driver = GraphDatabase.driver(bolt, stranger)) {
        assertThrows(AuthenticationException.class, driver::verifyConnectivity, "Bolt without the password");
      }
    }
    try (Driver driver = GraphDatabase.driver(bolt, AuthTokens.basic("neo4j", password))) {
      driver.verifyConnectivity();
    }
    for (Path log : Files.list(cluster.dir().resolve("logs")).toList()) {
      assertFalse(Files.readString(log, StandardCharsets.ISO_8859_1).contains(password), log + " holds the password");
    }
  }

  @Test
  void noSecretIsInALogClusterJsonOrAGraphAndTheFilesAreTheOwnersAlone() throws Exception {
    Path credentials = cluster.credentials();
    assertEquals(PosixFilePermissions.fromString("rwx------"), Files.getPosixFilePermissions(credentials));
    String key = Files.readString(credentials.resolve("tls.key"));
    List<String> secrets = List.of(Files.readString(credentials.resolve("token")).strip(), cluster.neo4jPassword(),
        key.substring(key.indexOf('\n') + 1, key.indexOf('\n') + 41));
    for (String file : List.of("token", "tls.key", "tls.crt", "ca.crt")) {
      assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(credentials.resolve(file)), file);
    }
    List<Path> readable = new ArrayList<>(Files.list(cluster.dir().resolve("logs")).toList());
    readable.add(cluster.dir().resolve("cluster.json"));
    for (Path file : readable) {
      String text = Files.readString(file, StandardCharsets.ISO_8859_1);
      for (String secret : secrets) assertFalse(text.contains(secret), file + " holds a secret");
    }
    for (String secret : secrets) assertFalse(baseline.toString().contains(secret), "graph.json holds a secret");
  }

  private static long storedEvents(String job, int task) {
    return kafka.readAll(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals(job) && e.hasStored()
        && e.getStored().getTask() == task).size();
  }
}
