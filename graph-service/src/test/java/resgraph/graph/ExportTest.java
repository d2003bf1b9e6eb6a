package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.graph.FinalizeTest.refused;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.grpc.Status;
import java.io.IOException;
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
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportRequest;
import resgraph.v1.ExportResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.Method;
import resgraph.v1.ModelRef;
import resgraph.v1.Node;
import resgraph.v1.Pruning;
import resgraph.v1.TokenValue;
import resgraph.viewer.CircuitDot;

/** The export formats: graph.json's fixed schema, DOT that Graphviz renders, Neuronpedia's graph JSON, the viewer page. */
@ExtendWith(GraphUnderTest.Start.class)
class ExportTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private static GraphUnderTest cluster;
  private static RealJob job;
  private static Circuit circuit;

  @TempDir Path tmp;

  @BeforeAll
  static void finalizeTheJob() {
    cluster = GraphUnderTest.get();
    job = RealJob.get();
    cluster.finalizeJob(job.job());
    circuit = cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(job.id()).setIncludeRawEdges(true).build());
  }

  private static ExportResponse export(ExportFormat format) {
    return cluster.graph().export(ExportRequest.newBuilder().setJobId(job.id()).setFormat(format).build());
  }

  private static Set<String> keys(JsonNode node) {
    Set<String> keys = new HashSet<>();
    node.fieldNames().forEachRemaining(keys::add);
    return keys;
  }

  private static List<TokenValue> tokenValues(JsonNode list) {
    List<TokenValue> out = new ArrayList<>();
    for (JsonNode t : list) {
      assertEquals(Set.of("token", "id", "value"), keys(t));
      out.add(TokenValue.newBuilder().setToken(t.get("token").asText()).setId(t.get("id").asInt())
          .setValue((float) t.get("value").asDouble()).build());
    }
    return out;
  }

  private static List<Edge> edges(JsonNode list) {
    List<Edge> out = new ArrayList<>();
    for (JsonNode e : list) {
      assertEquals(Set.of("source", "target", "weight"), keys(e));
      out.add(Edge.newBuilder().setSource(e.get("source").asText()).setTarget(e.get("target").asText())
          .setWeight((float) e.get("weight").asDouble()).build());
    }
    return out;
  }

  @Test
  void graphJsonHasExactlyItsSchema() throws IOException {
    ExportResponse r = export(ExportFormat.EXPORT_FORMAT_JSON);
    assertEquals("graph.json", r.getFilename());
    assertEquals("application/json", r.getContentType());
    JsonNode g = JSON.readTree(r.getContent().toByteArray());
    assertEquals(Set.of("schema", "job", "model", "saes", "method", "prompt", "tokens", "token_strings", "target", "layers",
        "pruning", "nodes", "edges", "raw_edges"), keys(g));
    assertEquals("resgraph.graph/v2", g.get("schema").asText());
    JsonNode about = g.get("job");
    assertEquals(Set.of("id", "release", "chain", "saes_settings"), keys(about));
    assertEquals(job.id(), about.get("id").asText());
    List<String> hooks = new ArrayList<>();
    about.get("chain").forEach(s -> hooks.add(s.get("hook").asText()));
    assertEquals(List.of("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre"), hooks);
    assertEquals("0", about.get("chain").get(0).get("node_prefix").asText());
    assertEquals(cluster.ref.getModel(), g.get("model").asText());
    assertEquals(cluster.ref.getSaes(), g.get("saes").asText());
    assertEquals("ablation", g.get("method").asText(), "a spec that names no method is an exact ablation");
    assertEquals(RealJob.PROMPT, g.get("prompt").asText());
    List<Integer> tokens = new ArrayList<>();
    g.get("tokens").forEach(t -> tokens.add(t.asInt()));
    assertEquals(job.job().getTokensList(), tokens);
    List<String> strings = new ArrayList<>();
    g.get("token_strings").forEach(t -> strings.add(t.asText()));
    assertEquals(job.job().getTokenStringsList(), strings);
    assertEquals(job.job().getTarget(), g.get("target").asInt());
    assertEquals(JSON.readTree("[0, 3]"), g.get("layers"));
    assertEquals(JSON.readTree("{\"top_k\": " + RealJob.TOP_K + "}"), g.get("pruning"));

    assertEquals(circuit.getNodesCount(), g.get("nodes").size());
    for (int i = 0; i < circuit.getNodesCount(); i++) {
      Node want = circuit.getNodes(i);
      JsonNode n = g.get("nodes").get(i);
      assertEquals(Set.of("id", "hook", "layer", "latent", "activations", "promotes", "suppresses", "neuronpedia"), keys(n));
      assertEquals(want.getHookName(), n.get("hook").asText());
      assertEquals(want.getId(), n.get("id").asText());
      assertEquals(want.getLayer(), n.get("layer").asInt());
      assertEquals(want.getLatent(), n.get("latent").asInt());
      List<Float> activations = new ArrayList<>();
      n.get("activations").forEach(a -> activations.add((float) a.asDouble()));
      assertEquals(want.getActivationsList(), activations);
      assertEquals(want.getPromotesList(), tokenValues(n.get("promotes")));
      assertEquals(want.getSuppressesList(), tokenValues(n.get("suppresses")));
      assertTrue(n.get("neuronpedia").isNull());
    }
    assertEquals(circuit.getEdgesList(), edges(g.get("edges")));
    assertEquals(job.rawEdges().size(), g.get("raw_edges").size());
    assertEquals(new HashSet<>(circuit.getRawEdgesList()), new HashSet<>(edges(g.get("raw_edges"))));
  }

  @Test
  void rawEdgesParquetHoldsEveryRawEdgeAsTheModelReportedIt() throws Exception {
    ExportResponse r = export(ExportFormat.EXPORT_FORMAT_PARQUET);
    assertEquals("raw_edges.parquet", r.getFilename());
    Path file = tmp.resolve(r.getFilename());
    Files.write(file, r.getContent().toByteArray());

    List<String> columns = new ArrayList<>();
    List<RawEdge> rows = new ArrayList<>();
    try (Connection c = DriverManager.getConnection("jdbc:duckdb:"); Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT * FROM read_parquet('" + file + "')")) {
      for (int i = 1; i <= rs.getMetaData().getColumnCount(); i++) columns.add(rs.getMetaData().getColumnName(i));
      while (rs.next()) {
        int layer = rs.getInt("source_layer"), next = rs.getInt("target_layer");
        int source = rs.getInt("source_latent"), target = rs.getInt("target_latent");
        assertEquals(layer + "." + source, rs.getString("source"));
        assertEquals(next + "." + target, rs.getString("target"));
        assertEquals(layer + 1, next);
        assertEquals(Fixtures.hook(layer), rs.getString("source_hook"));
        assertEquals(Fixtures.hook(next), rs.getString("target_hook"));
        rows.add(new RawEdge(layer, source, target, rs.getFloat("weight")));
      }
    }
    assertEquals(List.of("source", "target", "weight", "source_layer", "source_latent", "target_layer", "target_latent",
        "source_hook", "target_hook"), columns);
    // exactly the model's effects, each once, in circuit order (by source, then target)
    assertEquals(new HashSet<>(job.rawEdges()), new HashSet<>(rows));
    assertEquals(job.rawEdges().size(), rows.size());
    List<RawEdge> sorted = new ArrayList<>(rows);
    sorted.sort(CircuitPruner.ORDER);
    assertEquals(sorted, rows);
  }

  @Test
  void aHostedReleaseLinksEachNodeToItsNeuronpediaPage() throws IOException {
    SiteChain chain = SiteChain.of(hosted().getJob());
    assertEquals("https://www.neuronpedia.org/gpt2-small/5-res-jb/10603", chain.neuronpedia(0, 10603));
    assertEquals("", SiteChain.of(job.job()).neuronpedia(0, 1), "a local SAE folder has no Neuronpedia page");
    JsonNode node = JSON.readTree(graphJson(hosted())).get("nodes").get(0);
    assertEquals("https://www.neuronpedia.org/gpt2-small/5-res-jb/10603", node.get("neuronpedia").asText());
  }

  @Test
  void dotRendersInGraphvizWithOneBoxPerNodeAndOneArrowPerEdge() throws Exception {
    ExportResponse r = export(ExportFormat.EXPORT_FORMAT_DOT);
    assertEquals("graph.dot", r.getFilename());
    String dot = r.getContent().toStringUtf8();
    String svg = render(dot);
    for (Node n : circuit.getNodesList()) assertTrue(svg.contains("id=\"" + CircuitDot.id(n.getId()) + "\""), n.getId());
    for (Edge e : circuit.getEdgesList()) assertTrue(svg.contains("id=\"" + CircuitDot.edgeId(e) + "\""), e.toString());
    // one rank per site of the chain, labelled with its layer
    for (Integer layer : circuit.getNodesList().stream().map(Node::getLayer).distinct().toList()) {
      assertTrue(dot.contains("{ rank=same; site" + layer + " ") && dot.contains("label=\"layer " + layer + "\""), "rank of layer " + layer);
    }
  }

  @Test
  void dotShowsAwkwardTokensAsTextNeverAsMarkup() throws Exception {
    String svg = render(CircuitDot.of(hosted(), true));
    assertTrue(svg.contains("back\\slash"), svg);
    assertTrue(svg.contains("new\u21b5line"), "a newline token shows as a return arrow");
    assertTrue(svg.contains("end\\"), "a trailing backslash does not swallow what follows");
    assertTrue(svg.contains("&quot;quoted&quot;"), svg);
    assertTrue(svg.contains("&lt;b&gt;&amp;amp;"), "markup in a token is shown, escaped");
    assertTrue(svg.contains("{rank=same}"), svg);
    assertTrue(svg.contains("gr\u00fc\u00dfe\u00b7\u20ac"), svg);
  }

  @Test
  void htmlIsOnePageThatNeedsNoNetwork() {
    ExportResponse r = export(ExportFormat.EXPORT_FORMAT_HTML);
    assertEquals("graph.html", r.getFilename());
    assertTrue(r.getContentType().startsWith("text/html"));
    String html = r.getContent().toStringUtf8();
    assertTrue(html.startsWith("<!doctype html>"), html.substring(0, 40));
    assertTrue(!html.matches("(?s).*<(script|link)[^>]+(src|href)=\"(https?:)?//.*"), "loads something from the network");
    for (Node n : circuit.getNodesList()) assertTrue(html.contains("\"" + n.getId() + "\""), n.getId());
  }

  @Test
  void aPageCarriesOnlyTheRawEdgesIntoAndOutOfItsCircuitButCountsThemAll() {
    Set<String> nodes = new HashSet<>();
    for (Node n : circuit.getNodesList()) nodes.add(n.getId());
    List<Edge> touching = circuit.getRawEdgesList().stream()
        .filter(e -> nodes.contains(e.getSource()) || nodes.contains(e.getTarget())).toList();
    assertTrue(!touching.isEmpty() && touching.size() < circuit.getRawEdgesCount(),
        touching.size() + " of " + circuit.getRawEdgesCount() + " raw edges touch the circuit: the check needs some of each");
    Circuit page = cluster.circuits().readForPage(job.id());
    assertEquals(touching, page.getRawEdgesList());
    assertEquals(circuit.getRawEdgeCount(), page.getRawEdgeCount());
    assertEquals(circuit.getEdgesList(), page.getEdgesList());
    assertEquals(circuit.getNodesList(), page.getNodesList());
  }

  /** Runs Graphviz's dot; fails (not skips) without it, as CI installs it. */
  private String render(String dot) throws Exception {
    Path in = tmp.resolve("graph.dot"), out = tmp.resolve("graph.svg"), log = tmp.resolve("dot.log");
    Files.writeString(in, dot);
    Process p;
    try {
      p = new ProcessBuilder("dot", "-Tsvg", "-o", out.toString(), in.toString()).redirectErrorStream(true)
          .redirectOutput(log.toFile()).start();
    } catch (IOException e) {
      throw new AssertionError("Graphviz's dot is needed to check graph.dot (apt-get install graphviz): " + e.getMessage(), e);
    }
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "dot did not finish");
    assertEquals(0, p.exitValue(), "dot failed: " + Files.readString(log) + "\n" + dot);
    assertEquals("", Files.readString(log).strip(), "dot warned");
    return Files.readString(out);
  }

  @Test
  void neuronpediaJsonHasTheAttributionGraphFields() throws IOException {
    ExportResponse r = export(ExportFormat.EXPORT_FORMAT_NEURONPEDIA);
    assertEquals("neuronpedia.json", r.getFilename());
    JsonNode g = JSON.readTree(r.getContent().toByteArray());
    assertEquals(Set.of("metadata", "qParams", "nodes", "links"), keys(g));

    JsonNode m = g.get("metadata");
    assertTrue(keys(m).containsAll(Set.of("slug", "scan", "prompt_tokens", "prompt", "schema_version", "info", "pruning_settings")));
    assertEquals(job.id().toLowerCase(), m.get("slug").asText());
    assertEquals(cluster.ref.getModel(), m.get("scan").asText());
    assertEquals(RealJob.PROMPT, m.get("prompt").asText());
    assertEquals(job.job().getTokenStringsCount(), m.get("prompt_tokens").size());
    assertEquals(job.job().getTokenStrings(1), m.get("prompt_tokens").get(1).asText());
    assertEquals(1, m.get("schema_version").asInt());
    assertEquals("resgraph", m.get("info").get("generator").get("name").asText());
    assertEquals(1_790_000_000_000L, m.get("info").get("create_time_ms").asLong());
    assertEquals(RealJob.TOP_K, m.get("pruning_settings").get("top_k").asInt());
    assertEquals(JSON.readTree("{\"method\": \"ablation\"}"), m.get("generation_settings"));
    assertTrue(m.get("info").get("description").asText().startsWith("Graph (ablation) of "), m.get("info").toString());
    assertTrue(!keys(m).contains("feature_details"), "a local SAE folder is not on Neuronpedia");
    assertEquals(Set.of("pinnedIds", "supernodes", "linkType", "clickedId", "sg_pos"), keys(g.get("qParams")));

    int target = job.job().getTarget();
    Map<String, JsonNode> byId = new HashMap<>();
    assertEquals(circuit.getNodesCount(), g.get("nodes").size());
    for (int i = 0; i < circuit.getNodesCount(); i++) {
      Node want = circuit.getNodes(i);
      JsonNode n = g.get("nodes").get(i);
      assertTrue(keys(n).containsAll(Set.of("node_id", "feature", "layer", "ctx_idx", "feature_type", "jsNodeId", "clerp",
          "influence", "activation")), keys(n).toString());
      assertEquals(want.getLayer() + "_" + want.getLatent() + "_" + target, n.get("node_id").asText());
      assertEquals(NeuronpediaExport.cantor(want.getLayer(), want.getLatent()), n.get("feature").asLong());
      assertEquals(Integer.toString(want.getLayer()), n.get("layer").asText());
      assertTrue(n.get("layer").isTextual());
      assertEquals(target, n.get("ctx_idx").asInt());
      assertEquals("cross layer transcoder", n.get("feature_type").asText());
      assertEquals(want.getLayer() + "_" + want.getLatent() + "-0", n.get("jsNodeId").asText());
      assertTrue(n.get("clerp").asText().startsWith(want.getId()));
      assertEquals(want.getActivations(target), (float) n.get("activation").asDouble());
      byId.put(n.get("node_id").asText(), n);
    }
    assertEquals(circuit.getEdgesCount(), g.get("links").size());
    for (int i = 0; i < circuit.getEdgesCount(); i++) {
      JsonNode l = g.get("links").get(i);
      assertTrue(byId.containsKey(l.get("source").asText()) && byId.containsKey(l.get("target").asText()), l.toString());
      assertEquals(-circuit.getEdges(i).getWeight(), (float) l.get("weight").asDouble(), "attribution sign: positive excites");
    }
  }

  @Test
  void neuronpediaJsonNamesTheHostedModelAndSourceSet() throws IOException {
    JsonNode m = JSON.readTree(NeuronpediaExport.render(hosted())).get("metadata");
    assertEquals("gpt2-small", m.get("scan").asText());
    assertEquals("res-jb", m.get("feature_details").get("neuronpedia_source_set").asText());
    // Neuronpedia decodes (layer, index) from the Cantor pairing (x + y)(x + y + 1)/2 + y
    assertEquals(1, NeuronpediaExport.cantor(1, 0));
    assertEquals(2, NeuronpediaExport.cantor(0, 1));
    assertEquals(4, NeuronpediaExport.cantor(1, 1));
    assertEquals(60, NeuronpediaExport.cantor(5, 5));
  }

  @Test
  void anApproximateGraphSaysHowItWasMadeInEveryExport() throws IOException {
    Circuit hosted = hosted();
    Circuit ig = hosted.toBuilder().setJob(hosted.getJob().toBuilder().setSpec(hosted.getJob().getSpec().toBuilder()
        .setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(12))).build();
    JsonNode g = JSON.readTree(graphJson(ig));
    assertEquals("integrated-gradients", g.get("method").asText());
    assertEquals(12, g.get("ig_steps").asInt());
    assertTrue(!JSON.readTree(graphJson(hosted)).has("ig_steps"), "only integrated gradients has steps");
    JsonNode m = JSON.readTree(NeuronpediaExport.render(ig)).get("metadata");
    assertEquals(JSON.readTree("{\"method\": \"integrated-gradients\", \"ig_steps\": 12}"), m.get("generation_settings"));
    assertTrue(m.get("info").get("description").asText().startsWith("Graph (integrated-gradients, 12 steps) of "), m.toString());
  }

  @Test
  void anUnspecifiedFormatIsRefused() {
    refused(Status.Code.INVALID_ARGUMENT, "EXPORT_FORMAT_JSON",
        () -> cluster.graph().export(ExportRequest.newBuilder().setJobId(job.id()).build()));
  }

  /** graph.json of a circuit alone, with no raw edges. */
  private static byte[] graphJson(Circuit c) {
    return GraphJsonExport.render(c, List.of(), SiteChain.of(c.getJob())).toByteArray();
  }

  /** A finalized circuit of a release Neuronpedia hosts, with token strings that need escaping. */
  private static Circuit hosted() {
    List<String> tokens = List.of("<|endoftext|>", "\"quoted\"", "back\\slash", "new\nline", "tab\t", "<b>&amp;", "{rank=same}",
        "gr\u00fc\u00dfe \u20ac", "\u0001", "end\\");
    Job job = Job.newBuilder().setId("Hosted_Job.1")
        .setSpec(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel("openai-community/gpt2").setSaes("gpt2-small-res-jb"))
            .setPrompt(String.join("", tokens.subList(1, tokens.size()))).setPruning(Pruning.newBuilder().setThreshold(0.25)))
        .addAllTokenStrings(tokens).setTarget(tokens.size() - 1).setLayerStart(5).setLayerEnd(7)
        .addChain(ChainSite.newBuilder().setHookName("blocks.5.hook_resid_pre").setSite("5").setLayer(5).setNodePrefix("5")
            .setNeuronpedia("gpt2-small/5-res-jb"))
        .addChain(ChainSite.newBuilder().setHookName("blocks.6.hook_resid_pre").setSite("6").setLayer(6).setNodePrefix("6")
            .setNeuronpedia("gpt2-small/6-res-jb"))
        .build();
    for (int i = 0; i < tokens.size(); i++) job = job.toBuilder().addTokens(i).build();
    List<Float> zeros = new ArrayList<>();
    for (int i = 0; i < tokens.size(); i++) zeros.add(i == tokens.size() - 1 ? 3.5f : 0f);
    Node a = Node.newBuilder().setId("5.10603").setLayer(5).setLatent(10603).setHookName("blocks.5.hook_resid_pre")
        .addAllActivations(zeros).addPromotes(TokenValue.newBuilder().setId(7).setToken("\"}\\").setValue(0.5f))
        .setNeuronpedia("https://www.neuronpedia.org/gpt2-small/5-res-jb/10603").build();
    Node b = Node.newBuilder().setId("6.2").setLayer(6).setLatent(2).setHookName("blocks.6.hook_resid_pre")
        .addAllActivations(zeros).build();
    return Circuit.newBuilder().setJob(job).addNodes(a).addNodes(b)
        .addEdges(Edge.newBuilder().setSource("5.10603").setTarget("6.2").setWeight(-0.75f)).build();
  }
}
