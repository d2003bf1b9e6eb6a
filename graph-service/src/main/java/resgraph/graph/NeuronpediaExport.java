package resgraph.graph;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import resgraph.platform.job.JobRules;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.Node;
import resgraph.v1.Pruning;
import resgraph.v1.TokenValue;

/**
 * neuronpedia.json: the circuit in the attribution-graph JSON that circuit-tracer writes and
 * Neuronpedia reads (Neuronpedia's graph-schema.json: {@code metadata}, {@code qParams},
 * {@code nodes}, {@code links}), so the circuit can be uploaded to Neuronpedia or opened in
 * circuit-tracer's local viewer.
 *
 * <p>How resgraph's circuit maps onto it:
 * <ul>
 *   <li>Each circuit node is a feature node with {@code feature_type} "cross layer transcoder":
 *       the one type Neuronpedia treats as a dictionary feature (it looks up dashboards, counts
 *       and steers only those; "embedding", "logit" and "mlp reconstruction error" mean other
 *       things). An SAE latent on the residual stream is a dictionary feature read at one layer,
 *       which is what that type's nodes are to the viewer.
 *   <li>Ids follow circuit-tracer's feature nodes: {@code node_id} "{layer}_{latent}_{ctx_idx}",
 *       {@code jsNodeId} "{layer}_{latent}-0", {@code feature} the Cantor pairing of (layer,
 *       latent), which {@code metadata.schema_version} 1 tells Neuronpedia to decode.
 *   <li>{@code ctx_idx} is the target position: every effect is measured there. {@code activation}
 *       is the latent's activation at the target.
 *   <li>A link's {@code weight} is the attribution-graph sign, -e: positive when the source excites
 *       the target. (resgraph's e is the change when the source is ablated, so the opposite.)
 *   <li>{@code influence} is null and {@code node_threshold} absent: they drive circuit-tracer's
 *       influence pruning, which has no counterpart here (the circuit is already pruned by METHOD.md
 *       step 7).
 * </ul>
 */
final class NeuronpediaExport {

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String FEATURE_TYPE = "cross layer transcoder";
  private static final Pattern HOSTED_LAYER = Pattern.compile("[^/]+/(\\d+)-");

  private NeuronpediaExport() {}

