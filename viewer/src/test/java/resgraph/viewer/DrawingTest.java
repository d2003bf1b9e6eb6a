package resgraph.viewer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.By;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.interactions.Actions;
import resgraph.v1.Circuit;

/** The DOT renders with Graphviz, and graph.html works in a real browser with no network. */
class DrawingTest {

  @TempDir Path dir;

  @Test
  void dotRendersWithGraphvizToOneBoxPerNodeAndOneArrowPerEdge() throws Exception {
    Circuit c = SampleCircuits.small();
    Path dot = dir.resolve("graph.dot"), svg = dir.resolve("graph.svg");
    Files.writeString(dot, CircuitDot.of(c, true));
    Process p = new ProcessBuilder("dot", "-Tsvg", dot.toString(), "-o", svg.toString()).redirectErrorStream(true).start();
    String messages = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), "dot failed: " + messages);
    assertTrue(messages.isBlank(), "dot warned: " + messages);
    String out = Files.readString(svg);
    for (var n : c.getNodesList()) assertTrue(out.contains("id=\"" + CircuitDot.id(n.getId()) + "\""), n.getId());
    for (var e : c.getEdgesList()) assertTrue(out.contains("id=\"" + CircuitDot.edgeId(e) + "\""), e.toString());
    // the awkward tokens arrive escaped, not as markup
    assertTrue(out.contains("&lt;John&gt;") && out.contains("&amp;"), "tokens escaped");
    Files.copy(svg, Path.of("target").resolve("graph-test.svg"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
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
          && details.contains("0.17"), details);
      b.screenshot("graph-html");
      assertEquals(List.of(), b.consoleProblems());
    }
  }
}
