package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.graph.FinalizeTest.refused;

import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Session;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import resgraph.v1.Agreement;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.Job;
import resgraph.v1.LayerActivations;
import resgraph.v1.Method;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.SparseActivations;
import resgraph.v1.Timings;

/**
 * Compare (METHOD.md "Approximations, scored against the exact graph"): a graph against itself
 * agrees perfectly, and two hand-made graphs of one prompt score exactly what is worked out by hand
 * below; jobs that are not of one prompt, not finished or not registered are refused.
 */
@ExtendWith(GraphUnderTest.Start.class)
class CompareTest {

  private static final double EXACT = 1e-12;

  private static GraphUnderTest cluster;
  private static String exact;
  private static String approximate;

  /*
   * Two graphs over layers 0 -> 1 -> 2, pruned at |e| >= 1.5:
   *
   *   edge        A (exact)   B (attribution)
   *   0: 1 -> 10     -4          -3       same sign
   *   0: 1 -> 11      2          -1       opposite signs
   *   0: 2 -> 10      1           2       same sign
   *   0: 2 -> 12   -0.5           .       A only; latent 1.12 is off at the target
   *   0: 2 -> 13      .         0.5       B only
   *   0: 1 -> 13      .        1.25       B only
   *   1: 10 -> 20     3         2.5       same sign
   *   1: 11 -> 20    -1       -1.75       same sign
   *
   * Circuits (kept at 1.5, then only edges on a path of two): A {0:1->10, 1:10->20}; B {0:1->10,
   * 0:2->10, 1:10->20} (B's 1:11->20 has nothing into 1.11, A's 0:1->11 nothing out of 1.11).
   */
  @BeforeAll
  static void storeTwoGraphsOfOnePrompt() {
    cluster = GraphUnderTest.get();
    // a model of its own, so these jobs join no other test's corpus statistics
    String model = "compare-" + Fixtures.jobId("model");
    exact = store("exact", model, Method.METHOD_ABLATION, 10, List.of(
        List.of(new RawEdge(0, 1, 10, -4f), new RawEdge(0, 1, 11, 2f), new RawEdge(0, 2, 10, 1f), new RawEdge(0, 2, 12, -0.5f)),
        List.of(new RawEdge(1, 10, 20, 3f), new RawEdge(1, 11, 20, -1f))));
    approximate = store("attribution", model, Method.METHOD_ATTRIBUTION, 2.5, List.of(
        List.of(new RawEdge(0, 1, 10, -3f), new RawEdge(0, 1, 11, -1f), new RawEdge(0, 1, 13, 1.25f), new RawEdge(0, 2, 10, 2f),
            new RawEdge(0, 2, 13, 0.5f)),
        List.of(new RawEdge(1, 10, 20, 2.5f), new RawEdge(1, 11, 20, -1.75f))));
  }

  /** Registers a job of Fixtures' prompt, stores one task of edges per layer, prunes and annotates it. */
  private static String store(String what, String model, Method method, double wallSeconds, List<List<RawEdge>> tasks) {
    String id = Fixtures.jobId(what);
    RegisterJobRequest fixture = Fixtures.job(id);
    Job job = fixture.getJob().toBuilder()
        .setSpec(fixture.getJob().getSpec().toBuilder().setRef(fixture.getJob().getSpec().getRef().toBuilder().setModel(model))
            .setPruning(Pruning.newBuilder().setThreshold(1.5)).setMethod(method))
        .setTimings(Timings.newBuilder().setWall(wallSeconds))
        .build();
    // at the target (position 3): 1.10, 1.11 and 2.20 on; 1.12 on only at position 1
    cluster.register(fixture.toBuilder().setJob(job)
        .addActivations(activations(1, Map.of(10, 0.5f, 11, 1.5f), Map.of(12, 0.7f)))
        .addActivations(activations(2, Map.of(20, 2f), Map.of())).build());
    for (int task = 0; task < tasks.size(); task++) cluster.publish(Fixtures.effects(id, task, task, tasks.get(task)));
    cluster.events(id, tasks.size());
    PruneResponse pruned = cluster.graph().prune(PruneRequest.newBuilder().setJobId(id).setPruning(job.getSpec().getPruning()).build());
    cluster.graph().annotate(AnnotateRequest.newBuilder().setJobId(id).addAllEdges(pruned.getEdgesList()).build());
    return id;
  }

  private static LayerActivations activations(int layer, Map<Integer, Float> atTarget, Map<Integer, Float> atPositionOne) {
    LayerActivations.Builder l = LayerActivations.newBuilder().setLayer(layer).setHookName(Fixtures.hook(layer));
    for (int p = 0; p < 4; p++) {
      SparseActivations.Builder at = SparseActivations.newBuilder();
      (p == 3 ? atTarget : p == 1 ? atPositionOne : Map.<Integer, Float>of()).forEach((latent, v) -> at.addLatents(latent).addValues(v));
      l.addPositions(at);
    }
    return l.build();
  }

  private static Comparison compare(String a, String b, int topK) {
    return cluster.graph().compare(CompareRequest.newBuilder().setJobA(a).setJobB(b).setTopK(topK).build());
  }

