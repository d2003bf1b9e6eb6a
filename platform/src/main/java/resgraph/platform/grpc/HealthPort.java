package resgraph.platform.grpc;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micronaut.context.annotation.Context;
import io.micronaut.context.annotation.Requires;
import io.micronaut.context.annotation.Value;
import io.micronaut.context.event.StartupEvent;
import io.micronaut.runtime.event.annotation.EventListener;
import jakarta.annotation.PreDestroy;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The standard gRPC health service alone, plaintext, on {@code resgraph.health.port}: Kubernetes'
 * gRPC probes can neither speak TLS nor send a token, and a worker has no gRPC server of its own.
 * A service with a gRPC server answers here what its server's health service answers
 * ({@link ServiceHealth}); one without answers SERVING once its context has started (a listener
 * that fails ends the process, so a live one is a working one).
 */
@Context
@Requires(property = "resgraph.health.port")
public final class HealthPort {

  private final Server server;
  private final HealthStatusManager own;

  HealthPort(@Value("${resgraph.health.port}") int port, Optional<HealthStatusManager> servers) {
    own = servers.isPresent() ? null : new HealthStatusManager();
    if (own != null) own.setStatus("", ServingStatus.NOT_SERVING);
    server = Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create())
        .addService(servers.orElse(own).getHealthService()).build();
    try {
      server.start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot serve health checks on resgraph.health.port " + port, e);
    }
  }

  @EventListener
  void started(StartupEvent event) {
    if (own != null) own.setStatus("", ServingStatus.SERVING);
  }

  /** Waits for the port to close, so that a closed service answers no probe and its port can be reused at once. */
  @PreDestroy
  void stop() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
