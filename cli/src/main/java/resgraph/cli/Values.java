package resgraph.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ListValue;
import com.google.protobuf.NullValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;

/** google.protobuf.Value and JSON, both ways. */
final class Values {

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private Values() {}

  static JsonNode toJson(Value v) {
    return switch (v.getKindCase()) {
      case NUMBER_VALUE -> {
        double d = v.getNumberValue();
        yield d == Math.rint(d) && Math.abs(d) < 1e15 ? JSON.numberNode((long) d) : JSON.numberNode(d);
      }
      case STRING_VALUE -> JSON.textNode(v.getStringValue());
      case BOOL_VALUE -> JSON.booleanNode(v.getBoolValue());
      case STRUCT_VALUE -> {
        ObjectNode o = JSON.objectNode();
        v.getStructValue().getFieldsMap().forEach((k, x) -> o.set(k, toJson(x)));
        yield o;
      }
      case LIST_VALUE -> {
        ArrayNode a = JSON.arrayNode();
        v.getListValue().getValuesList().forEach(x -> a.add(toJson(x)));
        yield a;
      }
      default -> JSON.nullNode();
    };
  }

  static Value fromJson(JsonNode n) {
    if (n.isNumber()) return Value.newBuilder().setNumberValue(n.asDouble()).build();
    if (n.isTextual()) return Value.newBuilder().setStringValue(n.asText()).build();
    if (n.isBoolean()) return Value.newBuilder().setBoolValue(n.asBoolean()).build();
    if (n.isArray()) {
      ListValue.Builder l = ListValue.newBuilder();
      n.forEach(x -> l.addValues(fromJson(x)));
      return Value.newBuilder().setListValue(l).build();
    }
    if (n.isObject()) {
      Struct.Builder s = Struct.newBuilder();
      n.fields().forEachRemaining(e -> s.putFields(e.getKey(), fromJson(e.getValue())));
      return Value.newBuilder().setStructValue(s).build();
    }
    return Value.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
  }
}
