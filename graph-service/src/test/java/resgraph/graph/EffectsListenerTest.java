package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import resgraph.graph.kafka.EffectsListener;
import resgraph.platform.kafka.Topics;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.JobEvent;
import resgraph.v1.LatentEffects;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.StoreEdges;
import resgraph.v1.TaskEffects;
import resgraph.v1.TaskStored;
import resgraph.v1.UnreadableRecord;

/**
 * The effects listener against the real broker and Neo4j: what a worker publishes ends up as raw
 * edges and a stored event, exactly once in the graph however often it is delivered.
 */
@ExtendWith(GraphUnderTest.Start.class)
class EffectsListenerTest {

  private static final List<RawEdge> LAYER0 = List.of(
      new RawEdge(0, 1, 10, -0.75f), new RawEdge(0, 1, 11, 0.125f), new RawEdge(0, 2, 10, 1.5e-3f));
  private static final List<RawEdge> LAYER1 = List.of(new RawEdge(1, 10, 20, 2.5f), new RawEdge(1, 11, 20, -1f));

  private final GraphUnderTest cluster = GraphUnderTest.get();

  private String registered(String what) {
    String id = Fixtures.jobId(what);
    cluster.register(Fixtures.job(id));
    return id;
  }

  private Set<Edge> rawEdges(String jobId) {
    Circuit c = cluster.graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(jobId).setIncludeRawEdges(true).build());
    assertEquals(c.getRawEdgesCount(), c.getRawEdgeCount());
    Set<Edge> edges = new HashSet<>(c.getRawEdgesList());
    assertEquals(c.getRawEdgesCount(), edges.size(), "an edge stored twice");
    return edges;
  }

  private static Set<Edge> asEdges(List<RawEdge> raw) {
    Set<Edge> out = new HashSet<>();
    for (RawEdge e : raw) out.add(StoredCircuits.edge(e, Fixtures.CHAIN));
    return out;
  }

  /** The events without their timings, which differ run to run. */
  private static List<JobEvent> untimed(List<JobEvent> events) {
    return events.stream().map(e -> e.hasStored()
        ? e.toBuilder().setStored(e.getStored().toBuilder().clearWriteSeconds().clearAblateSeconds()).build() : e).toList();
  }

  private static JobEvent stored(String jobId, int task, long edges) {
    return JobEvent.newBuilder().setJobId(jobId)
        .setStored(TaskStored.newBuilder().setTask(task).setEdges(edges)).build();
  }

  @Test
  void storesEachTasksEdgesAndThenPublishesItsStoredEvent() {
    String job = registered("store");
    TaskEffects t0 = Fixtures.effects(job, 0, 0, LAYER0);
    // a zero effect is not an edge
    TaskEffects t1 = Fixtures.effects(job, 1, 1, LAYER1).toBuilder()
        .addEffects(LatentEffects.newBuilder().setLatent(12).addDownstream(20).addDelta(0f)).build();
    cluster.publish(t0, t1);

    List<JobEvent> events = untimed(cluster.events(job, 2));
    assertEquals(Set.of(stored(job, 0, 3), stored(job, 1, 2)), new HashSet<>(events));

    Set<Edge> expected = asEdges(LAYER0);
    expected.addAll(asEdges(LAYER1));
    assertEquals(expected, rawEdges(job));

    // the same edges as Cypher sees them: the features shared by model and SAEs, the weights exact
    try (Session s = cluster.neo4j.session()) {
      List<Record> rows = s.run("""
          MATCH (a:Feature)-[e:EFFECT {job: $job}]->(b:Feature)
          RETURN a.model AS model, a.saes AS saes, a.layer AS layer, a.latent AS source, b.layer AS next,
                 b.latent AS target, e.weight AS weight, e.circuit AS circuit""", Map.of("job", job)).list();
      assertEquals(5, rows.size());
      Set<RawEdge> seen = new HashSet<>();
      for (Record r : rows) {
        assertEquals("test-model", r.get("model").asString());
        assertEquals("test-saes", r.get("saes").asString());
        assertEquals(r.get("layer").asInt() + 1, r.get("next").asInt());
        assertTrue(r.get("circuit").isNull(), "not finalized: no circuit marks");
        seen.add(new RawEdge(r.get("layer").asInt(), r.get("source").asInt(), r.get("target").asInt(), r.get("weight").asFloat()));
      }
      assertEquals(Set.copyOf(List.of(LAYER0.get(0), LAYER0.get(1), LAYER0.get(2), LAYER1.get(0), LAYER1.get(1))), seen);
      assertEquals(2, s.run("MATCH (t:Task {job: $job}) RETURN count(t) AS n", Map.of("job", job)).single().get("n").asInt());
    }
  }

  /** Five edges of one task, of which the job's top 3 by |e| are 2->12, 3->10 and 1->10. */
  private static final List<RawEdge> FIVE = List.of(new RawEdge(0, 1, 10, -0.75f), new RawEdge(0, 1, 11, 0.125f),
      new RawEdge(0, 2, 10, 1.5e-3f), new RawEdge(0, 2, 12, 4f), new RawEdge(0, 3, 10, -2f));

  /** The job's EFFECT relationships in Neo4j, each with whether it is marked a candidate. */
  private Map<RawEdge, Boolean> neo4jEdges(String jobId) {
    Map<RawEdge, Boolean> edges = new HashMap<>();
    try (Session s = cluster.neo4j.session()) {
      s.run("MATCH (a:Feature)-[e:EFFECT {job: $job}]->(b:Feature) RETURN a.layer AS layer, a.latent AS source, b.latent AS target,"
          + " e.weight AS weight, e.candidate AS candidate", Map.of("job", jobId)).forEachRemaining(r -> edges.put(
              new RawEdge(r.get("layer").asInt(), r.get("source").asInt(), r.get("target").asInt(), r.get("weight").asFloat()),
              !r.get("candidate").isNull() && r.get("candidate").asBoolean()));
    }
    return edges;
  }

  @Test
  void neo4jHoldsEachTasksCandidatesAndTheEdgeFilesEveryRawEdge() {
    String job = registered("candidates");
    cluster.publish(Fixtures.effects(job, 0, 0, FIVE));
    assertEquals(List.of(stored(job, 0, 5)), untimed(cluster.events(job, 1)));

    assertEquals(asEdges(FIVE), rawEdges(job));
    assertTrue(Files.exists(cluster.edgeFiles(job).resolve("task-000000.parquet")));
    assertEquals(Map.of(FIVE.get(0), true, FIVE.get(3), true, FIVE.get(4), true), neo4jEdges(job));
  }

  @Test
  void aJobStoredWithAllKeepsEveryRawEdgeInNeo4jToo() {
    String job = Fixtures.jobId("all");
    RegisterJobRequest req = Fixtures.job(job);
    cluster.register(req.toBuilder().setJob(req.getJob().toBuilder()
        .setSpec(req.getJob().getSpec().toBuilder().setStoreEdges(StoreEdges.STORE_EDGES_ALL))).build());
    cluster.publish(Fixtures.effects(job, 0, 0, FIVE));
    assertEquals(List.of(stored(job, 0, 5)), untimed(cluster.events(job, 1)));

    assertEquals(asEdges(FIVE), rawEdges(job));
    assertEquals(Map.of(FIVE.get(0), true, FIVE.get(1), false, FIVE.get(2), false, FIVE.get(3), true, FIVE.get(4), true),
        neo4jEdges(job));
  }

  @Test
  void aRedeliveredTaskChangesNothingButIsReportedAgain() {
    String job = registered("redeliver");
    TaskEffects t0 = Fixtures.effects(job, 0, 0, LAYER0);
    cluster.publish(t0);
    assertEquals(List.of(stored(job, 0, 3)), untimed(cluster.events(job, 1)));
    Set<Edge> before = rawEdges(job);

    cluster.publish(t0);
    assertEquals(List.of(stored(job, 0, 3), stored(job, 0, 3)), untimed(cluster.events(job, 2)));
    assertEquals(before, rawEdges(job));
    assertEquals(asEdges(LAYER0), before);
  }

  @Test
  void aRedeliveredTaskWhoseFileIsMissingGetsItBack() throws Exception {
    // a task's file is written while Neo4j commits its marker: a crash between the two leaves the marker alone
    String job = registered("lostfile");
    TaskEffects t0 = Fixtures.effects(job, 0, 0, LAYER0);
    cluster.publish(t0);
    assertEquals(List.of(stored(job, 0, 3)), untimed(cluster.events(job, 1)));
    Files.delete(cluster.edgeFiles(job).resolve("task-000000.parquet"));

    cluster.publish(t0);
    assertEquals(List.of(stored(job, 0, 3), stored(job, 0, 3)), untimed(cluster.events(job, 2)));
    assertEquals(asEdges(LAYER0), rawEdges(job));
  }

  @Test
  void twoCopiesInOneBatchAreStoredOnce() {
    String job = registered("copies");
    TaskEffects t1 = Fixtures.effects(job, 1, 1, LAYER1);
    cluster.publish(t1, t1); // one flush: one producer batch, so one poll on the consumer's side

    assertEquals(List.of(stored(job, 1, 2), stored(job, 1, 2)), untimed(cluster.events(job, 2)));
    assertEquals(asEdges(LAYER1), rawEdges(job));
  }

  @Test
  void anUnreadableRecordIsKeptAsItWasFailsItsJobAndTheNextIsStored() {
    String job = registered("unreadable");
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff};
    cluster.publishRaw(job, garbage);
    // same key, so same partition, right after the garbage: its event proves the consumer moved past it
    RecordMetadata next = cluster.publish(Fixtures.effects(job, 0, 0, LAYER0)).get(0);
    int partition = next.partition();
    long offset = next.offset() - 1;

    UnreadableRecord letter = cluster.kafka.await(Topics.UNREADABLE, UnreadableRecord.parser(), u -> u.getKey().equals(job), 1,
        GraphUnderTest.DEADLINE).get(0).value();
    String problem = letter.getProblem();
    assertTrue(problem.startsWith("the value is not a valid TaskEffects ("), problem);
    assertEquals(UnreadableRecord.newBuilder().setTopic(Topics.EFFECTS).setPartition(partition).setOffset(offset).setKey(job)
        .setValue(ByteString.copyFrom(garbage)).setValueSize(garbage.length).setProblem(problem).setConsumer(EffectsListener.GROUP).build(),
        letter);

    List<JobEvent> events = untimed(cluster.events(job, 2));
    JobEvent failed = events.stream().filter(JobEvent::hasJobFailed).findFirst().orElseThrow(() -> new AssertionError(events));
    String reason = failed.getJobFailed().getReason();
    assertTrue(reason.contains("(resgraph.effects partition " + partition + " offset " + offset + ", key " + job + "): " + problem), reason);
    assertTrue(events.contains(stored(job, 0, 3)), events.toString());
    assertEquals(asEdges(LAYER0), rawEdges(job));
  }

  @Test
  void effectsOfAJobNeverRegisteredFailTheTask() {
    String job = Fixtures.jobId("unregistered");
    cluster.publish(Fixtures.effects(job, 4, 0, LAYER0));

    List<JobEvent> events = untimed(cluster.events(job, 1));
    assertEquals(1, events.size());
    assertEquals(4, events.get(0).getFailed().getTask());
    assertTrue(events.get(0).getFailed().getReason().contains("not registered"), events.get(0).getFailed().getReason());
  }

  @Test
  void effectsThatCanNeverBeEdgesFailTheTaskAndWriteNothing() {
    String job = registered("malformed");
    TaskEffects mismatched = TaskEffects.newBuilder().setJobId(job).setTask(2).setLayer(0)
        .setHookName(Fixtures.hook(0)).setMeasureHookName(Fixtures.hook(1))
        .addEffects(LatentEffects.newBuilder().setLatent(1).addDownstream(10).addDownstream(11).addDelta(0.5f)).build();
    cluster.publish(mismatched);

    List<JobEvent> events = untimed(cluster.events(job, 1));
    assertEquals(1, events.size());
    assertEquals(2, events.get(0).getFailed().getTask());
    assertTrue(events.get(0).getFailed().getReason().contains("2 downstream latents but 1 deltas"),
        events.get(0).getFailed().getReason());
    assertEquals(Set.of(), rawEdges(job));
  }

  /** A poll's tasks are one Neo4j transaction, but a task that can never be stored fails its job alone. */
  @Test
  void aTaskThatCanNeverBeStoredFailsAloneAndTheRestOfItsBatchIsStored() {
    String job = registered("batch");
    TaskEffects infinite = Fixtures.effects(job, 0, 0, LAYER0).toBuilder()
        .addEffects(LatentEffects.newBuilder().setLatent(3).addDownstream(10).addDelta(Float.POSITIVE_INFINITY)).build();
    cluster.publish(infinite, Fixtures.effects(job, 1, 1, LAYER1)); // one flush: one poll

    List<JobEvent> events = untimed(cluster.events(job, 2));
    assertEquals(stored(job, 1, 2), events.stream().filter(JobEvent::hasStored).findFirst().orElseThrow());
    JobEvent failed = events.stream().filter(JobEvent::hasFailed).findFirst().orElseThrow();
    assertEquals(0, failed.getFailed().getTask());
    assertTrue(failed.getFailed().getReason().contains("Infinity"), failed.getFailed().getReason());
    assertEquals(asEdges(LAYER1), rawEdges(job));
  }
}
