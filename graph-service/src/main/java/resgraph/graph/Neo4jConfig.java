package resgraph.graph;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The Neo4j the graph lives in, under {@code neo4j.*} (env NEO4J_URI, ...).
 *
 * @param uri {@code neo4j.uri}, bolt://host:port; required
 * @param user {@code neo4j.user}: none for a Neo4j with authentication off
 * @param password {@code neo4j.password}
 * @param passwordFile {@code neo4j.password-file}: a file holding the password instead (a mounted
 *     Secret, the local cluster's), so it is in no command line, environment or log
 * @param maxRetrySeconds {@code neo4j.max-retry-seconds} (30): how long the driver retries a transaction that failed transiently
 */
@ConfigurationProperties("neo4j")
public record Neo4jConfig(
    @Nullable String uri,
    @Nullable String user,
    @Nullable String password,
    @Nullable String passwordFile,
    @Bindable(defaultValue = "30") int maxRetrySeconds) {

  public Neo4jConfig {
    if (uri == null || uri.isBlank()) throw new IllegalArgumentException("set neo4j.uri (-Dneo4j.uri=bolt://host:port, or NEO4J_URI)");
    if (maxRetrySeconds < 0) throw new IllegalArgumentException("neo4j.max-retry-seconds must not be negative, not " + maxRetrySeconds);
    if (password != null && passwordFile != null) throw new IllegalArgumentException("set neo4j.password or neo4j.password-file, not both");
  }

  /** The password, read from its file when it is in one; "" when none is set. */
  String secret() {
    if (passwordFile == null) return password == null ? "" : password;
    try {
      return Files.readString(Path.of(passwordFile)).strip();
    } catch (IOException e) {
      throw new IllegalArgumentException("cannot read neo4j.password-file " + passwordFile + ": " + e.getMessage());
    }
  }
}
