package resgraph.graph;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import resgraph.platform.job.JobRules;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.Node;
import resgraph.v1.Pruning;
import resgraph.v1.SaeSetting;
import resgraph.v1.TokenValue;

/**
 * graph.json, schema {@value #SCHEMA}: the job, how its edges were found ({@code method}, and
 * {@code ig_steps} for integrated gradients), its pruned circuit ({@code edges}) and every raw edge
 * ({@code raw_edges}). An independent program checks this schema; change it only with a new
 * schema name.
 *
 * <p>The raw edges are written as they are read, never held as a tree: a full-context job has
 * millions, whose tree would not fit in the service's heap.
 */
final class GraphJsonExport {

  static final String SCHEMA = "resgraph.graph/v2";
  private static final ObjectMapper JSON = new ObjectMapper();

  private GraphJsonExport() {}

  /** The file, from the circuit (its raw edges not needed) and every raw edge, in their order. */
  static ByteString render(Circuit circuit, List<RawEdge> rawEdges, SiteChain chain) {
    Job job = circuit.getJob();
    ObjectNode root = JSON.createObjectNode();
    root.put("schema", SCHEMA);
    ObjectNode about = root.putObject("job");
    about.put("id", job.getId());
    about.put("release", job.getRelease());
    ArrayNode sites = about.putArray("chain");
    for (ChainSite site : job.getChainList()) {
      sites.addObject().put("hook", site.getHookName()).put("site", site.getSite()).put("layer", site.getLayer())
          .put("d_sae", site.getDSae()).put("node_prefix", site.getNodePrefix()).put("neuronpedia", site.getNeuronpedia());
    }
    ArrayNode settings = about.putArray("saes_settings");
    for (SaeSetting s : job.getSaesSettingsList()) {
      ObjectNode o = settings.addObject().put("name", s.getName()).put("value", s.getValue()).put("source", s.getSource());
      s.getHooksList().forEach(o.putArray("hooks")::add);
    }
    root.put("model", job.getSpec().getRef().getModel());
    root.put("saes", job.getSpec().getRef().getSaes());
    root.put("method", JobRules.methodName(job.getSpec().getMethod()));
    if (JobRules.hasSteps(job.getSpec().getMethod())) root.put("ig_steps", job.getSpec().getIgSteps());
    root.put("prompt", job.getSpec().getPrompt());
    ArrayNode tokens = root.putArray("tokens");
    job.getTokensList().forEach(tokens::add);
    ArrayNode strings = root.putArray("token_strings");
    job.getTokenStringsList().forEach(strings::add);
    root.put("target", job.getTarget());
    root.putArray("layers").add(job.getLayerStart()).add(job.getLayerEnd());
    Pruning pruning = JobRules.pruningOrDefault(job.getSpec().getPruning());
    if (pruning.hasThreshold()) root.putObject("pruning").put("threshold", pruning.getThreshold());
    else root.putObject("pruning").put("top_k", pruning.getTopK());
    ArrayNode nodes = root.putArray("nodes");
    for (Node n : circuit.getNodesList()) {
      ObjectNode node = nodes.addObject();
      node.put("id", n.getId());
      node.put("hook", n.getHookName());
      node.put("layer", n.getLayer());
      node.put("latent", n.getLatent());
      ArrayNode activations = node.putArray("activations");
      n.getActivationsList().forEach(activations::add);
      tokenValues(node.putArray("promotes"), n.getPromotesList());
      tokenValues(node.putArray("suppresses"), n.getSuppressesList());
      if (n.getNeuronpedia().isEmpty()) node.putNull("neuronpedia");
      else node.put("neuronpedia", n.getNeuronpedia());
    }
    edges(root.putArray("edges"), circuit.getEdgesList());
    ByteString.Output out = ByteString.newOutput(); // chunks, never one array copied as it grows
    try (JsonGenerator g = JSON.createGenerator(out)) {
      g.writeStartObject();
      for (Map.Entry<String, JsonNode> field : root.properties()) {
        g.writeFieldName(field.getKey());
        JSON.writeTree(g, field.getValue());
      }
      g.writeArrayFieldStart("raw_edges");
      for (RawEdge e : rawEdges) {
        g.writeStartObject();
        g.writeStringField("source", chain.nodeId(e.site(), e.source()));
        g.writeStringField("target", chain.nodeId(e.site() + 1, e.target()));
        g.writeNumberField("weight", e.weight());
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write graph.json", e); // only memory is written to
    }
    return out.toByteString();
  }

  private static void tokenValues(ArrayNode out, List<TokenValue> tokens) {
    for (TokenValue t : tokens) out.addObject().put("token", t.getToken()).put("id", t.getId()).put("value", t.getValue());
  }

  private static void edges(ArrayNode out, List<Edge> edges) {
    for (Edge e : edges) out.addObject().put("source", e.getSource()).put("target", e.getTarget()).put("weight", e.getWeight());
  }
}
