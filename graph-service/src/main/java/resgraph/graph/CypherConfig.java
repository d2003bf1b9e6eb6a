package resgraph.graph;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;
import java.time.Duration;

/**
 * How much one user query may take (gRPC Query, the browser's /api/cypher, ./resgraph cypher): a
 * request may ask for fewer rows or less time than these, never more, so that no client can make
 * Neo4j stream a whole store or hold a transaction open for hours.
 *
 * @param maxRows {@code resgraph.cypher.max-rows} (1000000): the most rows a query returns
 * @param maxTimeout {@code resgraph.cypher.max-timeout} (10m): the longest a query runs
 */
@ConfigurationProperties("resgraph.cypher")
public record CypherConfig(
    @Bindable(defaultValue = "1000000") int maxRows,
    @Bindable(defaultValue = "10m") Duration maxTimeout) {

  public CypherConfig {
    if (maxRows < 1) throw new IllegalArgumentException("resgraph.cypher.max-rows must be at least 1, not " + maxRows);
    if (maxTimeout.isNegative() || maxTimeout.isZero()) {
      throw new IllegalArgumentException("resgraph.cypher.max-timeout must be positive, not " + maxTimeout);
    }
  }
}
