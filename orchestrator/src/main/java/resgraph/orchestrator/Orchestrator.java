package resgraph.orchestrator;

import io.micronaut.context.ApplicationContext;
import java.util.Map;
import resgraph.platform.ServiceApplication;

/**
 * The orchestrator's process: JobService over gRPC on {@code grpc.server.port}, the job-event
 * listener and the finalization, with jobs restored from Kafka before the first call is answered.
 * It needs {@code kafka.bootstrap.servers}, {@code resgraph.model-server.address} and
 * {@code resgraph.graph-service.address}. Run exactly one at a time: its jobs are in memory,
 * rebuilt from resgraph.jobs at start; two would overwrite each other's records.
 */
public final class Orchestrator {

  static final String SERVICE = "orchestrator";

  private Orchestrator() {}

  public static void main(String[] args) {
    ServiceApplication.run(Orchestrator.class, SERVICE, args);
  }

  /** Starts the orchestrator in this JVM with these properties and returns at once; the caller closes the context. */
  public static ApplicationContext start(Map<String, Object> properties) {
    return ServiceApplication.start(Orchestrator.class, SERVICE, properties);
  }
}
