package resgraph.modelserver;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.server.event.ServerStartupEvent;
import io.micronaut.runtime.event.annotation.EventListener;
import jakarta.inject.Singleton;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ServiceApplication;

/**
 * The model server's process: ModelService over gRPC on {@code grpc.server.port} (with reflection
 * and the standard health service), configured by {@link ModelServerConfig} and
 * {@link ModelFilesConfig}. {@code resgraph model-server} starts the same application with
 * properties from its options.
 */
@Singleton
public final class ModelServer {

  static final String SERVICE = "model-server";

  private static final Logger LOG = LoggerFactory.getLogger(ModelServer.class);

  private final ModelRequests requests;
  private final ModelServerConfig config;

  ModelServer(ModelRequests requests, ModelServerConfig config) {
    this.requests = requests;
    this.config = config;
  }

  public static void main(String[] args) {
    ServiceApplication.run(ModelServer.class, SERVICE, args);
  }

  /**
   * Starts the model server in this JVM with these properties and returns at once (its gRPC server
   * listening unless {@code grpc.server.enabled} is false); the caller closes the context.
   */
  public static ApplicationContext start(Map<String, Object> properties) {
    return ServiceApplication.start(ModelServer.class, SERVICE, properties);
  }

  /** Loads the pair {@code preload-model} names once the server listens, so that the first job does not wait for it. */
  @EventListener
  void preload(ServerStartupEvent started) {
    config.preload().ifPresent(ref -> {
      LOG.info("loading {} with SAEs {}", ref.getModel(), ref.getSaes());
      requests.describe(ref);
    });
    LOG.info("model server listening on port {}", started.getSource().getPort());
  }
}
