package resgraph.viewer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.platform.job.JobRules;
import resgraph.v1.Job;
import resgraph.v1.Node;
import resgraph.v1.SaeSetting;
import resgraph.v1.TokenValue;

/**
 * The circuit viewer as one self-contained HTML file: the data, the circuit's DOT, d3 and
 * Graphviz-in-JavaScript are all inside, so it opens from disk with no network. The graph service
 * serves the same page for every stored job.
 */
public final class CircuitPage {

  /** Where a served viewer's other pages are, and where to compare a job with others of its prompt; null for a file on disk. */
  public record Links(String jobs, String cypher, String compare) {}

  private static final ObjectMapper JSON = new ObjectMapper();
  /** The raw edges a node's panel lists of one direction: the strongest by |effect|. */
  static final int EDGES_LISTED = 15;

  private CircuitPage() {}

  /**
   * The page for a circuit; {@code circuit} should carry the raw edges into and out of its nodes:
   * each node's panel lists the strongest of them each way and counts them all.
   */
  public static String html(Circuit circuit, Links links) {
    Job job = circuit.getJob();
    return Page.fill("circuit.html", List.of(
        "head", Page.head("resgraph · " + job.getId() + " · " + job.getSpec().getPrompt()),
        "data", Page.jsonSafe(data(circuit, links)),
        "d3", Page.webjar("d3/7.9.0/dist/d3.min.js"),
        "viz", Page.webjar("viz.js/2.1.2/viz.js"),
        "viz-render", Page.webjar("viz.js/2.1.2/full.render.js"),
        "app", Page.resource("circuit.js")));
  }

  private static String data(Circuit c, Links links) {
    Job job = c.getJob();
    ObjectNode d = JSON.createObjectNode();
    ObjectNode j = d.putObject("job");
    j.put("id", job.getId());
    j.put("model", job.getSpec().getRef().getModel());
    j.put("saes", job.getSpec().getRef().getSaes());
    j.put("prompt", job.getSpec().getPrompt());
    j.put("target", job.getTarget());
    j.put("pruning", PruningCaption.of(job));
    j.put("method", JobRules.methodCaption(job.getSpec()));
    j.put("release", job.getRelease());
    ArrayNode settings = j.putArray("saes_settings");
    for (SaeSetting s : job.getSaesSettingsList()) {
      ObjectNode o = settings.addObject().put("name", s.getName()).put("value", s.getValue()).put("source", s.getSource());
      s.getHooksList().forEach(o.putArray("hooks")::add);
    }
    job.getTokenStringsList().forEach(j.putArray("token_strings")::add);
    tokens(d.putArray("predictions"), c.getPredictionsList());
    d.put("effect_shown", c.getEffectShown());
    d.put("raw_edge_count", c.getRawEdgeCount());
    Map<String, List<Edge>> in = new HashMap<>(), out = new HashMap<>();
    for (Node n : c.getNodesList()) {
      in.put(n.getId(), new ArrayList<>());
      out.put(n.getId(), new ArrayList<>());
    }
    for (Edge e : c.getRawEdgesList()) {
      if (in.containsKey(e.getTarget())) in.get(e.getTarget()).add(e);
      if (out.containsKey(e.getSource())) out.get(e.getSource()).add(e);
    }
    // a node's panel lists its strongest raw edges each way and counts the rest: the page carries
    // only those, so it stays small however many raw edges touch the circuit
    Set<Edge> listed = new LinkedHashSet<>();
    ArrayNode nodes = d.putArray("nodes");
    for (Node n : c.getNodesList()) {
      ObjectNode o = nodes.addObject();
      o.put("id", n.getId());
      o.put("dom", CircuitDot.id(n.getId()));
      o.put("layer", n.getLayer());
      o.put("hook", n.getHookName());
      o.put("latent", n.getLatent());
      n.getActivationsList().forEach(o.putArray("activations")::add);
      tokens(o.putArray("promotes"), n.getPromotesList());
      tokens(o.putArray("suppresses"), n.getSuppressesList());
      o.put("neuronpedia", n.getNeuronpedia());
      o.put("raw_in", in.get(n.getId()).size());
      o.put("raw_out", out.get(n.getId()).size());
      listed.addAll(strongest(in.get(n.getId())));
      listed.addAll(strongest(out.get(n.getId())));
    }
    ArrayNode edges = d.putArray("edges");
    for (Edge e : c.getEdgesList()) edge(edges, e).put("dom", CircuitDot.edgeId(e));
    d.put("edges_listed", EDGES_LISTED);
    ArrayNode incident = d.putArray("incident");
    for (Edge e : listed) edge(incident, e);
    d.put("dot", CircuitDot.of(c, false)); // the page draws its own header
    if (links == null) d.putNull("links");
    else d.putObject("links").put("jobs", links.jobs()).put("cypher", links.cypher()).put("compare", links.compare());
    return d.toString();
  }

  private static List<Edge> strongest(List<Edge> edges) {
    return edges.stream().sorted(Comparator.comparingDouble((Edge e) -> -Math.abs(e.getWeight()))).limit(EDGES_LISTED).toList();
  }

  private static ObjectNode edge(ArrayNode into, Edge e) {
    return into.addObject().put("source", e.getSource()).put("target", e.getTarget()).put("weight", e.getWeight());
  }

  private static void tokens(ArrayNode into, List<TokenValue> values) {
    for (TokenValue t : values) into.addObject().put("token", t.getToken()).put("id", t.getId()).put("value", t.getValue());
  }
}
