package resgraph.graph;

import jakarta.inject.Singleton;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import org.neo4j.driver.Value;
import resgraph.platform.job.JobRules;
import resgraph.v1.Circuit;
import resgraph.v1.CircuitEdge;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.Latent;
import resgraph.v1.Node;
import resgraph.v1.Pruning;
import resgraph.v1.TokenValue;

/**
 * A job's circuit as the graph holds it: GetCircuit (the circuit Annotate marked, and the raw
 * edges), and Prune (METHOD.md step 7 on the stored candidates, computed, not written).
 */
@Singleton
public final class StoredCircuits {

  /** A circuit as Prune finds it: its edges in circuit order, the latents they join, and how many raw edges the job has. */
  public record Pruned(List<CircuitEdge> edges, List<Latent> nodes, long rawEdges) {}

  private final JobNodes jobs;
  private final Driver driver;
  private final EdgeFiles files;

  StoredCircuits(JobNodes jobs, Driver driver, EdgeFiles files) {
    this.jobs = jobs;
    this.driver = driver;
    this.files = files;
  }

  /** Which of a job's raw edges a read carries. */
  private enum RawEdges { NONE, INTO_OR_OUT_OF_CIRCUIT, ALL }

  /**
   * The job as recorded, its predictions, its circuit (nodes and edges; empty until it is
   * annotated) and, when asked, every raw edge stored so far. NOT_FOUND for a job never registered.
   */
  public Circuit read(String jobId, boolean includeRawEdges) {
    return read(jobId, includeRawEdges ? RawEdges.ALL : RawEdges.NONE);
  }

  /**
   * The job's circuit with only the raw edges into or out of its nodes, which its page lists: a
   * full-context job has millions of raw edges, more than the service's heap holds as messages.
   */
  public Circuit readForPage(String jobId) {
    return read(jobId, RawEdges.INTO_OR_OUT_OF_CIRCUIT);
  }

  private Circuit read(String jobId, RawEdges which) {
    StoredJob job = jobs.stored(jobId);
    Job recorded = jobs.recorded(jobId);
    SiteChain chain = SiteChain.of(recorded);
    // a job recorded before chains had names gets the chain it ran over, so every reader finds one
    Circuit.Builder c = Circuit.newBuilder().setJob(recorded.toBuilder().clearChain().addAllChain(chain.sites()))
        .addAllPredictions(job.predictions());
    Set<Long> circuitNodes = new HashSet<>();
    if (job.finalized()) {
      List<RawEdge> edges = circuitEdges(jobId, chain);
      for (RawEdge e : edges) {
        c.addEdges(edge(e, chain));
        circuitNodes.add(e.sourceNode());
        circuitNodes.add(e.targetNode());
      }
      c.addAllNodes(nodes(job, recorded.getTokensCount(), edges, chain));
      c.setEffectShown(job.effectShown());
    }
    List<RawEdge> raw = new ArrayList<>(which == RawEdges.NONE ? List.of() : rawEdges(jobId, chain));
    if (which == RawEdges.INTO_OR_OUT_OF_CIRCUIT) {
      raw.removeIf(e -> !circuitNodes.contains(e.sourceNode()) && !circuitNodes.contains(e.targetNode()));
    }
    raw.sort(CircuitPruner.ORDER);
    for (RawEdge e : raw) c.addRawEdges(edge(e, chain));
    if (which == RawEdges.ALL) c.setRawEdgeCount(raw.size());
    else c.setRawEdgeCount(job.finalized() ? job.rawEdges() : totals(jobId).edges());
    return c.build();
  }

  /**
   * METHOD.md step 7 on the job's stored edges. Under the job's own rule, the pruning of its
   * candidates, which is the pruning of every raw edge (see {@link CircuitPruner#strongest}); under
   * another rule, the pruning of every raw edge, read back from the edge files: re-pruning never
   * recomputes. BAD_REQUEST for a rule that makes no sense.
   */
  public Pruned prune(String jobId, Pruning rule) {
    Pruning checked = JobRules.checkPruning(rule);
    jobs.stored(jobId); // NOT_FOUND for a job never registered
    Job recorded = jobs.recorded(jobId);
    SiteChain chain = SiteChain.of(recorded);
    boolean ownRule = JobRules.pruningOrDefault(checked).equals(JobRules.pruningOrDefault(recorded.getSpec().getPruning()));
    List<RawEdge> circuit = CircuitPruner.prune(ownRule ? candidateEdges(jobId, chain) : rawEdges(jobId, chain), checked);
    List<CircuitEdge> edges = circuit.stream().map(e -> CircuitEdge.newBuilder().setLayer(chain.layer(e.site()))
        .setSourceHook(chain.hook(e.site())).setSource(e.source()).setTargetHook(chain.hook(e.site() + 1)).setTarget(e.target())
        .setWeight(e.weight()).build()).toList();
    return new Pruned(edges, nodesOf(circuit, chain), totals(jobId).edges());
  }

  /** Every raw edge of the job, in no particular order, from the edge files. */
  public List<RawEdge> rawEdges(String jobId, SiteChain chain) {
    return files.read(jobId, chain);
  }

