package resgraph.graph;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.Micronaut;

/**
 * The graph service: GraphService over gRPC on {@code grpc.server.port}, the effects consumer on
 * {@code kafka.bootstrap.servers}, the graph in Neo4j at {@code neo4j.uri} (with {@code neo4j.user}
 * and {@code neo4j.password} when it asks for them), and the model server at
 * {@code resgraph.model-server.address} for Finalize's logit effects. Each is a property (-D, or an
 * environment variable such as NEO4J_URI).
 */
public final class GraphServer {

  private GraphServer() {}

  public static void main(String[] args) {
    // The service's beans require neo4j.uri (so that a JVM embedding another resgraph server skips
    // them): without it this process would serve nothing, so it refuses to start.
    try (ApplicationContext probe = ApplicationContext.builder(GraphServer.class).args(args).build()) {
      if (!probe.getEnvironment().start().containsProperty("neo4j.uri")) {
        System.err.println("graph-service: set neo4j.uri (-Dneo4j.uri=bolt://host:port, or NEO4J_URI)");
        System.exit(2);
      }
    }
    Micronaut.run(GraphServer.class, args);
  }
}
