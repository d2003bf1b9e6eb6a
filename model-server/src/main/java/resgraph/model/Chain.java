package resgraph.model;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import resgraph.platform.ResgraphException;

/**
 * The sites of a job, in forward-pass order (METHOD.md "SAE architectures, normalisation and hook
 * sites"): an edge joins latents of two consecutive sites, and an ablation runs exactly the
 * computation between them.
 */
public record Chain(List<Site> sites) {

  public Chain {
    sites = List.copyOf(new TreeSet<>(sites));
    if (sites.size() < 2) {
      throw ResgraphException.badRequest("a chain needs at least two sites to have an edge between them, not " + sites);
    }
    for (int i = 1; i < sites.size(); i++) {
      if (sites.get(i).stream() == sites.get(i - 1).stream()) {
        throw ResgraphException.badRequest(sites.get(i - 1) + " and " + sites.get(i) + " read the same residual stream; "
            + "a chain holds one of them");
      }
    }
  }

  /**
   * The chain a request names among the SAEs that exist: {@code names} (sites as "3", "3m", "3p"
   * or hook names) when given; else the layer range a:b of the one site kind that has an SAE at
   * every layer a..b-1; else every SAE.
   */
  public static Chain resolve(Collection<Site> available, int nLayer, Integer layerStart, Integer layerEnd, List<String> names) {
    Set<Site> have = new TreeSet<>(available);
    if (!names.isEmpty()) {
      List<Site> chosen = new ArrayList<>();
      for (String name : names) {
        Site s;
        try {
          s = Site.parse(name);
        } catch (IllegalArgumentException e) {
          throw ResgraphException.badRequest(e.getMessage());
        }
        if (!have.contains(s)) throw ResgraphException.badRequest("site " + name + " has no SAE; SAEs are at " + describe(have));
        chosen.add(s);
      }
      return new Chain(chosen);
    }
    if (layerStart == null && layerEnd == null) return new Chain(List.copyOf(have));
    return byLayers(have, nLayer, layerStart, layerEnd);
  }

  private static Chain byLayers(Set<Site> have, int nLayer, Integer start, Integer end) {
    int a = start != null ? start : 0, b = end != null ? end : nLayer;
    if (a < 0) throw ResgraphException.badRequest("layer_start " + a + " is negative");
    if (b < 0) throw ResgraphException.badRequest("layer_end " + b + " is negative");
    if (a >= b) throw ResgraphException.badRequest("layer range " + a + ":" + b + ": the start (" + a + ") must be below the end (" + b + ")");
    if (b - a < 2) {
      throw ResgraphException.badRequest("layer range " + a + ":" + b + " holds one layer; it needs at least two (a:b ablates layers "
          + "a..b-2 and measures their effects at a+1..b-1)");
    }
    if (b > nLayer) {
      throw ResgraphException.badRequest("layer range " + a + ":" + b + " goes beyond the model, which has " + nLayer
          + " layers: layer_end can be at most " + nLayer);
    }
    for (int l = a; l < b; l++) {
      int layer = l;
      if (have.stream().noneMatch(s -> s.layer() == layer)) {
        throw ResgraphException.badRequest("layer range " + a + ":" + b + " needs an SAE at each of layers " + a + ".." + (b - 1)
            + ", but layer " + l + " has none (SAEs are at " + describe(have) + ")");
      }
    }
    List<Site.Kind> kinds = new ArrayList<>();
    for (Site.Kind k : Site.Kind.values()) {
      boolean everyLayer = true;
      for (int l = a; l < b; l++) everyLayer &= have.contains(new Site(l, k));
      if (everyLayer) kinds.add(k);
    }
    if (kinds.size() != 1) {
      throw ResgraphException.badRequest("layer range " + a + ":" + b + (kinds.isEmpty()
          ? " has no one kind of site with an SAE at every layer " + a + ".." + (b - 1)
          : " has SAEs of several kinds at each layer") + "; SAEs are at " + describe(have) + " (name the chain with sites instead)");
    }
    List<Site> chain = new ArrayList<>();
    for (int l = a; l < b; l++) chain.add(new Site(l, kinds.get(0)));
    return new Chain(chain);
  }

  /** "3, 4, 5m": sites as their short names. */
  public static String describe(Collection<Site> sites) {
    return sites.stream().sorted().map(Site::shortName).collect(Collectors.joining(", "));
  }

  /** The site after {@code s}, where its latents' effects are measured. */
  public Site next(Site s) {
    int i = sites.indexOf(s);
    if (i < 0 || i == sites.size() - 1) {
      throw ResgraphException.badRequest(s.shortName() + (i < 0 ? " is not in the chain " : " is the last site of the chain ")
          + describe(sites) + ": its latents have no site after it to be measured at");
    }
    return sites.get(i + 1);
  }

  /** BAD_REQUEST unless effects of {@code up}'s latents can be measured at {@code down}: a later site, on another stream. */
  static void checkHop(Site up, Site down) {
    if (down.compareTo(up) <= 0 || down.stream() == up.stream()) {
      throw ResgraphException.badRequest("effects are measured at a site after the ablated one, and " + down.shortName()
          + " is not after " + up.shortName());
    }
  }

  /** Whether node ids carry the site kind ("5m.10603"), because the chain mixes kinds. */
  public boolean mixesKinds() {
    return Site.mixesKinds(sites);
  }

  public String nodePrefix(Site s) {
    return s.nodePrefix(mixesKinds());
  }
}
