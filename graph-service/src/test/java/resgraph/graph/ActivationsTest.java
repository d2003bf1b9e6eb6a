package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import resgraph.v1.LayerActivations;

/**
 * The prompt's activations as Neo4j holds them, (:Job)-[:ACTIVE {positions, values}]->(:Feature):
 * a latent's nonzero activations only, so that a full-context prompt's registration is as large
 * as what fired and not a value for every position of every latent.
 */
@ExtendWith(GraphUnderTest.Start.class)
class ActivationsTest {

  @Test
  void everyActiveLatentHoldsExactlyItsNonzeroPositionsAndValues() {
    RealJob job = RealJob.get();
    Map<String, Record> stored = new HashMap<>();
    try (Session s = GraphUnderTest.get().neo4j.session()) {
      s.run("MATCH (:Job {id: $job})-[a:ACTIVE]->(f:Feature) RETURN f.hook AS hook, f.latent AS latent, a.positions AS positions,"
          + " a.values AS values, a.activations AS dense", Map.of("job", job.id()))
          .forEachRemaining(r -> stored.put(r.get("hook").asString() + "/" + r.get("latent").asInt(), r));
    }
    int expected = 0;
    for (LayerActivations layer : job.trace().getLayersList()) {
      for (int latent : layer.getPositionsList().stream().flatMap(p -> p.getLatentsList().stream()).distinct().toList()) {
        float[] trace = job.activations(layer.getLayer(), latent);
        List<Long> positions = new ArrayList<>();
        List<Double> values = new ArrayList<>();
        for (int p = 0; p < trace.length; p++) {
          if (trace[p] != 0) {
            positions.add((long) p);
            values.add((double) trace[p]);
          }
        }
        if (positions.isEmpty()) continue;
        expected++;
        Record r = stored.get(layer.getHookName() + "/" + latent);
        assertTrue(r != null, layer.getHookName() + " latent " + latent + " fired but has no ACTIVE");
        assertEquals(positions, r.get("positions").asList(), layer.getHookName() + " latent " + latent);
        assertEquals(values, r.get("values").asList(), layer.getHookName() + " latent " + latent);
        assertTrue(r.get("dense").isNull(), "no dense list beside them");
      }
    }
    assertTrue(expected > 0);
    assertEquals(expected, stored.size(), "one ACTIVE per latent that fired, and no other");
  }

  @Test
  void aStoreWithDenseActivationsIsConvertedWhenTheServiceStarts() throws InterruptedException {
    String job = Fixtures.jobId("dense"), model = "dense-era-model";
    Map<String, Object> params = Map.of("job", job, "model", model);
    try (Session s = GraphUnderTest.get().neo4j.session()) {
      s.run("""
          CREATE (j:Job {id: $job, model: $model, saes: 's', finalized: false})
          CREATE (j)-[:ACTIVE {activations: [0.0, 1.5, 0.0, 2.25]}]->(:Feature {model: $model, saes: 's', hook: 'h', latent: 1, layer: 0})
          CREATE (j)-[:ACTIVE {activations: [0.0, 0.0, 0.0, 0.0]}]->(:Feature {model: $model, saes: 's', hook: 'h', latent: 2, layer: 0})
          CREATE (j)-[:ACTIVE {activations: [3.0, 0.0, 0.0, 0.0], promotes: ['x']}]->(:Feature {model: $model, saes: 's', hook: 'h', latent: 3, layer: 0})""",
          params).consume();
      s.run("MATCH (v:Schema) DELETE v").consume(); // as a store from before the schema counted its conversions
      try {
        new GraphSchema(GraphUnderTest.get().neo4j);
        List<Record> rows = s.run("""
            MATCH (:Job {id: $job})-[a:ACTIVE]->(f:Feature) RETURN f.latent AS latent, a.positions AS positions, a.values AS values,
                   a.activations AS dense, a.promotes AS promotes ORDER BY latent""", params).list();
        assertEquals(List.of(1L, 3L), rows.get(0).get("positions").asList());
        assertEquals(List.of(1.5, 2.25), rows.get(0).get("values").asList());
        assertEquals(List.of(), rows.get(1).get("positions").asList(), "a latent that never fired keeps no position");
        assertEquals(List.of(0L), rows.get(2).get("positions").asList());
        assertEquals(List.of(3.0), rows.get(2).get("values").asList());
        assertEquals(List.of("x"), rows.get(2).get("promotes").asList(), "annotations stay");
        for (Record r : rows) assertTrue(r.get("dense").isNull(), "the dense list is gone");
      } finally {
        s.run("MATCH (j:Job {id: $job}) OPTIONAL MATCH (f:Feature {model: $model}) DETACH DELETE j, f", params).consume();
      }
    }
  }

  /** A restart of a store that has had every conversion leaves what it holds alone, without scanning it. */
  @Test
  void aStoreAlreadyConvertedIsNotScannedAgain() throws InterruptedException {
    String job = Fixtures.jobId("converted"), model = "converted-model";
    Map<String, Object> params = Map.of("job", job, "model", model);
    try (Session s = GraphUnderTest.get().neo4j.session()) {
      new GraphSchema(GraphUnderTest.get().neo4j);
      long version = s.run("MATCH (v:Schema {id: 'resgraph'}) RETURN v.version AS version").single().get("version").asLong();
      assertTrue(version > 0, "the store records its conversions");
      // what only an old store would hold: a conversion that ran again would change it
      s.run("""
          CREATE (j:Job {id: $job, model: $model, saes: 's', finalized: false})
          CREATE (j)-[:ACTIVE {activations: [0.0, 1.5]}]->(:Feature {model: $model, saes: 's', hook: 'h', latent: 1, layer: 0})""",
          params).consume();
      try {
        new GraphSchema(GraphUnderTest.get().neo4j);
        Record r = s.run("MATCH (:Job {id: $job})-[a:ACTIVE]->() RETURN a.activations AS dense, a.positions AS positions", params).single();
        assertEquals(List.of(0.0, 1.5), r.get("dense").asList());
        assertTrue(r.get("positions").isNull());
        Record schema = s.run("MATCH (v:Schema) RETURN count(v) AS n, max(v.version) AS version").single();
        assertEquals(1, schema.get("n").asLong(), "one schema node");
        assertEquals(version, schema.get("version").asLong());
      } finally {
        s.run("MATCH (j:Job {id: $job}) OPTIONAL MATCH (f:Feature {model: $model}) DETACH DELETE j, f", params).consume();
      }
    }
  }
}
