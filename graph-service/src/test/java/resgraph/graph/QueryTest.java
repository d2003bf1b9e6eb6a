package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.graph.FinalizeTest.refused;

import com.google.protobuf.ListValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.Status;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.neo4j.driver.Record;
import org.neo4j.driver.Session;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;

/** Query: read-only Cypher over the real Neo4j, its rows converted to protobuf values. */
@ExtendWith(GraphUnderTest.Start.class)
class QueryTest {

  /** The caps GraphUnderTest configures. */
  static final int MAX_ROWS = 5000, MAX_TIMEOUT_MS = 120_000;

  private static GraphUnderTest cluster;
  private static RealJob job;

  @BeforeAll
  static void finalizeTheJob() {
    cluster = GraphUnderTest.get();
    job = RealJob.get();
    cluster.finalizeJob(job.job());
  }

  /** The column names, then the rows. */
  private record Answer(List<String> columns, List<List<Value>> rows) {}

  private static Answer query(QueryRequest req) {
    Iterator<QueryRow> stream = cluster.graph().query(req);
    List<String> columns = stream.next().getColumnsList();
    List<List<Value>> rows = new ArrayList<>();
    stream.forEachRemaining(r -> {
      assertEquals(0, r.getColumnsCount(), "only the first message names columns");
      rows.add(r.getValuesList());
    });
    return new Answer(columns, rows);
  }

  private static Answer query(String cypher, Map<String, Value> params) {
    return query(QueryRequest.newBuilder().setCypher(cypher).setParameters(Struct.newBuilder().putAllFields(params)).build());
  }

  private static Value string(String s) {
    return Value.newBuilder().setStringValue(s).build();
  }

  private static Value number(double d) {
    return Value.newBuilder().setNumberValue(d).build();
  }

  private static Map<String, Value> fields(Value v) {
    return v.getStructValue().getFieldsMap();
  }

  @Test
  void rowsAndColumnsWithParameters() {
    Answer a = query("""
        MATCH (:Job {id: $job})-[:ACTIVE]->(f:Feature)
        WHERE f.layer = $layer
        RETURN f.layer AS layer, f.latent AS latent ORDER BY latent""", Map.of("job", string(job.id()), "layer", number(1)));
    assertEquals(List.of("layer", "latent"), a.columns());
    long active = job.trace().getLayers(1).getPositionsList().stream().flatMap(p -> p.getLatentsList().stream()).distinct().count();
    assertTrue(active > 0);
    assertEquals(active, a.rows().size());
    for (List<Value> row : a.rows()) assertEquals(1.0, row.get(0).getNumberValue());
  }

  @Test
  void scalarsListsMapsAndNull() {
    Answer a = query("RETURN 7 AS i, 2.5 AS f, 'x\"y' AS s, true AS b, null AS n, [1, 'a', [false]] AS l, {k: 1, m: {n: 'deep'}} AS m, $p AS p",
        Map.of("p", Value.newBuilder().setListValue(ListValue.newBuilder().addValues(number(3))).build()));
    assertEquals(List.of("i", "f", "s", "b", "n", "l", "m", "p"), a.columns());
    List<Value> row = a.rows().get(0);
    assertEquals(7.0, row.get(0).getNumberValue());
    assertEquals(2.5, row.get(1).getNumberValue());
    assertEquals("x\"y", row.get(2).getStringValue());
    assertTrue(row.get(3).getBoolValue());
    assertEquals(Value.KindCase.NULL_VALUE, row.get(4).getKindCase());
    List<Value> l = row.get(5).getListValue().getValuesList();
    assertEquals(List.of(number(1), string("a")), l.subList(0, 2));
    assertEquals(false, l.get(2).getListValue().getValues(0).getBoolValue());
    assertEquals("deep", fields(fields(row.get(6)).get("m")).get("n").getStringValue());
    assertEquals(3.0, row.get(7).getListValue().getValues(0).getNumberValue());
  }

  @Test
  void aWholeNumberParameterIsACypherInteger() {
    // LIMIT takes only an integer: a JSON number must arrive as one
    Answer a = query("UNWIND range(1, 10) AS x RETURN x LIMIT $n", Map.of("n", number(3)));
    assertEquals(3, a.rows().size());
  }

