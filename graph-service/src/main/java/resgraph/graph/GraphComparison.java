package resgraph.graph;

import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.Agreement;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.Job;

/**
 * Compare: METHOD.md "Approximations, scored against the exact graph". Two finished jobs of one
 * prompt, model, SAEs and chain, edge by edge from their raw edges (job A the reference), per pair
 * of adjacent sites and over all of them.
 *
 * <p>A measure with nothing to measure is NaN: a correlation when one side is constant (or the
 * union has fewer than two edges), sign agreement without shared edges, top-k recall and the
 * switched-on share when A has no edge, the wall-time ratio when A's wall time is not recorded.
 * Two empty circuits are the same circuit: Jaccard 1.
 */
@Singleton
public final class GraphComparison {

  private static final int DEFAULT_TOP_K = 10;

  /** An edge without its weight: the latents it joins, as in {@link RawEdge}. */
  private record Link(int site, int source, int target) {

    static final Comparator<Link> ORDER =
        Comparator.comparingInt(Link::site).thenComparingInt(Link::source).thenComparingInt(Link::target);

    static Link of(RawEdge e) {
      return new Link(e.site(), e.source(), e.target());
    }

    long sourceNode() {
      return RawEdge.node(site, source);
    }

    long targetNode() {
      return RawEdge.node(site + 1, target);
    }
  }

  /**
   * What one job brings to a comparison: its raw edges' weights, its circuit's edges, and the
   * latents on at the target in its clean run (numbered as {@link RawEdge#node}).
   */
  private record Graph(Map<Link, Float> raw, Set<Link> circuit, Set<Long> onAtTarget) {

    /** The graph's edges in one part of the chain. */
    Graph within(Predicate<Link> part) {
      Map<Link, Float> edges = new HashMap<>();
      raw.forEach((l, w) -> {
        if (part.test(l)) edges.put(l, w);
      });
      return new Graph(edges, circuit.stream().filter(part).collect(Collectors.toSet()), onAtTarget);
    }
  }

  /** The edges of either graph, with each graph's weight (0 where it has none). */
  private record Union(double[] a, double[] b) {

    static Union of(Graph a, Graph b) {
      Set<Link> links = new LinkedHashSet<>(a.raw().keySet());
      links.addAll(b.raw().keySet());
      double[] x = new double[links.size()], y = new double[links.size()];
      int i = 0;
      for (Link l : links) {
        x[i] = a.raw().getOrDefault(l, 0f);
        y[i++] = b.raw().getOrDefault(l, 0f);
      }
      return new Union(x, y);
    }
  }

  private final JobNodes jobs;
  private final StoredCircuits circuits;

  GraphComparison(JobNodes jobs, StoredCircuits circuits) {
    this.jobs = jobs;
    this.circuits = circuits;
  }

  /**
   * NOT_FOUND for a job never registered, NOT_READY for one not finalized, BAD_REQUEST for jobs
   * not of one prompt, model, SAEs and chain, naming what differs.
   */
  public Comparison compare(CompareRequest req) {
    int k = req.getTopK() == 0 ? DEFAULT_TOP_K : req.getTopK();
    if (k < 0) throw ResgraphException.badRequest("top_k must be positive (or 0 for " + DEFAULT_TOP_K + "), not " + k);
    Job a = finished(req.getJobA()), b = finished(req.getJobB());
    requireComparable(a, b);
    SiteChain chain = SiteChain.of(a);
    Graph ga = graph(a.getId(), chain), gb = graph(b.getId(), chain);

    Comparison.Builder out = Comparison.newBuilder().setJobA(a).setJobB(b);
    List<ComparisonScatter.Panel> panels = new ArrayList<>();
    for (int s = 0; s + 1 < chain.sites().size(); s++) {
      int site = s;
      Graph pairA = ga.within(l -> l.site() == site), pairB = gb.within(l -> l.site() == site);
      Union union = Union.of(pairA, pairB);
      Agreement agreement = agreement(pairA, pairB, union, k)
          .setSourceHook(chain.site(s).getSite()).setTargetHook(chain.site(s + 1).getSite()).build();
      out.addPairs(agreement);
      panels.add(new ComparisonScatter.Panel(agreement.getSourceHook() + " \u2192 " + agreement.getTargetHook(),
          agreement.getPearson(), union.a(), union.b()));
    }
    out.setOverall(agreement(ga, gb, Union.of(ga, gb), k));
    double wallA = a.getTimings().getWall();
    out.setWallTimeRatio(wallA > 0 ? b.getTimings().getWall() / wallA : Double.NaN);
    out.setScatterSvg(ComparisonScatter.svg(panels, "A: " + label(a), "B: " + label(b)));
    return out.build();
  }

