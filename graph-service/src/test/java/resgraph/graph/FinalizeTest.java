package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.function.Executable;
import org.neo4j.driver.Session;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportRequest;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.Latent;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.Node;
import resgraph.v1.Phase;
import resgraph.v1.PruneRequest;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;

/**
 * Prune, Annotate and GetCircuit on a job whose effects came from the real model server through
 * Kafka, finalized as the orchestrator does: the circuit is METHOD.md step 7 of exactly the effects
 * Ablate reported, and its annotations are exactly what LogitEffects says.
 */
@ExtendWith(GraphUnderTest.Start.class)
class FinalizeTest {

  private static GraphUnderTest cluster;
  private static RealJob job;
  private static AnnotateResponse finalized;
  private static Circuit circuit;

  @BeforeAll
  static void finalizeTheJob() {
    cluster = GraphUnderTest.get();
    job = RealJob.get();
    finalized = cluster.finalizeJob(job.job());
    circuit = read(job.id());
  }

  private static Circuit read(String id) {
    return cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(id).setIncludeRawEdges(true).build());
  }

  private static Set<Edge> edges(Iterable<RawEdge> raw) {
    Set<Edge> out = new HashSet<>();
    for (RawEdge e : raw) out.add(StoredCircuits.edge(e, SiteChain.of(job.job())));
    return out;
  }

  @Test
  void rawEdgesAreExactlyWhatAblateReported() {
    assertEquals(edges(job.rawEdges()), new HashSet<>(circuit.getRawEdgesList()));
    assertEquals(job.rawEdges().size(), circuit.getRawEdgesCount(), "no edge stored twice");
    assertEquals(job.rawEdges().size(), circuit.getRawEdgeCount());
    assertEquals(job.rawEdges().size(), finalized.getRawEdges());
  }

  @Test
  void theCircuitIsStepSevenOfTheRawEdges() {
    Set<RawEdge> expected = ReferencePruning.circuit(job.rawEdges(), Pruning.newBuilder().setTopK(RealJob.TOP_K).build());
    assertFalse(expected.isEmpty(), "the test job should have a circuit");
    List<RawEdge> ordered = new ArrayList<>(expected);
    ordered.sort(CircuitPruner.ORDER);
    SiteChain chain = SiteChain.of(job.job());
    assertEquals(ordered.stream().map(e -> StoredCircuits.edge(e, chain)).toList(), circuit.getEdgesList());
    assertEquals(expected.size(), finalized.getEdges());

    TreeSet<String> nodeIds = new TreeSet<>();
    for (RawEdge e : expected) {
      nodeIds.add(chain.nodeId(e.site(), e.source()));
      nodeIds.add(chain.nodeId(e.site() + 1, e.target()));
    }
    assertEquals(nodeIds, new TreeSet<>(circuit.getNodesList().stream().map(Node::getId).toList()));
    assertEquals(nodeIds.size(), finalized.getNodes());
    List<Node> sorted = new ArrayList<>(circuit.getNodesList());
    sorted.sort(Comparator.comparingInt(Node::getLayer).thenComparingInt(Node::getLatent));
    assertEquals(sorted, circuit.getNodesList(), "nodes by layer, then latent");

    double all = job.rawEdges().stream().mapToDouble(e -> Math.abs(e.weight())).sum();
    double shown = expected.stream().mapToDouble(e -> Math.abs(e.weight())).sum();
    assertEquals(shown / all, circuit.getEffectShown(), 1e-12);
    assertTrue(circuit.getEffectShown() > 0 && circuit.getEffectShown() <= 1);
  }

  @Test
  void anotherRuleReprunesEveryStoredRawEdgeWithoutRecomputing() {
    SiteChain chain = SiteChain.of(job.job());
    // wider than the job's top 5, so the job's candidates alone could not answer it
    for (Pruning rule : List.of(Pruning.newBuilder().setTopK(40).build(), Pruning.newBuilder().setThreshold(1e-3).build())) {
      List<RawEdge> expected = new ArrayList<>(ReferencePruning.circuit(job.rawEdges(), rule));
      expected.sort(CircuitPruner.ORDER);
      List<String> want = expected.stream().map(e -> e.site() + ":" + e.source() + "->" + e.target() + "=" + e.weight()).toList();
      List<String> got = cluster.graph().prune(PruneRequest.newBuilder().setJobId(job.id()).setPruning(rule).build()).getEdgesList()
          .stream().map(e -> chain.position(e.getSourceHook()) + ":" + e.getSource() + "->" + e.getTarget() + "=" + e.getWeight())
          .toList();
      assertTrue(want.size() > circuit.getEdgesCount(), rule + " should keep more than the job's circuit");
      assertEquals(want, got, rule.toString());
    }
  }

  @Test
  void neo4jHoldsTheCandidatesNotEveryRawEdge() {
    try (Session s = cluster.neo4j.session()) {
      Map<String, Object> params = Map.of("job", job.id());
      long relationships = s.run("MATCH ()-[e:EFFECT {job: $job}]->() RETURN count(e) AS n", params).single().get("n").asLong();
      long candidates = s.run("MATCH ()-[e:EFFECT {job: $job}]->() WHERE e.candidate RETURN count(e) AS n", params)
          .single().get("n").asLong();
      assertEquals(relationships, candidates);
      assertTrue(candidates <= (long) job.tasks() * RealJob.TOP_K && candidates >= circuit.getEdgesCount(), "candidates: " + candidates);
      assertTrue(candidates < job.rawEdges().size());
    }
  }

  @Test
  void nodesCarryTheirActivationsAndExactlyTheModelServersLogitEffects() {
    List<Latent> latents = circuit.getNodesList().stream()
        .map(n -> Latent.newBuilder().setLayer(n.getLayer()).setLatent(n.getLatent()).build()).toList();
    List<LatentLogitEffects> truth = cluster.model().logitEffects(LogitEffectsRequest.newBuilder().setRef(cluster.ref)
        .addAllTokens(job.job().getTokensList()).addAllLatents(latents).setTarget(job.job().getTarget()).setTop(10).build())
        .getEffectsList();
    boolean someAnnotated = false;
    for (int i = 0; i < latents.size(); i++) {
      Node n = circuit.getNodes(i);
      assertEquals(n.getLayer() + "." + n.getLatent(), n.getId());
      float[] activations = new float[n.getActivationsCount()];
      for (int p = 0; p < activations.length; p++) activations[p] = n.getActivations(p);
      assertArrayEquals(job.activations(n.getLayer(), n.getLatent()), activations, n.getId());
      assertEquals(truth.get(i).getPromotesList(), n.getPromotesList(), n.getId());
      assertEquals(truth.get(i).getSuppressesList(), n.getSuppressesList(), n.getId());
      someAnnotated |= n.getPromotesCount() == 10;
      assertEquals("", n.getNeuronpedia(), "a local SAE folder has no Neuronpedia page");
    }
    assertTrue(someAnnotated, "at least one node should fire and have 10 promoted tokens");
  }

  @Test
  void theJobComesBackAsItWasRegistered() {
    assertEquals(job.job().getId(), circuit.getJob().getId());
    assertEquals(job.job().getTokensList(), circuit.getJob().getTokensList());
    assertEquals(job.job().getTokenStringsList(), circuit.getJob().getTokenStringsList());
    assertEquals(job.job().getTarget(), circuit.getJob().getTarget());
    assertEquals(0, circuit.getJob().getLayerStart());
    assertEquals(3, circuit.getJob().getLayerEnd());
    assertEquals(job.job().getSpec().getRef(), circuit.getJob().getSpec().getRef());
    assertEquals(RealJob.PROMPT, circuit.getJob().getSpec().getPrompt());
    assertEquals(Pruning.newBuilder().setTopK(RealJob.TOP_K).build(), circuit.getJob().getSpec().getPruning());
    assertEquals(job.job().getCreated(), circuit.getJob().getCreated());
    assertEquals(Phase.PHASE_DONE, circuit.getJob().getPhase());
    assertEquals(job.trace().getPredictionsList(), circuit.getPredictionsList());
  }

  @Test
  void finalizingAgainOrRegisteringAgainChangesNothing() {
    AnnotateResponse again = cluster.finalizeJob(job.job());
    assertEquals(finalized, again);
    long active = activeCount();
    assertTrue(active > 0);
    cluster.graph().registerJob(RegisterJobRequest.newBuilder().setJob(job.job()).addAllActivations(job.trace().getLayersList())
        .addAllPredictions(job.trace().getPredictionsList()).build());
    assertEquals(circuit, read(job.id()));
    try (Session s = cluster.neo4j.session()) {
      Map<String, Object> params = Map.of("job", job.id());
      assertEquals(circuit.getEdgesCount(), s.run("MATCH ()-[e:EFFECT {job: $job}]->() WHERE e.circuit RETURN count(e) AS n", params)
          .single().get("n").asInt());
      assertEquals(circuit.getNodesList().stream().filter(n -> n.getPromotesCount() > 0).count(),
          s.run("MATCH (:Job {id: $job})-[a:ACTIVE]->() WHERE size(a.promotes) > 0 RETURN count(a) AS n", params)
              .single().get("n").asLong());
    }
    assertEquals(active, activeCount(), "registering again adds no ACTIVE relationship");
  }

  private static long activeCount() {
    try (Session s = cluster.neo4j.session()) {
      return s.run("MATCH (:Job {id: $job})-[a:ACTIVE]->() RETURN count(a) AS n", Map.of("job", job.id())).single().get("n").asLong();
    }
  }

  @Test
  void beforeFinalizeThereIsNoCircuitYet() {
    String id = Fixtures.jobId("unfinalized");
    cluster.register(Fixtures.job(id));
    Circuit c = read(id);
    assertEquals(Phase.PHASE_RUNNING, c.getJob().getPhase());
    assertEquals(0, c.getNodesCount());
    assertEquals(0, c.getEdgesCount());
    refused(Status.Code.FAILED_PRECONDITION, "not finalized",
        () -> cluster.graph().export(ExportRequest.newBuilder().setJobId(id).setFormat(ExportFormat.EXPORT_FORMAT_JSON).build()));
  }

  @Test
  void anUnknownJobIsNotFound() {
    String id = Fixtures.jobId("unknown");
    refused(Status.Code.NOT_FOUND, id, () -> cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(id).build()));
    refused(Status.Code.NOT_FOUND, id, () -> cluster.graph().prune(PruneRequest.newBuilder().setJobId(id).build()));
    refused(Status.Code.NOT_FOUND, id, () -> cluster.graph().annotate(AnnotateRequest.newBuilder().setJobId(id).build()));
    refused(Status.Code.NOT_FOUND, id, () -> cluster.graph().addToCorpus(AddToCorpusRequest.newBuilder().setJobId(id).build()));
    refused(Status.Code.NOT_FOUND, id,
        () -> cluster.graph().export(ExportRequest.newBuilder().setJobId(id).setFormat(ExportFormat.EXPORT_FORMAT_DOT).build()));
  }

  @Test
  void aJobThatDoesNotAddUpIsRefused() {
    RegisterJobRequest good = Fixtures.job(Fixtures.jobId("bad"));
    RegisterJobRequest fewerStrings = good.toBuilder().setJob(good.getJob().toBuilder().clearTokenStrings().addTokenStrings("only one")).build();
    refused(Status.Code.INVALID_ARGUMENT, "token_strings", () -> cluster.graph().registerJob(fewerStrings));
    RegisterJobRequest zeroK = good.toBuilder().setJob(good.getJob().toBuilder()
        .setSpec(good.getJob().getSpec().toBuilder().setPruning(Pruning.newBuilder().setTopK(0)))).build();
    refused(Status.Code.INVALID_ARGUMENT, "top_k", () -> cluster.graph().registerJob(zeroK));
    refused(Status.Code.NOT_FOUND, good.getJob().getId(),
        () -> cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(good.getJob().getId()).build()));
  }

  @Test
  void aPruningRuleThatMakesNoSenseIsRefused() {
    refused(Status.Code.INVALID_ARGUMENT, "top_k", () -> cluster.graph().prune(PruneRequest.newBuilder().setJobId(job.id())
        .setPruning(Pruning.newBuilder().setTopK(0)).build()));
    refused(Status.Code.INVALID_ARGUMENT, "threshold", () -> cluster.graph().prune(PruneRequest.newBuilder().setJobId(job.id())
        .setPruning(Pruning.newBuilder().setThreshold(0)).build()));
  }

  static void refused(Status.Code code, String mentions, Executable call) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call);
    assertEquals(code, e.getStatus().getCode(), e.getStatus().toString());
    assertTrue(e.getStatus().getDescription().contains(mentions), e.getStatus().getDescription());
  }
}
