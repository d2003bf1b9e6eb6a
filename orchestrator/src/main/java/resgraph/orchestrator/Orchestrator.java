package resgraph.orchestrator;

import io.micronaut.runtime.Micronaut;

/**
 * The orchestrator's process: JobService over gRPC on {@code grpc.server.port}, the job-event
 * loop and the finalizer, with jobs restored from Kafka before the first call is answered.
 * Properties (as -D or environment variables): {@code kafka.bootstrap.servers},
 * {@code resgraph.model-server.address} and {@code resgraph.graph-service.address} (host:port),
 * {@code resgraph.kafka.replication-factor} (default 1).
 */
public final class Orchestrator {

  private Orchestrator() {}

  public static void main(String[] args) {
    Micronaut.run(Orchestrator.class, args);
  }
}
