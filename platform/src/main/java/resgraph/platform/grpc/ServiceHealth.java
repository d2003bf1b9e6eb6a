package resgraph.platform.grpc;

import io.grpc.BindableService;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.protobuf.services.HealthStatusManager;
import io.micronaut.context.annotation.Context;
import io.micronaut.context.annotation.Requires;
import io.micronaut.runtime.event.annotation.EventListener;
import io.micronaut.runtime.server.event.ServerStartupEvent;
import java.util.List;

/**
 * What the standard gRPC health service answers for a server, under the empty name and under each
 * service's own name ("resgraph.v1.ModelService"): SERVING once the server listens and every
 * {@link Readiness} of its context is ready, NOT_SERVING until then. A readiness that changes says
 * so with {@link #refresh}. Kubernetes probes and the local cluster read it.
 */
@Context // from the context's start, so nothing reads SERVING before the server is ready
@Requires(beans = HealthStatusManager.class)
public final class ServiceHealth {

  /** Something a server must have done before it serves, such as loading its model. */
  public interface Readiness {
    boolean ready();
  }

  private final HealthStatusManager health;
  private final List<String> services;
  private final List<Readiness> readiness;
  private volatile boolean listening;

  ServiceHealth(HealthStatusManager health, List<BindableService> services, List<Readiness> readiness) {
    this.health = health;
    this.services = services.stream().map(s -> s.bindService().getServiceDescriptor().getName()).toList();
    this.readiness = readiness;
    refresh();
  }

  @EventListener
  void started(ServerStartupEvent event) {
    listening = true;
    refresh();
  }

  /** Sets every name's status from the readiness now. */
  public synchronized void refresh() {
    ServingStatus status = listening && readiness.stream().allMatch(Readiness::ready) ? ServingStatus.SERVING
        : ServingStatus.NOT_SERVING;
    health.setStatus("", status);
    for (String service : services) health.setStatus(service, status);
  }
}