  /** METHOD.md's comparison of two graphs (or of their edges in one part of the chain); {@code union} is theirs. */
  private static Agreement.Builder agreement(Graph a, Graph b, Union union, int k) {
    Map<Link, Float> rawA = a.raw(), rawB = b.raw();
    long shared = 0, sameSign = 0;
    for (Map.Entry<Link, Float> e : rawA.entrySet()) {
      Float other = rawB.get(e.getKey());
      if (other == null) continue;
      shared++;
      if (Math.signum(e.getValue()) == Math.signum(other)) sameSign++;
    }
    Set<Link> topA = strongest(rawA, k), topB = strongest(rawB, k);
    double total = 0, switchedOn = 0;
    for (Map.Entry<Link, Float> e : rawA.entrySet()) {
      total += Math.abs(e.getValue());
      if (!a.onAtTarget().contains(e.getKey().targetNode())) switchedOn += Math.abs(e.getValue());
    }
    return Agreement.newBuilder()
        .setEdgesA(rawA.size())
        .setEdgesB(rawB.size())
        .setEdgesUnion(union.a().length)
        .setPearson(pearson(union.a(), union.b()))
        .setSpearman(pearson(ranks(union.a()), ranks(union.b())))
        .setSharedEdges(shared)
        .setSignAgreement(shared == 0 ? Double.NaN : (double) sameSign / shared)
        .setTopKRecall(topA.isEmpty() ? Double.NaN : (double) topA.stream().filter(topB::contains).count() / topA.size())
        .setCircuitEdgeJaccard(jaccard(a.circuit(), b.circuit()))
        .setCircuitNodeJaccard(jaccard(nodes(a.circuit()), nodes(b.circuit())))
        .setSwitchedOnShare(total == 0 ? Double.NaN : switchedOn / total);
  }

  /** Pearson's correlation; NaN when either side is constant. */
  private static double pearson(double[] x, double[] y) {
    int n = x.length;
    if (n < 2) return Double.NaN;
    double meanX = 0, meanY = 0;
    for (int i = 0; i < n; i++) {
      meanX += x[i];
      meanY += y[i];
    }
    meanX /= n;
    meanY /= n;
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i < n; i++) {
      double dx = x[i] - meanX, dy = y[i] - meanY;
      xy += dx * dy;
      xx += dx * dx;
      yy += dy * dy;
    }
    return xx == 0 || yy == 0 ? Double.NaN : xy / Math.sqrt(xx * yy);
  }

  /** Ranks from 1, smallest first; equal values share the average of the ranks they span (Spearman's convention). */
  private static double[] ranks(double[] v) {
    int[] order = IntStream.range(0, v.length).boxed().sorted(Comparator.comparingDouble(i -> v[i])).mapToInt(i -> i).toArray();
    double[] ranks = new double[v.length];
    for (int from = 0, to; from < order.length; from = to) {
      to = from + 1;
      while (to < order.length && v[order[to]] == v[order[from]]) to++;
      double rank = (from + 1 + to) / 2.0; // the mean of ranks from + 1 .. to
      for (int i = from; i < to; i++) ranks[order[i]] = rank;
    }
    return ranks;
  }

  /** The k edges of largest |e|; equal |e| in link order, so the choice is the same every time. */
  private static Set<Link> strongest(Map<Link, Float> raw, int k) {
    return raw.entrySet().stream()
        .sorted(Comparator.comparingDouble((Map.Entry<Link, Float> e) -> -Math.abs(e.getValue()))
            .thenComparing(Map.Entry::getKey, Link.ORDER))
        .limit(k).map(Map.Entry::getKey).collect(Collectors.toSet());
  }

  private static Set<Long> nodes(Set<Link> edges) {
    Set<Long> nodes = new HashSet<>();
    for (Link l : edges) {
      nodes.add(l.sourceNode());
      nodes.add(l.targetNode());
    }
    return nodes;
  }

  private static <T> double jaccard(Set<T> a, Set<T> b) {
    if (a.isEmpty() && b.isEmpty()) return 1;
    long both = a.stream().filter(b::contains).count();
    return (double) both / (a.size() + b.size() - both);
  }

  private Job finished(String jobId) {
    if (!jobs.stored(jobId).finalized()) {
      throw new ResgraphException(ResgraphException.Kind.NOT_READY, "job " + jobId + " is not finished: only finished graphs compare");
    }
    return jobs.recorded(jobId);
  }

  private static void requireComparable(Job a, Job b) {
    List<String> differ = new ArrayList<>();
    if (!a.getTokensList().equals(b.getTokensList())) differ.add("prompt tokens");
    if (a.getTarget() != b.getTarget()) differ.add("target (" + a.getTarget() + " and " + b.getTarget() + ")");
    String modelA = a.getSpec().getRef().getModel(), modelB = b.getSpec().getRef().getModel();
    if (!modelA.equals(modelB)) differ.add("model (" + modelA + " and " + modelB + ")");
    String saesA = a.getSpec().getRef().getSaes(), saesB = b.getSpec().getRef().getSaes();
    if (!saesA.equals(saesB)) differ.add("SAEs (" + saesA + " and " + saesB + ")");
    List<String> chainA = SiteChain.of(a).hooks(), chainB = SiteChain.of(b).hooks();
    if (!chainA.equals(chainB)) differ.add("chain (" + chainA + " and " + chainB + ")");
    if (!differ.isEmpty()) {
      throw ResgraphException.badRequest("jobs " + a.getId() + " and " + b.getId() + " differ in their " + String.join(", ", differ)
          + ": only graphs of one prompt, model, SAEs and chain compare edge by edge");
    }
  }

  private Graph graph(String jobId, SiteChain chain) {
    Map<Link, Float> raw = new HashMap<>();
    for (RawEdge e : circuits.rawEdges(jobId, chain)) raw.put(Link.of(e), e.weight());
    Set<Link> circuit = circuits.circuitEdges(jobId, chain).stream().map(Link::of).collect(Collectors.toSet());
    Set<Long> on = jobs.candidates(jobId).stream().filter(c -> c.activation() != 0)
        .map(c -> RawEdge.node(chain.position(c.hook()), c.latent())).collect(Collectors.toSet());
    return new Graph(raw, circuit, on);
  }

  /** "j-20261126-153012-4f2a (attribution)". */
  private static String label(Job job) {
    return job.getId() + " (" + JobRules.methodCaption(job.getSpec()) + ")";
  }
}