  @Test
  void aGraphAgreesWithItselfEverywhere() {
    RealJob job = RealJob.get();
    cluster.finalizeJob(job.job());
    Comparison c = compare(job.id(), job.id(), 0);
    assertEquals(2, c.getPairsCount());
    assertEquals(List.of("0", "1"), List.of(c.getPairs(0).getSourceHook(), c.getPairs(1).getSourceHook()));
    assertEquals(job.rawEdges().size(), c.getOverall().getEdgesA());
    List<Agreement> all = new ArrayList<>(c.getPairsList());
    all.add(c.getOverall());
    for (Agreement g : all) {
      assertTrue(g.getEdgesA() > 0, g.toString());
      assertEquals(g.getEdgesA(), g.getEdgesB());
      assertEquals(g.getEdgesA(), g.getEdgesUnion());
      assertEquals(g.getEdgesA(), g.getSharedEdges());
      assertEquals(1, g.getPearson(), EXACT);
      assertEquals(1, g.getSpearman(), EXACT);
      assertEquals(1, g.getSignAgreement());
      assertEquals(1, g.getTopKRecall());
      assertEquals(1, g.getCircuitEdgeJaccard());
      assertEquals(1, g.getCircuitNodeJaccard());
      assertTrue(g.getSwitchedOnShare() >= 0 && g.getSwitchedOnShare() < 1, g.toString());
    }
    assertTrue(Double.isNaN(c.getWallTimeRatio()), "the job records no wall time");
  }

  @Test
  void twoGraphsScoreWhatIsWorkedOutByHand() {
    Comparison c = compare(exact, approximate, 3);
    assertEquals(exact, c.getJobA().getId());
    assertEquals(Method.METHOD_ATTRIBUTION, c.getJobB().getSpec().getMethod());
    assertEquals(0.25, c.getWallTimeRatio(), EXACT);

    Agreement first = c.getPairs(0);
    assertEquals("0", first.getSourceHook());
    assertEquals("1", first.getTargetHook());
    assertEquals(4, first.getEdgesA());
    assertEquals(5, first.getEdgesB());
    assertEquals(6, first.getEdgesUnion());
    // x = A = (-4, 2, 1, -0.5, 0, 0), y = B = (-3, -1, 2, 0, 0.5, 1.25): n = 6, Σx = -1.5, Σy = -0.25, Σxy = 12,
    // Σx² = 21.25, Σy² = 15.8125, and r = (nΣxy - ΣxΣy) / sqrt((nΣx² - (Σx)²)(nΣy² - (Σy)²))
    assertEquals(71.625 / Math.sqrt(125.25 * 94.8125), first.getPearson(), EXACT);
    // ranks x (1, 6, 5, 2, 3.5, 3.5: the two zeros share 3 and 4), y (1, 2, 6, 3, 4, 5); about their mean 3.5,
    // Σdx·dy = 7, Σdx² = 17, Σdy² = 17.5
    assertEquals(7 / Math.sqrt(17 * 17.5), first.getSpearman(), EXACT);
    assertEquals(3, first.getSharedEdges());
    assertEquals(2.0 / 3, first.getSignAgreement(), EXACT);
    // A's top 3 {1->10, 1->11, 2->10}, B's {1->10, 2->10, 1->13}
    assertEquals(2.0 / 3, first.getTopKRecall(), EXACT);
    // edges {1->10} and {1->10, 2->10}; nodes {0.1, 1.10} and {0.1, 0.2, 1.10}
    assertEquals(0.5, first.getCircuitEdgeJaccard(), EXACT);
    assertEquals(2.0 / 3, first.getCircuitNodeJaccard(), EXACT);
    // 0.5 of A's 7.5 goes into 1.12, off at the target
    assertEquals(0.5 / 7.5, first.getSwitchedOnShare(), EXACT);

    Agreement second = c.getPairs(1);
    assertEquals(List.of(2L, 2L, 2L, 2L), List.of(second.getEdgesA(), second.getEdgesB(), second.getEdgesUnion(), second.getSharedEdges()));
    assertEquals(1, second.getPearson(), EXACT); // two points lie on a line
    assertEquals(1, second.getSpearman(), EXACT);
    assertEquals(1, second.getSignAgreement());
    assertEquals(1, second.getTopKRecall());
    assertEquals(1, second.getCircuitEdgeJaccard());
    assertEquals(1, second.getCircuitNodeJaccard());
    assertEquals(0, second.getSwitchedOnShare());

    Agreement overall = c.getOverall();
    assertEquals("", overall.getSourceHook());
    assertEquals(List.of(6L, 7L, 8L, 5L), List.of(overall.getEdgesA(), overall.getEdgesB(), overall.getEdgesUnion(), overall.getSharedEdges()));
    // x = (-4, 2, 1, -0.5, 0, 0, 3, -1), y = (-3, -1, 2, 0, 0.5, 1.25, 2.5, -1.75): n = 8, Σx = Σy = 0.5,
    // Σxy = 21.25, Σx² = 31.25, Σy² = 25.125
    assertEquals(169.75 / Math.sqrt(249.75 * 200.75), overall.getPearson(), EXACT);
    // ranks x (1, 7, 6, 3, 4.5, 4.5, 8, 2), y (1, 3, 7, 4, 5, 6, 8, 2); about 4.5: Σdx·dy = 31.5, Σdx² = 41.5, Σdy² = 42
    assertEquals(31.5 / Math.sqrt(41.5 * 42), overall.getSpearman(), EXACT);
    assertEquals(4.0 / 5, overall.getSignAgreement(), EXACT);
    // A's top 3 of all {1->10, 10->20, 1->11}, B's {1->10, 10->20, 2->10}
    assertEquals(2.0 / 3, overall.getTopKRecall(), EXACT);
    // edges 2 and 3 sharing 2; nodes {0.1, 1.10, 2.20} and {0.1, 0.2, 1.10, 2.20}
    assertEquals(2.0 / 3, overall.getCircuitEdgeJaccard(), EXACT);
    assertEquals(3.0 / 4, overall.getCircuitNodeJaccard(), EXACT);
    assertEquals(0.5 / 11.5, overall.getSwitchedOnShare(), EXACT);
  }

