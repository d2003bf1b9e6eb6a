package resgraph.modelserver;

import io.micronaut.context.ApplicationContext;
import java.util.Map;
import resgraph.platform.ServiceApplication;

/**
 * The model server's process: ModelService over gRPC on {@code grpc.server.port} (with reflection
 * and the standard health service), configured by {@link ModelServerConfig} and
 * {@link ModelFilesConfig}. {@code resgraph model-server} starts the same application with
 * properties from its options.
 */
public final class ModelServer {

  static final String SERVICE = "model-server";

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
}
