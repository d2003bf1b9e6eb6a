package resgraph.k8s;

import io.micronaut.grpc.server.GrpcServerConfiguration;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import resgraph.graph.CypherConfig;
import resgraph.graph.GraphConfig;
import resgraph.graph.GraphServer;
import resgraph.graph.Neo4jConfig;
import resgraph.modelserver.ModelFilesConfig;
import resgraph.modelserver.ModelServer;
import resgraph.modelserver.ModelServerConfig;
import resgraph.orchestrator.CorpusConfig;
import resgraph.orchestrator.FinalizationConfig;
import resgraph.orchestrator.Orchestrator;
import resgraph.platform.grpc.HealthPort;
import resgraph.platform.grpc.SecurityConfig;
import resgraph.platform.grpc.UpstreamChannels;
import resgraph.platform.kafka.KafkaConfig;
import resgraph.worker.AblationWorker;
import resgraph.worker.WorkerConfig;

/**
 * The four resgraph services as the image runs them: the component name a pod gives the image's
 * entrypoint, the main class, and the classes whose configuration each one reads (a
 * {@code @ConfigurationProperties} record, or a bean taking {@code @Value} properties).
 * {@link ConfigurationTest} holds this table to the compiled classes: every class of a service's
 * module or of the platform that reads configuration is in it.
 */
enum Services {
  MODEL_SERVER("model-server", ModelServer.class, ModelServerConfig.class, ModelFilesConfig.class, GrpcServerConfiguration.class),
  ABLATION_WORKER("ablation-worker", AblationWorker.class, WorkerConfig.class, KafkaConfig.class, UpstreamChannels.ModelServerAddress.class),
  GRAPH_SERVICE("graph-service", GraphServer.class, GraphConfig.class, Neo4jConfig.class, CypherConfig.class, KafkaConfig.class,
      GrpcServerConfiguration.class),
  ORCHESTRATOR("orchestrator", Orchestrator.class, CorpusConfig.class, FinalizationConfig.class, KafkaConfig.class,
      UpstreamChannels.ModelServerAddress.class, UpstreamChannels.GraphServiceAddress.class, GrpcServerConfiguration.class);

  /** What every service reads: its gRPC's security, and the plaintext health port of its probes. */
  static final List<Class<?>> EVERY_SERVICE = List.of(SecurityConfig.class, HealthPort.class);

  final String component;
  final Class<?> main;
  private final List<Class<?>> own;

  Services(String component, Class<?> main, Class<?>... own) {
    this.component = component;
    this.main = main;
    this.own = List.of(own);
  }

  List<Class<?>> reads() {
    return Stream.concat(own.stream(), EVERY_SERVICE.stream()).toList();
  }

  /** Whether it serves gRPC (and so holds a certificate and its key). */
  boolean servesGrpc() {
    return own.contains(GrpcServerConfiguration.class);
  }

  static Optional<Services> byComponent(String component) {
    return Stream.of(values()).filter(s -> s.component.equals(component)).findFirst();
  }
}
