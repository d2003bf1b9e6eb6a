package resgraph.graph;

import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import resgraph.platform.ResgraphException;
import resgraph.v1.ChainSite;
import resgraph.v1.Job;

/**
 * A job's chain of SAE sites as the orchestrator recorded it (METHOD.md: an edge joins a latent of
 * one site to a latent of the next). Within the graph service a site is its position in the chain;
 * this turns positions into hooks, node ids and Neuronpedia pages, and back.
 */
record SiteChain(List<ChainSite> sites, Map<String, Integer> positions) {

  static SiteChain of(Job job) {
    List<ChainSite> sites = job.getChainCount() > 0 ? job.getChainList() : residPre(job);
    return new SiteChain(sites, IntStream.range(0, sites.size()).boxed()
        .collect(Collectors.toMap(i -> sites.get(i).getHookName(), Function.identity())));
  }

  /** A job recorded before chains had names ran over resid_pre of layers layer_start..layer_end-1. */
  private static List<ChainSite> residPre(Job job) {
    return IntStream.range(job.getLayerStart(), job.getLayerEnd()).mapToObj(l -> ChainSite.newBuilder()
        .setHookName("blocks." + l + ".hook_resid_pre").setSite(Integer.toString(l)).setLayer(l)
        .setNodePrefix(Integer.toString(l)).build()).toList();
  }

  /** The position of a hook in the chain; BAD_REQUEST naming the job's chain when it is not one of its sites. */
  int position(String hook) {
    Integer p = positions.get(hook);
    if (p == null) throw ResgraphException.badRequest(hook + " is not a site of the job's chain " + positions.keySet());
    return p;
  }

  /** The sites' hooks, in chain order. */
  List<String> hooks() {
    return sites.stream().map(ChainSite::getHookName).toList();
  }

  ChainSite site(int position) {
    return sites.get(position);
  }

  String hook(int position) {
    return sites.get(position).getHookName();
  }

  int layer(int position) {
    return sites.get(position).getLayer();
  }

  /** "5.10603", or "5m.10603" in a chain that mixes kinds of sites. */
  String nodeId(int position, int latent) {
    return sites.get(position).getNodePrefix() + "." + latent;
  }

  /** The latent's page on Neuronpedia (METHOD.md step 9), e.g. https://www.neuronpedia.org/gpt2-small/5-res-jb/10603; empty when not hosted. */
  String neuronpedia(int position, int latent) {
    String id = sites.get(position).getNeuronpedia();
    return id.isEmpty() ? "" : "https://www.neuronpedia.org/" + id + "/" + latent;
  }
}
