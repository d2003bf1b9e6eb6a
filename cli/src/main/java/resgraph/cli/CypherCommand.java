package resgraph.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.ManagedChannel;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;

/** {@code resgraph cypher}: read-only Cypher over every stored job, through the graph service. */
@Command(name = "cypher", mixinStandardHelpOptions = true,
    description = "Run a read-only Cypher query over the stored graphs and print the rows.")
final class CypherCommand implements Callable<Integer> {

  @Mixin ClusterDir dir;

  @Parameters(index = "0", paramLabel = "QUERY", description = "e.g. \"MATCH (j:Job) RETURN j.id, j.prompt\"")
  String query;

  @Option(names = "--param", paramLabel = "NAME=JSON",
      description = "A query parameter, its value as JSON (a bare word is a string), e.g. --param layer=5.")
  Map<String, String> params = Map.of();

  @Option(names = "--limit", defaultValue = "1000", description = "At most this many rows (default: ${DEFAULT-VALUE}).")
  int limit;

  @Option(names = "--json", description = "Print the rows as a JSON array of objects.")
  boolean json;

  @Option(names = "--graph", paramLabel = "HOST:PORT", description = "A graph service other than the local cluster's.")
  String graph;

  @Override
  public Integer call() throws Exception {
    String address = graph != null ? graph : dir.running(", or give --graph").endpoints().graphService();
    ManagedChannel channel = GrpcChannels.open(address, dir.credentials());
    try {
      QueryRequest.Builder req = QueryRequest.newBuilder().setCypher(query).setLimit(limit).setParameters(parameters());
      List<String> columns = List.of();
      List<List<Value>> rows = new ArrayList<>();
      for (Iterator<QueryRow> it = GraphServiceGrpc.newBlockingStub(channel).query(req.build()); it.hasNext(); ) {
        QueryRow row = it.next();
        if (row.getColumnsCount() > 0) columns = row.getColumnsList();
        else rows.add(row.getValuesList());
      }
      print(columns, rows);
      return 0;
    } finally {
      GrpcChannels.close(channel);
    }
  }

  private Struct parameters() {
    Struct.Builder s = Struct.newBuilder();
    ObjectMapper m = new ObjectMapper();
    params.forEach((name, text) -> {
      JsonNode v;
      try {
        v = m.readTree(text);
      } catch (Exception notJson) {
        v = JsonNodeFactory.instance.textNode(text);
      }
      s.putFields(name, Values.fromJson(v));
    });
    return s.build();
  }

  private void print(List<String> columns, List<List<Value>> rows) throws Exception {
    if (json) {
      ObjectMapper m = new ObjectMapper();
      ArrayNode out = m.createArrayNode();
      for (List<Value> row : rows) {
        ObjectNode o = out.addObject();
        for (int i = 0; i < columns.size(); i++) o.set(columns.get(i), Values.toJson(row.get(i)));
      }
      System.out.println(m.writerWithDefaultPrettyPrinter().writeValueAsString(out));
      return;
    }
    List<List<String>> cells = new ArrayList<>();
    cells.add(columns);
    for (List<Value> row : rows) cells.add(row.stream().map(v -> Values.toJson(v).toString()).toList());
    int[] width = new int[columns.size()];
    for (List<String> r : cells) for (int i = 0; i < r.size(); i++) width[i] = Math.min(60, Math.max(width[i], r.get(i).length()));
    for (List<String> r : cells) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < r.size(); i++) {
        String c = r.get(i).length() > width[i] ? r.get(i).substring(0, width[i] - 1) + "…" : r.get(i);
        line.append(String.format("%-" + width[i] + "s  ", c));
      }
      System.out.println(line.toString().stripTrailing());
    }
    System.out.println("(" + rows.size() + " row" + (rows.size() == 1 ? "" : "s") + ")");
  }
}
