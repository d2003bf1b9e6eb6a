package resgraph.graph;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;
import java.util.concurrent.TimeUnit;
import org.neo4j.driver.AuthToken;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Logging;
import org.neo4j.driver.exceptions.ServiceUnavailableException;
import org.neo4j.driver.exceptions.SessionExpiredException;
import resgraph.platform.ResgraphException;

/** The Neo4j driver, from {@link Neo4jConfig}, and what its failures mean to the graph service's callers. */
@Factory
public final class Neo4jFactory {

  @Singleton
  @Bean(preDestroy = "close")
  Driver driver(Neo4jConfig config) {
    AuthToken auth = config.user() == null || config.user().isEmpty() ? AuthTokens.none()
        : AuthTokens.basic(config.user(), config.secret());
    Config driverConfig = Config.builder()
        .withLogging(Logging.slf4j())
        .withConnectionTimeout(10, TimeUnit.SECONDS)
        // how long executeRead/executeWrite retry transient failures (an unreachable server, deadlocks)
        .withMaxTransactionRetryTime(config.maxRetrySeconds(), TimeUnit.SECONDS)
        .build();
    return GraphDatabase.driver(config.uri(), auth, driverConfig);
  }

  /** Neo4j out of reach, as a problem a caller can act on (try again later); null for any other failure. */
  public static ResgraphException unreachable(RuntimeException e) {
    if (e instanceof ServiceUnavailableException || e instanceof SessionExpiredException) {
      return ResgraphException.unavailable("Neo4j is unreachable: " + e.getMessage(), e);
    }
    return null;
  }
}
