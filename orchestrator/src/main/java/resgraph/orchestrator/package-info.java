/**
 * The orchestrator: JobService, the job-event loop, the finalizer and the job store.
 *
 * <p>{@code resgraph.orchestrator.enabled=false} switches every bean here off, for a JVM whose
 * classpath holds this package but which runs another resgraph service (as the tests do, with a
 * model server in the same JVM).
 */
@Configuration
@Requires(property = "resgraph.orchestrator.enabled", notEquals = "false")
package resgraph.orchestrator;

import io.micronaut.context.annotation.Configuration;
import io.micronaut.context.annotation.Requires;
