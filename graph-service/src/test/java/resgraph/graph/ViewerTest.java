package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.support.ui.WebDriverWait;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportRequest;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.Phase;
import resgraph.v1.RegisterJobRequest;
import resgraph.testkit.Await;
import resgraph.viewer.Browser;
import resgraph.viewer.CircuitDot;

/** The circuit browser the graph service serves: pages, downloads, the Cypher API, and both pages in Chromium. */
@ExtendWith(GraphUnderTest.Start.class)
class ViewerTest {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  private static GraphUnderTest cluster;
  private static RealJob job;
  private static Circuit circuit;

  @BeforeAll
  static void finalizeTheJob() {
    cluster = GraphUnderTest.get();
    job = RealJob.get();
    cluster.finalizeJob(job.job());
    circuit = cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(job.id()).build());
  }

  private static HttpResponse<byte[]> get(String path) throws Exception {
    return HTTP.send(cluster.request(path).timeout(Duration.ofSeconds(60)).build(),
        HttpResponse.BodyHandlers.ofByteArray());
  }

  private static String page(String path) {
    try {
      return new String(get(path).body(), StandardCharsets.UTF_8);
    } catch (Exception e) {
      throw new AssertionError("GET " + path, e);
    }
  }

  private static HttpResponse<String> cypher(String body) throws Exception {
    return HTTP.send(cluster.request("/api/cypher").timeout(Duration.ofSeconds(60))
        .header("content-type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void everyPageIsBehindTheClustersToken() throws Exception {
    String jobs = cluster.viewer() + "/jobs";
    HttpResponse<String> anonymous = HTTP.send(HttpRequest.newBuilder(URI.create(jobs)).build(), HttpResponse.BodyHandlers.ofString());
    assertEquals(401, anonymous.statusCode());
    assertTrue(anonymous.body().contains("./resgraph status"), "the refusal says where the link is: " + anonymous.body());
    for (String path : List.of("/jobs/" + job.id() + "/graph.json", "/cypher", "/compare?a=" + job.id())) {
      assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(cluster.viewer() + path)).build(),
          HttpResponse.BodyHandlers.discarding()).statusCode(), path);
    }
    assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(cluster.viewer() + "/api/cypher"))
        .POST(HttpRequest.BodyPublishers.ofString("{\"cypher\": \"MATCH (n) RETURN count(n)\"}")).build(),
        HttpResponse.BodyHandlers.discarding()).statusCode(), "Cypher without the token");
    assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(jobs + "?token=wrong")).build(),
        HttpResponse.BodyHandlers.discarding()).statusCode(), "a wrong token in the link");
    assertEquals(401, HTTP.send(HttpRequest.newBuilder(URI.create(jobs)).header("Cookie", "resgraph_token=wrong").build(),
        HttpResponse.BodyHandlers.discarding()).statusCode(), "a wrong cookie");

    HttpResponse<String> login = HTTP.send(HttpRequest.newBuilder(URI.create(cluster.loginLink("/compare?a=" + job.id()))).build(),
        HttpResponse.BodyHandlers.ofString());
    assertEquals(303, login.statusCode());
    assertEquals("/compare?a=" + job.id(), login.headers().firstValue("Location").orElseThrow(), "the same page, without the token");
    String cookie = login.headers().firstValue("Set-Cookie").orElseThrow();
    assertTrue(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), cookie);
    assertEquals(200, HTTP.send(HttpRequest.newBuilder(URI.create(jobs)).header("Cookie", cookie.substring(0, cookie.indexOf(';'))).build(),
        HttpResponse.BodyHandlers.discarding()).statusCode(), "the cookie lets the browser in");
    assertFalse(page("/jobs").contains(cluster.cluster.token()), "no page carries the token");
  }

  @Test
  void listsJobsAndServesEachExport() throws Exception {
    HttpResponse<byte[]> list = get("/jobs");
    assertEquals(200, list.statusCode());
    assertTrue(new String(list.body()).contains("href=\"/jobs/" + job.id() + "\""), "the job links to its viewer");
    for (var f : Map.of("graph.json", ExportFormat.EXPORT_FORMAT_JSON, "graph.dot", ExportFormat.EXPORT_FORMAT_DOT,
        "neuronpedia.json", ExportFormat.EXPORT_FORMAT_NEURONPEDIA).entrySet()) {
      HttpResponse<byte[]> r = get("/jobs/" + job.id() + "/" + f.getKey());
      assertEquals(200, r.statusCode(), f.getKey());
      assertArrayEquals(cluster.graph().export(ExportRequest.newBuilder().setJobId(job.id()).setFormat(f.getValue()).build())
          .getContent().toByteArray(), r.body(), f.getKey());
    }
    HttpResponse<byte[]> unknown = get("/jobs/no-such-job");
    assertEquals(404, unknown.statusCode());
    assertTrue(new String(unknown.body()).contains("no-such-job"), "the page names the missing job");
    assertEquals(404, get("/nothing/here").statusCode());
  }

  /** A job without a circuit says why, from the phase the orchestrator records: not "still running" for one that ended. */
  @Test
  void aJobWithoutACircuitSaysWhyFromItsRecordedPhase() throws Exception {
    Map<Phase, String> says = Map.of(Phase.PHASE_RUNNING, "still running", Phase.PHASE_CANCELLED, "was cancelled",
        Phase.PHASE_FAILED, "the model server ran out of memory");
    for (Map.Entry<Phase, String> e : says.entrySet()) {
      RegisterJobRequest job = Fixtures.job(Fixtures.jobId("no-circuit"));
      String id = job.getJob().getId();
      cluster.register(job);
      cluster.record(job.getJob().toBuilder().setPhase(e.getKey()).setError("task 2 failed: the model server ran out of memory").build());
      String page = Await.until("the page of job " + id + " saying " + e.getValue(), GraphUnderTest.DEADLINE,
          () -> page("/jobs/" + id), p -> p.contains(e.getValue()));
      assertTrue(!e.getKey().equals(Phase.PHASE_RUNNING) || !page.contains("cancelled"), page);
      String phase = e.getKey().name().substring("PHASE_".length()).toLowerCase(java.util.Locale.ROOT);
      assertTrue(page("/jobs").contains("not finalized: " + phase),
          "the list shows the job " + phase);
    }
  }

  @Test
  void cypherApiAnswersReadsAndRefusesWrites() throws Exception {
    HttpResponse<String> count = cypher("{\"cypher\": \"MATCH ()-[e:EFFECT {job: $job}]->() WHERE e.circuit RETURN count(e) AS n\","
        + " \"parameters\": {\"job\": \"" + job.id() + "\"}}");
    assertEquals(200, count.statusCode(), count.body());
    JsonNode answer = JSON.readTree(count.body());
    assertEquals("n", answer.get("columns").get(0).asText());
    assertEquals(circuit.getEdgesCount(), answer.get("rows").get(0).get(0).asInt());

    HttpResponse<String> write = cypher("{\"cypher\": \"CREATE (:Feature {model: 'x', saes: 'y', layer: 0, latent: 0})\"}");
    assertEquals(400, write.statusCode());
    assertTrue(JSON.readTree(write.body()).get("error").asText().contains("read-only"), write.body());
    assertEquals(400, cypher("{not json").statusCode());
    assertEquals(400, cypher("{\"cypher\": \"MATCH (n) RETURN n\", \"limit\": 1.5}").statusCode());

    HttpResponse<String> again = cypher("{\"cypher\": \"MATCH (f:Feature {model: 'x'}) RETURN count(f)\"}");
    assertEquals(0, JSON.readTree(again.body()).get("rows").get(0).get(0).asInt(), "nothing was written");
  }

  @Test
  void servedViewerDrawsTheJobFiltersEdgesAndShowsANodeOnClick() {
    drawsTheCircuit(cluster.loginLink("/jobs/" + job.id()), "served-viewer");
  }

  @Test
  void graphHtmlOfTheStoredJobWorksFromDisk() throws Exception {
    java.nio.file.Path file = java.nio.file.Files.createTempDirectory("viewer-test").resolve("graph.html");
    java.nio.file.Files.write(file, get("/jobs/" + job.id() + "/graph.html").body());
    drawsTheCircuit(file.toUri().toString(), "graph-html-stored-job");
  }

  /** In Chromium: a box per node, an arrow per edge, a click shows the node, the filter hides edges, no console errors. */
  private static void drawsTheCircuit(String url, String screenshot) {
    try (Browser b = new Browser()) {
      b.open(url);
      assertEquals(circuit.getNodesCount(), b.driver.findElements(By.cssSelector("#canvas g.node[id^='n']")).size(), "one box per node");
      assertEquals(circuit.getEdgesCount(), b.driver.findElements(By.cssSelector("#canvas g.edge[id^='e']")).size(), "one arrow per edge");
      String header = b.driver.findElement(By.id("header")).getText();
      assertTrue(header.contains(job.id()) && header.contains("largest |effect|") && header.contains("of the total |effect|"), header);

      String first = circuit.getNodes(0).getId();
      new Actions(b.driver).click(b.driver.findElement(By.id(CircuitDot.id(first)))).perform();
      String details = b.driver.findElement(By.id("details")).getText().toLowerCase(java.util.Locale.ROOT);
      assertTrue(details.contains(first) && details.contains("activation over the prompt") && details.contains("raw edges in"), details);

      b.screenshot(screenshot); // the whole circuit, one node selected

      // the strictest filter keeps only the strongest edge (and any tied with it)
      ((JavascriptExecutor) b.driver).executeScript(
          "const f = document.getElementById('filter'); f.value = 100; f.dispatchEvent(new Event('input'));");
      double max = circuit.getEdgesList().stream().mapToDouble(e -> Math.abs(e.getWeight())).max().orElseThrow();
      long strongest = circuit.getEdgesList().stream().filter(e -> Math.abs(e.getWeight()) >= max).count();
      assertEquals(circuit.getEdgesCount() - strongest, b.driver.findElements(By.cssSelector("#canvas g.edge.hidden")).size());
      assertEquals(List.of(), b.consoleProblems());
    }
  }

  @Test
  void cypherPageDrawsTheCircuitsPathsAsAGraphAndAsATable() {
    try (Browser b = new Browser()) {
      b.open(cluster.loginLink("/cypher"));
      WebElement params = b.driver.findElement(By.id("params"));
      params.clear();
      params.sendKeys("{\"job\": \"" + job.id() + "\"}");
      b.driver.findElement(By.id("run")).click();
      new WebDriverWait(b.driver, Duration.ofSeconds(60)).until(d -> !d.findElements(By.cssSelector("#result svg")).isEmpty());
      long endpoints = circuit.getEdgesList().stream().flatMap(e -> java.util.stream.Stream.of(e.getSource(), e.getTarget()))
          .distinct().count();
      assertEquals(endpoints, b.driver.findElements(By.cssSelector("#result svg g.node")).size(), "one box per node on a path");
      assertEquals(circuit.getEdgesCount(), b.driver.findElements(By.cssSelector("#result svg g.edge")).size(), "one arrow per edge");
      String drawn = b.driver.findElement(By.cssSelector("#result svg")).getText();
      for (Edge e : circuit.getEdgesList()) assertTrue(drawn.contains(e.getSource()) && drawn.contains(e.getTarget()), e.toString());
      b.screenshot("cypher-page");

      b.driver.findElement(By.id("as-table")).click();
      assertEquals(circuit.getEdgesCount(), b.driver.findElements(By.cssSelector("#result tbody tr")).size(), "one row per path");
      assertEquals(List.of(), b.consoleProblems());
    }
  }
}