  @Test
  void theScatterHasAPanelPerPairAndColoursEachEdgeByHowItsSignsAgree() throws Exception {
    String svg = compare(exact, approximate, 0).getScatterSvg();
    Document doc = DocumentBuilderFactory.newInstance().newDocumentBuilder()
        .parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
    assertEquals("svg", doc.getDocumentElement().getTagName());
    List<Element> panels = new ArrayList<>();
    NodeList groups = doc.getElementsByTagName("g");
    for (int i = 0; i < groups.getLength(); i++) {
      Element g = (Element) groups.item(i);
      if (g.getAttribute("class").equals("panel")) panels.add(g);
    }
    assertEquals(2, panels.size());
    assertTrue(panels.get(0).getTextContent().contains("0 \u2192 1 · r = 0.657"), panels.get(0).getTextContent());
    // pair 0: two edges of the same sign, one of opposite signs, three in one graph only
    Map<String, Integer> dots = new HashMap<>();
    NodeList colours = panels.get(0).getElementsByTagName("g");
    for (int i = 0; i < colours.getLength(); i++) {
      Element g = (Element) colours.item(i);
      dots.put(g.getAttribute("fill"), g.getElementsByTagName("circle").getLength());
    }
    assertEquals(Map.of("#4c72b0", 2, "#d62728", 1, "#e69f00", 3), dots);
    assertTrue(svg.contains("x: A: " + exact + " (ablation)") && svg.contains("y: B: " + approximate + " (attribution)"), svg);
  }

  @Test
  void graphsOfDifferentPromptsAreRefusedNamingWhatDiffers() {
    RealJob other = RealJob.get();
    cluster.finalizeJob(other.job());
    refused(Status.Code.INVALID_ARGUMENT, "prompt tokens", () -> compare(exact, other.id(), 0));
    refused(Status.Code.INVALID_ARGUMENT, "model", () -> compare(exact, other.id(), 0));
  }

  @Test
  void anUnfinishedOrUnknownJobIsRefused() {
    String running = Fixtures.jobId("running");
    cluster.register(Fixtures.job(running));
    refused(Status.Code.FAILED_PRECONDITION, running, () -> compare(exact, running, 0));
    String unknown = Fixtures.jobId("unknown");
    refused(Status.Code.NOT_FOUND, unknown, () -> compare(unknown, exact, 0));
    refused(Status.Code.INVALID_ARGUMENT, "top_k", () -> compare(exact, approximate, -1));
  }

  @Test
  void theBrowserOffersJobsOfOnePromptAndShowsTheirComparison() throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    String picked = http.send(cluster.request("/compare?a=" + exact).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    String offered = picked.substring(picked.indexOf("name=\"b\""));
    assertTrue(offered.contains(approximate + " · attribution"), offered);
    assertTrue(!offered.contains(RealJob.PROMPT), "a job of another prompt is offered as B");

    HttpResponse<String> page = http.send(cluster.request("/compare?a=" + exact + "&b=" + approximate).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(200, page.statusCode());
    assertTrue(page.body().contains("<td>0 \u2192 1</td><td>4</td><td>5</td><td>6</td><td>0.657</td>"), page.body());
    assertTrue(page.body().contains("<svg "));
  }

  @Test
  void theJobsMethodIsRecordedOnItsNode() {
    try (Session s = cluster.neo4j.session()) {
      assertEquals("attribution", s.run("MATCH (j:Job {id: $id}) RETURN j.method AS m", Map.of("id", approximate)).single().get("m").asString());
      assertEquals("ablation", s.run("MATCH (j:Job {id: $id}) RETURN j.method AS m", Map.of("id", exact)).single().get("m").asString());
      assertTrue(s.run("MATCH (j:Job {id: $id}) RETURN j.ig_steps IS NULL AS none", Map.of("id", exact)).single().get("none").asBoolean(),
          "only integrated gradients has steps");
    }
  }
}
