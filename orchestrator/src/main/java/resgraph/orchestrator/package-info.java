/**
 * The orchestrator: jobs, from Submit to their finalized circuit. This package is the domain and
 * knows nothing of gRPC or Kafka: {@link resgraph.orchestrator.Submission} plans and queues a job,
 * {@link resgraph.orchestrator.JobStore} holds every job, {@link resgraph.orchestrator.JobLifecycle}
 * says how one changes, {@link resgraph.orchestrator.Finalization} makes its circuit. It reaches the
 * model server, the graph service and Kafka through {@link resgraph.orchestrator.ModelServerCalls},
 * {@link resgraph.orchestrator.GraphServiceCalls}, {@link resgraph.orchestrator.TaskQueue} and
 * {@link resgraph.orchestrator.JobRecordLog}, which {@code grpc} and {@code kafka} implement.
 *
 * <p>Its beans are enabled by {@code resgraph.orchestrator.enabled}, which {@link
 * resgraph.orchestrator.Orchestrator} sets.
 */
@Configuration
@Requires(property = "resgraph.orchestrator.enabled", value = "true")
package resgraph.orchestrator;

import io.micronaut.context.annotation.Configuration;
import io.micronaut.context.annotation.Requires;
