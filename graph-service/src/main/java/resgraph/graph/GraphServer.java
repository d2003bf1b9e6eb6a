package resgraph.graph;

import io.micronaut.context.ApplicationContext;
import java.util.Map;
import resgraph.platform.ServiceApplication;

/**
 * The graph service's process: GraphService over gRPC on {@code grpc.server.port}, the effects
 * listener on Kafka, the graph in Neo4j ({@link Neo4jConfig}), and the circuit browser over HTTP
 * ({@link GraphConfig}).
 */
public final class GraphServer {

  static final String SERVICE = "graph";

  private GraphServer() {}

  public static void main(String[] args) {
    ServiceApplication.run(GraphServer.class, SERVICE, args);
  }

  /** Starts the graph service in this JVM with these properties and returns at once; the caller closes the context. */
  public static ApplicationContext start(Map<String, Object> properties) {
    return ServiceApplication.start(GraphServer.class, SERVICE, properties);
  }
}
