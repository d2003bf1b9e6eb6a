package resgraph.viewer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.interactions.Actions;
import resgraph.v1.Circuit;
import resgraph.v1.Node;

/** The DOT renders with Graphviz, and graph.html works in a real browser with no network. */
class DrawingTest {

  @TempDir Path dir;

  @Test
  void dotRendersWithGraphvizToOneBoxPerNodeAndOneArrowPerEdge() throws Exception {
    Circuit c = SampleCircuits.small();
    String out = render(CircuitDot.of(c, true));
    for (var n : c.getNodesList()) assertTrue(out.contains("id=\"" + CircuitDot.id(n.getId()) + "\""), n.getId());
    for (var e : c.getEdgesList()) assertTrue(out.contains("id=\"" + CircuitDot.edgeId(e) + "\""), e.toString());
    // the awkward tokens arrive escaped, not as markup
    assertTrue(out.contains("&lt;John&gt;") && out.contains("&amp;"), "tokens escaped");
    Files.copy(dir.resolve("graph.svg"), Path.of("target").resolve("graph-test.svg"), StandardCopyOption.REPLACE_EXISTING);
  }

  @Test
  void aLongPromptsBoxesShowWhereTheirLatentFiredMostAndTheTokensUpToTheTarget() throws Exception {
    int length = 300;
    Circuit c = SampleCircuits.longPrompt(length, 0);
    String dot = CircuitDot.of(c, true);
    for (Node n : c.getNodesList()) {
      String line = dot.lines().filter(l -> l.startsWith("  " + CircuitDot.id(n.getId()) + " [")).findFirst().orElseThrow();
      Set<String> shown = tokens(Pattern.compile(">(?:<U>)?(t\\d+)(?:</U>)?<"), line);
      assertTrue(shown.size() <= CircuitDot.CONTEXT, n.getId() + " shows " + shown.size() + " tokens");
      assertTrue(shown.contains("t" + (length - 1)), n.getId() + " shows the target: " + shown);
      int peak = IntStream.range(0, length).reduce((a, b) -> n.getActivations(b) > n.getActivations(a) ? b : a).getAsInt();
      if (n.getActivations(peak) > 0) assertTrue(shown.contains("t" + peak), n.getId() + " shows its peak t" + peak + ": " + shown);
    }
    String header = dot.lines().filter(l -> l.startsWith("  graph [")).findFirst().orElseThrow();
    Set<String> prompt = tokens(Pattern.compile("(?<![A-Za-z])(t\\d+)"), header);
    assertTrue(prompt.size() == CircuitDot.HEADER_TOKENS && prompt.contains("t" + (length - 1)), prompt.toString());

    // the whole picture stays about as large as a short prompt's
    double[] small = size(render(CircuitDot.of(SampleCircuits.small(), true))), large = size(render(dot));
    assertTrue(large[0] < 2 * small[0] && large[1] < 2 * small[1],
        "the long prompt's graph is " + Arrays.toString(large) + " points against " + Arrays.toString(small));
  }

  @Test
  void graphHtmlOpensFromDiskShowsTheCircuitAndAClickShowsANode() throws IOException {
    Circuit c = SampleCircuits.small();
    Path html = dir.resolve("graph.html");
    Files.writeString(html, CircuitPage.html(c, null));
    assertTrue(!Files.readString(html).contains("http://") || !Files.readString(html).contains("<script src"),
        "nothing loaded from elsewhere");
    try (Browser b = new Browser()) {
      b.open(html.toUri().toString());
      List<WebElement> boxes = b.driver.findElements(By.cssSelector("#canvas g.node[id^='n']"));
      assertEquals(c.getNodesCount(), boxes.size(), "one box per node");
      assertEquals(c.getEdgesCount(), b.driver.findElements(By.cssSelector("#canvas g.edge[id^='e']")).size(), "one arrow per edge");
      assertTrue(b.driver.findElement(By.id("header")).getText().contains("demo with SAEs gpt2-small-res-jb"));
      new Actions(b.driver).click(b.driver.findElement(By.id(CircuitDot.id("1.42")))).perform();
      String details = b.driver.findElement(By.id("details")).getText();
      assertTrue(details.contains("1.42") && details.contains("Neuronpedia") && details.contains("her")
          && details.contains("0.17") && details.toLowerCase().contains("raw edges in (2)"), details);
      b.screenshot("graph-html");
      assertEquals(List.of(), b.consoleProblems());
    }
  }

  @Test
  void aPageListsEachNodesStrongestRawEdgesAndCountsThemAll() throws IOException {
    int extra = 100;
    Circuit c = SampleCircuits.longPrompt(40, extra);
    String html = CircuitPage.html(c, null);
    String json = html.substring(html.indexOf('>', html.indexOf("id=\"graph-data\"")) + 1, html.indexOf("</script>", html.indexOf("id=\"graph-data\"")));
    JsonNode data = new ObjectMapper().readTree(json);
    JsonNode node = null;
    for (JsonNode n : data.get("nodes")) if (n.get("id").asText().equals("1.42")) node = n;
    long into = c.getRawEdgesList().stream().filter(e -> e.getTarget().equals("1.42")).count();
    assertEquals(into, node.get("raw_in").asLong());
    List<Float> listed = new ArrayList<>();
    for (JsonNode e : data.get("incident")) {
      if (e.get("target").asText().equals("1.42")) listed.add((float) Math.abs(e.get("weight").asDouble()));
    }
    List<Float> strongest = c.getRawEdgesList().stream().filter(e -> e.getTarget().equals("1.42")).map(e -> Math.abs(e.getWeight()))
        .sorted(Comparator.reverseOrder()).limit(CircuitPage.EDGES_LISTED).toList();
    listed.sort(Comparator.reverseOrder());
    assertEquals(strongest, listed);
    assertTrue(data.get("incident").size() < extra, data.get("incident").size() + " raw edges on the page");
  }

  private String render(String dot) throws Exception {
    Path in = dir.resolve("graph.dot"), svg = dir.resolve("graph.svg");
    Files.writeString(in, dot);
    Process p = new ProcessBuilder("dot", "-Tsvg", in.toString(), "-o", svg.toString()).redirectErrorStream(true).start();
    String messages = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), "dot failed: " + messages);
    assertTrue(messages.isBlank(), "dot warned: " + messages);
    return Files.readString(svg);
  }

  /** An SVG's width and height in points. */
  private static double[] size(String svg) {
    Matcher m = Pattern.compile("<svg width=\"([\\d.]+)pt\" height=\"([\\d.]+)pt\"").matcher(svg);
    assertTrue(m.find(), "an SVG with a size");
    return new double[] {Double.parseDouble(m.group(1)), Double.parseDouble(m.group(2))};
  }

  private static Set<String> tokens(Pattern p, String text) {
    Set<String> found = new TreeSet<>();
    Matcher m = p.matcher(text);
    while (m.find()) found.add(m.group(1));
    return found;
  }
}
