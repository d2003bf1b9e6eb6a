package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import resgraph.model.Site;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.LatentEffects;
import resgraph.v1.Strategy;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;

/** {@code resgraph ablate}: METHOD.md steps 3-5 for one site (or their approximation), printed as one JSON object. */
@Command(name = "ablate", mixinStandardHelpOptions = true,
    description = "Knock out latents of one site and print, as JSON, how every latent of the next site moves at the target.")
final class AblateCommand implements Callable<Integer> {

  @Mixin ModelOptions model;

  @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt.")
  String prompt;

  static final class Where {
    @Option(names = "--layer", required = true, paramLabel = "L",
        description = "The layer whose latents are ablated, when the SAEs sit at one kind of site.")
    Integer layer;

    @Option(names = "--site", required = true, paramLabel = "S",
        description = "The site whose latents are ablated: 3 (resid_pre of block 3), 3m (resid_mid), 3p (resid_post).")
    String site;
  }

  @ArgGroup(exclusive = true, multiplicity = "1")
  Where where;

  @Option(names = "--sites", split = ",", paramLabel = "S,S,...",
      description = "The chain the site belongs to; effects are measured at the site after it (default: the next SAE).")
  List<String> sites;

  @Option(names = "--target", paramLabel = "T", description = "Target position (default: the last token).")
  Integer target;

  @Option(names = "--latents", split = ",", paramLabel = "i,j,...",
      description = "Latents to ablate (default: every latent active at an ablatable position up to the target).")
  List<Integer> latents;

  @Option(names = "--strategy", defaultValue = "exact", paramLabel = "exact|naive",
      description = "exact: block l only, batched; naive: the whole model per latent, as the seed did (default: ${DEFAULT-VALUE}).")
  String strategy;

  @Mixin MethodOptions method;

  @Option(names = "--server", paramLabel = "HOST:PORT", description = "A running model server (default: start one in this process).")
  String server;

  @Mixin ClusterDir dir;

  @Override
  public Integer call() throws Exception {
    Strategy s = switch (strategy) {
      case "exact" -> Strategy.STRATEGY_EXACT;
      case "naive" -> Strategy.STRATEGY_NAIVE;
      default -> throw new IllegalArgumentException("--strategy must be exact or naive, not " + strategy);
    };
    if (latents != null && latents.stream().anyMatch(i -> i < 0)) throw new IllegalArgumentException("--latents must be non-negative");
    if (server == null) Downloads.prefetch(model);
    try (ModelClient client = server == null ? ModelClient.inProcess(model.properties()) : ModelClient.connect(server, dir.credentials())) {
      TokenizeResponse tokens = client.stub.tokenize(TokenizeRequest.newBuilder().setRef(model.ref()).setText(prompt).build());
      AblateRequest.Builder req = AblateRequest.newBuilder().setRef(model.ref()).addAllTokens(tokens.getTokensList())
          .setStrategy(s).setMethod(method.method()).setIgSteps(method.igSteps());
      if (where.site != null) req.setHookName(where.site);
      else req.setLayer(where.layer);
      if (sites != null) req.setMeasureHookName(measuredAt().hookName());
      if (target != null) req.setTarget(target);
      if (latents != null) req.addAllLatents(latents);
      AblateResponse r = client.stub.ablate(req.build());
      System.out.println(json(tokens, r, method.name));
    }
    return 0;
  }

  /** The site after --site in the chain --sites names. */
  private Site measuredAt() {
    if (where.site == null) throw new IllegalArgumentException("--sites needs --site, not --layer, to say which of them is ablated");
    Site ablated = Site.parse(where.site);
    List<Site> chain = sites.stream().map(Site::parse).sorted().toList();
    int i = chain.indexOf(ablated);
    if (i < 0 || i == chain.size() - 1) {
      throw new IllegalArgumentException("--site " + where.site + (i < 0 ? " is not in --sites " : " is the last of --sites ")
          + String.join(",", sites) + ": there is no site after it to measure");
    }
    return chain.get(i + 1);
  }

  private static String json(TokenizeResponse tokens, AblateResponse r, String method) throws Exception {
    ObjectMapper json = new ObjectMapper();
    ObjectNode out = json.createObjectNode();
    ArrayNode ids = out.putArray("tokens");
    tokens.getTokensList().forEach(ids::add);
    out.put("target", r.getTarget());
    out.put("layer", r.getLayer());
    out.put("site", r.getHookName());
    out.put("measured_at", r.getMeasureHookName());
    out.put("method", method);
    ArrayNode effects = out.putArray("effects");
    for (LatentEffects e : r.getEffectsList()) {
      ObjectNode o = effects.addObject();
      o.put("latent", e.getLatent());
      ArrayNode down = o.putArray("downstream");
      for (int i = 0; i < e.getDownstreamCount(); i++) down.addArray().add(e.getDownstream(i)).add(e.getDelta(i));
    }
    return json.writeValueAsString(out);
  }
}