  /** The edges that passed the pruning rule within their task: a superset of the circuit (see {@link CircuitPruner#strongest}). */
  public List<RawEdge> candidateEdges(String jobId, SiteChain chain) {
    return edges(jobId, chain, "WHERE e.candidate = true");
  }

  /** How many raw edges a job has and the sum of their |weight|, from its (:Task) nodes. */
  public record Totals(long edges, double absSum) {}

  public Totals totals(String jobId) {
    try (Session session = driver.session()) {
      Record r = session.executeRead(tx -> tx.run(
          "MATCH (t:Task {job: $job}) RETURN coalesce(sum(t.edges), 0) AS edges, coalesce(sum(t.abs_sum), 0.0) AS abs_sum",
          Map.of("job", jobId)).single());
      return new Totals(r.get("edges").asLong(), r.get("abs_sum").asDouble());
    }
  }

  /** The edges Annotate marked as the job's circuit, in circuit order. */
  List<RawEdge> circuitEdges(String jobId, SiteChain chain) {
    List<RawEdge> edges = new ArrayList<>(edges(jobId, chain, "WHERE e.circuit = true"));
    edges.sort(CircuitPruner.ORDER);
    return edges;
  }

  private List<RawEdge> edges(String jobId, SiteChain chain, String where) {
    try (Session session = driver.session()) {
      return session.executeRead(tx -> tx.run("MATCH (a:Feature)-[e:EFFECT {job: $job}]->(b:Feature) " + where
          + " RETURN a.hook AS hook, a.latent AS source, b.latent AS target, e.weight AS weight", Map.of("job", jobId))
          .list(r -> new RawEdge(chain.position(r.get("hook").asString()), r.get("source").asInt(), r.get("target").asInt(),
              r.get("weight").asFloat())));
    }
  }

  /** The latents the edges join, by site (in the chain) then latent. */
  static List<Latent> nodesOf(List<RawEdge> edges, SiteChain chain) {
    TreeSet<Long> nodes = new TreeSet<>();
    for (RawEdge e : edges) {
      nodes.add(e.sourceNode());
      nodes.add(e.targetNode());
    }
    return nodes.stream().map(n -> {
      int site = (int) (n >>> 32);
      return Latent.newBuilder().setLayer(chain.layer(site)).setHookName(chain.hook(site)).setLatent((int) (long) n).build();
    }).toList();
  }

  private List<Node> nodes(StoredJob job, int positions, List<RawEdge> edges, SiteChain chain) {
    List<List<Object>> keys = nodesOf(edges, chain).stream().map(l -> List.<Object>of(l.getHookName(), l.getLatent())).toList();
    List<Record> rows;
    try (Session session = driver.session()) {
      rows = session.executeRead(tx -> tx.run("""
          UNWIND $nodes AS n
          OPTIONAL MATCH (:Job {id: $job})-[a:ACTIVE]->(:Feature {model: $model, saes: $saes, hook: n[0], latent: n[1]})
          RETURN n[0] AS hook, n[1] AS latent, a AS active""",
          Map.of("job", job.id(), "model", job.model(), "saes", job.saes(), "nodes", keys)).list());
    }
    List<Node> nodes = new ArrayList<>();
    for (Record r : rows) {
      int site = chain.position(r.get("hook").asString()), latent = r.get("latent").asInt();
      Node.Builder n = Node.newBuilder().setId(chain.nodeId(site, latent)).setLayer(chain.layer(site)).setLatent(latent)
          .setHookName(chain.hook(site)).setNeuronpedia(chain.neuronpedia(site, latent));
      Value active = r.get("active");
      if (active.isNull()) {
        // off at every position: a latent that only turns on when something upstream is ablated
        for (int p = 0; p < positions; p++) n.addActivations(0f);
      } else {
        for (float a : JobNodes.dense(active, positions)) n.addActivations(a);
        n.addAllPromotes(tokens(active, "promotes"));
        n.addAllSuppresses(tokens(active, "suppresses"));
      }
      nodes.add(n.build());
    }
    // UNWIND keeps the list's order in practice, but Cypher does not promise it
    nodes.sort(Comparator.comparingInt((Node n) -> chain.position(n.getHookName())).thenComparingInt(Node::getLatent));
    return nodes;
  }

  private static List<TokenValue> tokens(Value active, String name) {
    if (active.get(name).isNull()) return List.of();
    List<Object> strings = active.get(name).asList(), ids = active.get(name + "_ids").asList(),
        values = active.get(name + "_values").asList();
    List<TokenValue> out = new ArrayList<>();
    for (int i = 0; i < strings.size(); i++) {
      out.add(TokenValue.newBuilder().setToken((String) strings.get(i)).setId(((Number) ids.get(i)).intValue())
          .setValue(((Number) values.get(i)).floatValue()).build());
    }
    return out;
  }

  static Edge edge(RawEdge e, SiteChain chain) {
    return Edge.newBuilder().setSource(chain.nodeId(e.site(), e.source())).setTarget(chain.nodeId(e.site() + 1, e.target()))
        .setWeight(e.weight()).build();
  }
}
