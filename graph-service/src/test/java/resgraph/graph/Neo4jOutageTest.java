package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Session;
import resgraph.graph.kafka.EffectsListener;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.v1.JobEvent;
import resgraph.v1.TaskEffects;

/**
 * The effects listener while Neo4j is down: it neither reports nor commits a task it could not
 * write, and stores it once Neo4j is back.
 */
@ExtendWith(GraphUnderTest.Start.class)
class Neo4jOutageTest {

  private final GraphUnderTest cluster = GraphUnderTest.get();

  @Test
  void aTaskArrivingDuringAnOutageIsStoredWhenNeo4jReturns() {
    String job = Fixtures.jobId("outage");
    cluster.register(Fixtures.job(job));
    List<RawEdge> edges = List.of(new RawEdge(0, 1, 10, -0.5f), new RawEdge(0, 2, 11, 0.25f));
    TaskEffects task = Fixtures.effects(job, 0, 0, edges);

    Runnable restart = cluster.cluster.stopNeo4j();
    RecordMetadata sent = cluster.publish(task).get(0);
    // the listener is retrying by now; watch it for a few seconds for a report or commit it must not make
    Await.holdsFor("the offset of an unwritten task stays uncommitted", Duration.ofSeconds(6),
        () -> !cluster.kafka.committedPast(EffectsListener.GROUP, List.of(sent)));
    assertEquals(List.of(), cluster.events(job), "no event for an unwritten task");

    restart.run();
    List<JobEvent> events = cluster.kafka.await(Topics.JOB_EVENTS, JobEvent.parser(),
        e -> e.getJobId().equals(job), 1, Duration.ofSeconds(90)).stream().map(r -> r.value()).toList();
    assertEquals(1, events.size(), "no stored event after Neo4j came back");
    assertEquals(2, events.get(0).getStored().getEdges());
    try (Session s = cluster.neo4j.session()) {
      assertEquals(2, s.run("MATCH ()-[e:EFFECT {job: $job}]->() RETURN count(e) AS n", Map.of("job", job)).single().get("n").asInt());
    }
    cluster.kafka.awaitCommittedPast(EffectsListener.GROUP, List.of(sent), GraphUnderTest.DEADLINE);
  }
}