  @Test
  void nodesRelationshipsAndPaths() {
    Answer a = query("""
        MATCH p = (a:Feature)-[e:EFFECT {job: $job, circuit: true}]->(b:Feature)-[:EFFECT {job: $job, circuit: true}]->(:Feature)
        RETURN a, e, p LIMIT 1""", Map.of("job", string(job.id())));
    assertEquals(1, a.rows().size(), "the circuit has a path of two edges");
    Map<String, Value> node = fields(a.rows().get(0).get(0));
    assertEquals(List.of(string("Feature")), node.get("labels").getListValue().getValuesList());
    assertEquals(job.job().getSpec().getRef().getModel(), fields(node.get("properties")).get("model").getStringValue());
    assertTrue(!node.get("id").getStringValue().isEmpty());

    Map<String, Value> rel = fields(a.rows().get(0).get(1));
    assertEquals("EFFECT", rel.get("type").getStringValue());
    assertEquals(node.get("id"), rel.get("start"));
    assertEquals(job.id(), fields(rel.get("properties")).get("job").getStringValue());
    assertTrue(fields(rel.get("properties")).get("circuit").getBoolValue());

    Map<String, Value> path = fields(a.rows().get(0).get(2));
    List<Value> nodes = path.get("nodes").getListValue().getValuesList(), rels = path.get("relationships").getListValue().getValuesList();
    assertEquals(3, nodes.size());
    assertEquals(2, rels.size());
    assertEquals(a.rows().get(0).get(0), nodes.get(0));
    assertEquals(a.rows().get(0).get(1), rels.get(0));
    assertEquals(fields(nodes.get(1)).get("id"), fields(rels.get(1)).get("start"));
  }

  @Test
  void limitCapsTheRowsAndDefaultsToAThousand() {
    String cypher = "UNWIND range(1, 1500) AS x RETURN x";
    assertEquals(7, query(QueryRequest.newBuilder().setCypher(cypher).setLimit(7).build()).rows().size());
    Answer all = query(QueryRequest.newBuilder().setCypher(cypher).build());
    assertEquals(1000, all.rows().size());
    assertEquals(1000.0, all.rows().get(999).get(0).getNumberValue());
    refused(Status.Code.INVALID_ARGUMENT, "limit", () -> query(QueryRequest.newBuilder().setCypher(cypher).setLimit(-1).build()));
  }

  @Test
  void noRequestGetsMoreRowsOrTimeThanTheServiceAllows() {
    String cypher = "UNWIND range(1, 10000) AS x RETURN x";
    assertEquals(MAX_ROWS, query(QueryRequest.newBuilder().setCypher(cypher).setLimit(MAX_ROWS).build()).rows().size());
    refused(Status.Code.INVALID_ARGUMENT, "resgraph.cypher.max-rows",
        () -> query(QueryRequest.newBuilder().setCypher(cypher).setLimit(MAX_ROWS + 1).build()));
    refused(Status.Code.INVALID_ARGUMENT, "resgraph.cypher.max-timeout",
        () -> query(QueryRequest.newBuilder().setCypher(cypher).setTimeoutMs(MAX_TIMEOUT_MS + 1).build()));
  }

  @Test
  void aQueryThatRunsTooLongIsStopped() {
    refused(Status.Code.DEADLINE_EXCEEDED, "timeout", () -> query(QueryRequest.newBuilder()
        .setCypher("UNWIND range(1, 2000000000) AS x WITH x WHERE x % 7 = 99 RETURN count(x)").setTimeoutMs(300).build()));
  }

  @Test
  void writesAreRefusedAndChangeNothing() {
    String snapshot = """
        MATCH (j:Job {id: $job})
        OPTIONAL MATCH ()-[e:EFFECT {job: $job}]->()
        WITH j, count(e) AS edges, sum(e.weight) AS weight, sum(CASE WHEN e.circuit THEN 1 ELSE 0 END) AS circuit
        CALL { MATCH (n) RETURN count(n) AS nodes }
        CALL { MATCH ()-[r]->() RETURN count(r) AS relationships }
        RETURN j.prompt AS prompt, edges, weight, circuit, nodes, relationships""";
    Record before = snapshot(snapshot);
    for (String write : List.of(
        "CREATE (:Intruder {at: 1})",
        "MERGE (f:Feature {model: 'm', saes: 's', layer: 0, latent: 0}) RETURN f",
        "MATCH (j:Job {id: $job}) SET j.prompt = 'overwritten'",
        "MATCH ()-[e:EFFECT {job: $job}]->() SET e.weight = 0",
        "MATCH (j:Job {id: $job}) DETACH DELETE j",
        "MATCH (a)-[e:EFFECT {job: $job}]->(b) DELETE e",
        "CREATE INDEX intruder IF NOT EXISTS FOR (n:Intruder) ON (n.at)")) {
      refused(Status.Code.INVALID_ARGUMENT, "read-only", () -> query(write, Map.of("job", string(job.id()))));
      refused(Status.Code.INVALID_ARGUMENT, "tried to write", () -> query(write, Map.of("job", string(job.id()))));
    }
    assertEquals(before, snapshot(snapshot));
    assertEquals(RealJob.PROMPT, snapshot(snapshot).get("prompt").asString());
  }

  private static Record snapshot(String cypher) {
    try (Session s = cluster.neo4j.session()) {
      return s.run(cypher, Map.of("job", job.id())).single();
    }
  }

  @Test
  void aSyntaxErrorIsInvalidWithNeo4jsMessage() {
    refused(Status.Code.INVALID_ARGUMENT, "Invalid input", () -> query("MATCH (n RETURN n", Map.of()));
    refused(Status.Code.INVALID_ARGUMENT, "cypher is empty", () -> query(" ", Map.of()));
  }
}
