/**
 * The graph service: every job's raw edges, circuits and annotations in Neo4j (this package, which
 * knows nothing of gRPC or Kafka), served by {@link resgraph.graph.grpc.GraphEndpoint}, filled by
 * {@link resgraph.graph.kafka.EffectsListener}, browsed through {@link resgraph.graph.http.CircuitBrowser}.
 *
 * <p>Its beans are enabled by {@code resgraph.graph.enabled}, which {@link resgraph.graph.GraphServer} sets.
 */
@Configuration
@Requires(property = "resgraph.graph.enabled", value = "true")
package resgraph.graph;

import io.micronaut.context.annotation.Configuration;
import io.micronaut.context.annotation.Requires;
