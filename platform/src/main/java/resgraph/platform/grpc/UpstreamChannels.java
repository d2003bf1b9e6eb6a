package resgraph.platform.grpc;

import io.grpc.ManagedChannel;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.context.annotation.Factory;
import io.micronaut.core.annotation.Nullable;
import jakarta.inject.Named;
import jakarta.inject.Singleton;

/**
 * The channels to the services a service calls, each from its address property. Named: micronaut-grpc
 * has a ManagedChannel of its own (to the server of its context).
 */
@Factory
public final class UpstreamChannels {

  /** @param address {@code resgraph.model-server.address}: host:port, or a gRPC target such as dns:///name:port */
  @ConfigurationProperties("resgraph.model-server")
  public record ModelServerAddress(@Nullable String address) {
    public ModelServerAddress {
      required("resgraph.model-server.address", address);
    }
  }

  /** @param address {@code resgraph.graph-service.address}: host:port, or a gRPC target */
  @ConfigurationProperties("resgraph.graph-service")
  public record GraphServiceAddress(@Nullable String address) {
    public GraphServiceAddress {
      required("resgraph.graph-service.address", address);
    }
  }

  @Singleton
  @Named("model-server")
  @Bean(preDestroy = "shutdownNow")
  ManagedChannel modelServer(ModelServerAddress config, SecurityConfig security) {
    return GrpcChannels.open(config.address(), security.client());
  }

  @Singleton
  @Named("graph-service")
  @Bean(preDestroy = "shutdownNow")
  ManagedChannel graphService(GraphServiceAddress config, SecurityConfig security) {
    return GrpcChannels.open(config.address(), security.client());
  }

  private static void required(String property, String address) {
    if (address == null || address.isBlank()) throw new IllegalArgumentException("set " + property + " (host:port)");
  }
}
