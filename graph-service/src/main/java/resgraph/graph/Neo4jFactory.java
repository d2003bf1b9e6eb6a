package resgraph.graph;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Singleton;
import java.util.concurrent.TimeUnit;
import org.neo4j.driver.AuthToken;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Logging;

/**
 * The Neo4j driver, from {@code neo4j.uri} (bolt://host:port). The local cluster's Neo4j has
 * authentication off; a production one takes {@code neo4j.user} and {@code neo4j.password}.
 * {@code neo4j.max-retry-seconds} (30) bounds the driver's own retries of a transaction.
 */
@Factory
final class Neo4jFactory {

  @Singleton
  @Bean(preDestroy = "close")
  Driver driver(
      @Value("${neo4j.uri}") String uri,
      @Value("${neo4j.user:}") String user,
      @Value("${neo4j.password:}") String password,
      @Value("${neo4j.max-retry-seconds:30}") int maxRetrySeconds) {
    AuthToken auth = user.isEmpty() ? AuthTokens.none() : AuthTokens.basic(user, password);
    Config config = Config.builder()
        .withLogging(Logging.slf4j())
        .withConnectionTimeout(10, TimeUnit.SECONDS)
        // how long executeRead/executeWrite retry transient failures (an unreachable server, deadlocks)
        .withMaxTransactionRetryTime(maxRetrySeconds, TimeUnit.SECONDS)
        .build();
    return GraphDatabase.driver(uri, auth, config);
  }
}
