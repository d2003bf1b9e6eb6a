/**
 * The model server as a service: {@link resgraph.modelserver.grpc.ModelEndpoint} (gRPC ModelService)
 * over {@link resgraph.modelserver.ModelRequests}, the resident pairs, the trace cache and where
 * models come from. {@code resgraph.model.*} is the model itself and knows nothing of this.
 *
 * <p>Its beans are enabled by {@code resgraph.model-server.enabled}, which {@link
 * resgraph.modelserver.ModelServer} sets, so a JVM that runs another resgraph service beside these
 * classes does not start them.
 */
@Configuration
@Requires(property = "resgraph.model-server.enabled", value = "true")
package resgraph.modelserver;

import io.micronaut.context.annotation.Configuration;
import io.micronaut.context.annotation.Requires;
