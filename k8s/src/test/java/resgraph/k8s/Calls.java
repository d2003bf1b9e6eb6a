package resgraph.k8s;

import io.micronaut.grpc.server.GrpcServerConfiguration;
import java.util.List;

/**
 * docs/ARCHITECTURE.md's flows, as the manifests must allow them: each call of one component on
 * another, through the variable that holds the callee's address; and the ports users reach.
 */
final class Calls {

  /** {@code caller} reaches {@code callee} (pods labelled app.kubernetes.io/name=callee) at the address in {@code variable}. */
  record Call(Services caller, String variable, String callee) {}

  /** A port users reach from anywhere: a property of the service that serves it. */
  record UserPort(Services service, String property) {}

  static final List<Call> CALLS = List.of(
      // Ablate; tasks in, effects and dead letters out
      new Call(Services.ABLATION_WORKER, "RESGRAPH_MODEL_SERVER_ADDRESS", "model-server"),
      new Call(Services.ABLATION_WORKER, "KAFKA_BOOTSTRAP_SERVERS", "kafka"),
      // Describe, Tokenize, Trace, LogitEffects; RegisterJob, Prune, AddToCorpus, Annotate; tasks out, job events in, resgraph.jobs
      new Call(Services.ORCHESTRATOR, "RESGRAPH_MODEL_SERVER_ADDRESS", "model-server"),
      new Call(Services.ORCHESTRATOR, "RESGRAPH_GRAPH_SERVICE_ADDRESS", "graph-service"),
      new Call(Services.ORCHESTRATOR, "KAFKA_BOOTSTRAP_SERVERS", "kafka"),
      // effects in, job events out; candidates, circuits and statistics into Neo4j
      new Call(Services.GRAPH_SERVICE, "KAFKA_BOOTSTRAP_SERVERS", "kafka"),
      new Call(Services.GRAPH_SERVICE, "NEO4J_URI", "neo4j"));

  /** JobService for clients; GraphService and the circuit browser for clients and browsers. */
  static final List<UserPort> USER_PORTS = List.of(
      new UserPort(Services.ORCHESTRATOR, GrpcServerConfiguration.PORT),
      new UserPort(Services.GRAPH_SERVICE, GrpcServerConfiguration.PORT),
      new UserPort(Services.GRAPH_SERVICE, "resgraph.http.port"));

  private Calls() {}
}