  static byte[] render(Circuit circuit) {
    Job job = circuit.getJob();
    // Neuronpedia names an SAE "{model id}/{layer}-{source set}", e.g. gpt2-small/5-res-jb
    List<String> hosted = job.getChainList().stream().map(ChainSite::getNeuronpedia).filter(id -> !id.isEmpty()).toList();
    Set<String> sourceSets = hosted.stream().map(id -> id.substring(id.indexOf('/') + 1).replaceFirst("^\\d+-", ""))
        .collect(Collectors.toSet());
    ObjectNode root = JSON.createObjectNode();
    ObjectNode metadata = root.putObject("metadata");
    metadata.put("slug", slug(job.getId()));
    metadata.put("scan", hosted.isEmpty() ? job.getSpec().getRef().getModel() : hosted.get(0).substring(0, hosted.get(0).indexOf('/')));
    metadata.putArray("transcoder_list");
    ArrayNode promptTokens = metadata.putArray("prompt_tokens");
    job.getTokenStringsList().forEach(promptTokens::add);
    metadata.put("prompt", job.getSpec().getPrompt());
    metadata.put("schema_version", 1);
    if (sourceSets.size() == 1) metadata.putObject("feature_details").put("neuronpedia_source_set", sourceSets.iterator().next());
    ObjectNode info = metadata.putObject("info");
    info.put("description", "Graph (" + JobRules.methodCaption(job.getSpec()) + ") of " + job.getSpec().getRef().getModel() + " with SAEs "
        + job.getSpec().getRef().getSaes() + ", sites " + job.getChainList().stream().map(ChainSite::getSite)
        .collect(Collectors.joining(",")) + ", measured at position "
        + job.getTarget() + " (resgraph job " + job.getId() + ")");
    info.putObject("generator").put("name", "resgraph");
    if (job.hasCreated()) {
      info.put("create_time_ms", job.getCreated().getSeconds() * 1000 + job.getCreated().getNanos() / 1_000_000);
    }
    // the schema leaves generation_settings' keys to the generator
    ObjectNode generation = metadata.putObject("generation_settings").put("method", JobRules.methodName(job.getSpec().getMethod()));
    if (JobRules.hasSteps(job.getSpec().getMethod())) generation.put("ig_steps", job.getSpec().getIgSteps());
    Pruning pruning = JobRules.pruningOrDefault(job.getSpec().getPruning());
    ObjectNode settings = metadata.putObject("pruning_settings");
    if (pruning.hasThreshold()) settings.put("threshold", pruning.getThreshold());
    else settings.put("top_k", pruning.getTopK());

    // the viewer's saved state: nothing pinned or grouped yet
    ObjectNode q = root.putObject("qParams");
    q.putArray("pinnedIds");
    q.putArray("supernodes");
    q.put("linkType", "both");
    q.put("clickedId", "");
    q.put("sg_pos", "");

    int target = job.getTarget();
    List<String> hooks = job.getChainList().stream().map(ChainSite::getHookName).toList();
    ArrayNode nodes = root.putArray("nodes");
    for (Node n : circuit.getNodesList()) {
      int position = hooks.indexOf(n.getHookName());
      ChainSite site = job.getChain(position);
      ObjectNode node = nodes.addObject();
      node.put("node_id", nodeId(n.getId(), target));
      node.put("feature", cantor(featureLayer(site, position), n.getLatent()));
      node.put("layer", site.getNodePrefix());
      node.put("ctx_idx", target);
      node.put("feature_type", FEATURE_TYPE);
      node.put("token_prob", 0.0);
      node.put("is_target_logit", false);
      node.put("run_idx", 0);
      node.put("reverse_ctx_idx", 0);
      node.put("jsNodeId", site.getNodePrefix() + "_" + n.getLatent() + "-0");
      node.put("clerp", clerp(n));
      node.putNull("influence");
      node.put("activation", target < n.getActivationsCount() ? n.getActivations(target) : 0f);
    }
    ArrayNode links = root.putArray("links");
    for (Edge e : circuit.getEdgesList()) {
      links.addObject().put("source", nodeId(e.getSource(), target)).put("target", nodeId(e.getTarget(), target))
          .put("weight", -e.getWeight());
    }
    try {
      return JSON.writeValueAsBytes(root);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot write neuronpedia.json", e); // a tree of plain values always serializes
    }
  }

  /** "5.10603" at position 7 -> "5_10603_7". */
  private static String nodeId(String id, int ctx) {
    return id.replace('.', '_') + "_" + ctx;
  }

  /**
   * The layer Neuronpedia knows a node's SAE by: the number its Neuronpedia id starts with (12 for
   * gpt2-small/12-res-jb, the last block's resid_post); else the site's layer in a chain of one kind
   * of site, and its position in a chain that mixes kinds.
   */
  private static long featureLayer(ChainSite site, int position) {
    Matcher hosted = HOSTED_LAYER.matcher(site.getNeuronpedia());
    if (hosted.lookingAt()) return Long.parseLong(hosted.group(1));
    return site.getNodePrefix().equals(Integer.toString(site.getLayer())) ? site.getLayer() : position;
  }

  /** circuit-tracer's (and Neuronpedia's schema-1) encoding of a (layer, feature) pair as one number. */
  static long cantor(long layer, long latent) {
    return (layer + latent) * (layer + latent + 1) / 2 + latent;
  }

  /** Neuronpedia slugs are lowercase letters, digits and dashes. */
  private static String slug(String jobId) {
    return jobId.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
  }

  /** The node's label in the viewer: its id and its strongest logit effects. */
  private static String clerp(Node n) {
    String label = n.getId();
    if (n.getPromotesCount() > 0) label += " promotes " + tokens(n.getPromotesList());
    if (n.getSuppressesCount() > 0) label += "; suppresses " + tokens(n.getSuppressesList());
    return label;
  }

  private static String tokens(List<TokenValue> tokens) {
    return tokens.stream().limit(3).map(t -> "\"" + t.getToken() + "\"").collect(Collectors.joining(" "));
  }
}
