package resgraph.graph;

import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.time.temporal.TemporalAccessor;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.neo4j.driver.types.IsoDuration;
import org.neo4j.driver.types.Node;
import org.neo4j.driver.types.Path;
import org.neo4j.driver.types.Point;
import org.neo4j.driver.types.Relationship;

/** Between google.protobuf values (Query's parameters and rows) and Cypher values. */
final class CypherValues {

  /** Doubles hold integers exactly up to here; a whole number within it is passed to Cypher as an integer. */
  private static final double EXACT_INTEGERS = 9007199254740992d; // 2^53

  private CypherValues() {}

  /**
   * Query parameters. JSON has one number type; a whole number becomes a Cypher integer, so that
   * {@code LIMIT $n} and comparisons with integer properties work, any other number a float.
   */
  static Map<String, Object> parameters(Struct struct) {
    Map<String, Object> out = new LinkedHashMap<>();
    struct.getFieldsMap().forEach((k, v) -> out.put(k, fromProto(v)));
    return out;
  }

  private static Object fromProto(Value v) {
    return switch (v.getKindCase()) {
      case NULL_VALUE, KIND_NOT_SET -> null;
      case BOOL_VALUE -> v.getBoolValue();
      case STRING_VALUE -> v.getStringValue();
      case NUMBER_VALUE -> {
        double d = v.getNumberValue();
        yield d == Math.rint(d) && Math.abs(d) <= EXACT_INTEGERS ? (Object) (long) d : (Object) d;
      }
      case LIST_VALUE -> v.getListValue().getValuesList().stream().map(CypherValues::fromProto).toList();
      case STRUCT_VALUE -> parameters(v.getStructValue());
    };
  }

  /**
   * A value of a result row (as the driver's {@code Value.asObject()} gives it). Nodes become
   * {"id", "labels", "properties"}, relationships {"id", "type", "start", "end", "properties"}
   * (ids are element ids), paths {"nodes", "relationships"}; integers become numbers (exact to
   * 2^53), temporal values and durations ISO-8601 strings, byte arrays base64 strings, points
   * {"srid", "x", "y"[, "z"]}.
   */
  static Value toProto(Object o) {
    if (o == null) return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
    if (o instanceof Boolean b) return Value.newBuilder().setBoolValue(b).build();
    if (o instanceof Number n) return Value.newBuilder().setNumberValue(n.doubleValue()).build();
    if (o instanceof String s) return string(s);
    if (o instanceof List<?> list) return list(list);
    if (o instanceof Map<?, ?> map) return struct(map);
    if (o instanceof Node node) return node(node);
    if (o instanceof Relationship rel) return relationship(rel);
    if (o instanceof Path path) {
      List<Value> nodes = new ArrayList<>(), rels = new ArrayList<>();
      path.nodes().forEach(n -> nodes.add(node(n)));
      path.relationships().forEach(r -> rels.add(relationship(r)));
      return struct(Map.of("nodes", listValue(nodes), "relationships", listValue(rels)));
    }
    if (o instanceof byte[] bytes) return string(Base64.getEncoder().encodeToString(bytes));
    if (o instanceof Point p) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("srid", p.srid());
      m.put("x", p.x());
      m.put("y", p.y());
      if (!Double.isNaN(p.z())) m.put("z", p.z());
      return struct(m);
    }
    if (o instanceof TemporalAccessor || o instanceof IsoDuration) return string(o.toString());
    return string(String.valueOf(o));
  }

  private static Value node(Node n) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", n.elementId());
    List<Object> labels = new ArrayList<>();
    n.labels().forEach(labels::add);
    m.put("labels", labels);
    m.put("properties", n.asMap());
    return struct(m);
  }

  private static Value relationship(Relationship r) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", r.elementId());
    m.put("type", r.type());
    m.put("start", r.startNodeElementId());
    m.put("end", r.endNodeElementId());
    m.put("properties", r.asMap());
    return struct(m);
  }

  private static Value struct(Map<?, ?> map) {
    Struct.Builder s = Struct.newBuilder();
    map.forEach((k, v) -> s.putFields(String.valueOf(k), v instanceof Value pv ? pv : toProto(v)));
    return Value.newBuilder().setStructValue(s).build();
  }

  private static Value list(List<?> list) {
    return listValue(list.stream().map(CypherValues::toProto).toList());
  }

  private static Value listValue(List<Value> values) {
    return Value.newBuilder().setListValue(ListValue.newBuilder().addAllValues(values)).build();
  }

  private static Value string(String s) {
    return Value.newBuilder().setStringValue(s).build();
  }
}
