package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Session;
import resgraph.graph.CircuitPruner.RawEdge;
import resgraph.kafka.Clients;
import resgraph.v1.JobEvent;
import resgraph.v1.TaskEffects;

/**
 * The effects consumer while Neo4j is down: it neither reports nor commits a task it could not
 * write, and stores it once Neo4j is back.
 */
@ExtendWith(TestCluster.Start.class)
class Neo4jOutageTest {

  private final TestCluster cluster = TestCluster.get();

  @Test
  void aTaskArrivingDuringAnOutageIsStoredWhenNeo4jReturns() throws Exception {
    String job = Fixtures.jobId("outage");
    cluster.graph().registerJob(Fixtures.job(job));
    List<RawEdge> edges = List.of(new RawEdge(0, 1, 10, -0.5f), new RawEdge(0, 2, 11, 0.25f));
    TaskEffects task = Fixtures.effects(job, 0, 0, edges);

    try (Admin admin = Clients.admin(cluster.infra.endpoints().kafka())) {
      Runnable restart = cluster.stopNeo4j();
      RecordMetadata sent = cluster.publish(task).get(0);
      // the consumer is retrying by now; watch it for a few seconds for a report or commit it must not make
      for (Instant until = Instant.now().plusSeconds(6); Instant.now().isBefore(until); Thread.sleep(500)) {
        assertTrue(committed(admin, sent) <= sent.offset(), "the offset of an unwritten task was committed");
      }
      assertEquals(List.of(), cluster.events(job, 1, Duration.ofSeconds(1)));

      restart.run();
      List<JobEvent> events = cluster.events(job, 1, Duration.ofSeconds(90));
      assertEquals(1, events.size(), "no stored event after Neo4j came back");
      assertEquals(2, events.get(0).getStored().getEdges());
      try (Session s = cluster.neo4j.session()) {
        assertEquals(2, s.run("MATCH ()-[e:EFFECT {job: $job}]->() RETURN count(e) AS n", Map.of("job", job)).single().get("n").asInt());
      }
      Instant deadline = Instant.now().plus(TestCluster.DEADLINE);
      while (committed(admin, sent) <= sent.offset() && Instant.now().isBefore(deadline)) Thread.sleep(200);
      assertTrue(committed(admin, sent) > sent.offset(), "the stored task's offset was never committed");
    }
  }

  /** The graph service's committed offset on the message's partition (-1 for none yet). */
  private static long committed(Admin admin, RecordMetadata sent) throws Exception {
    Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(EffectsConsumer.GROUP)
        .partitionsToOffsetAndMetadata().get();
    OffsetAndMetadata o = offsets.get(new TopicPartition(sent.topic(), sent.partition()));
    return o == null ? -1 : o.offset();
  }
}
