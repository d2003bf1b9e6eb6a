package resgraph.graph;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.context.annotation.Property;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * The graph service's settings (it also needs {@code kafka.bootstrap.servers} and {@link Neo4jConfig}).
 *
 * @param writers {@code resgraph.graph.writers} (2): tasks of a poll whose edge files are written at once
 * @param edgesDir {@code resgraph.graph.edges-dir} (edges): the folder of the raw-edge Parquet files
 *     ({@link EdgeFiles}); every replica of the service must see the same one (a shared volume)
 * @param httpHost {@code resgraph.http.host} (0.0.0.0): where the circuit browser listens
 * @param httpPort {@code resgraph.http.port} (8080; 0 picks a free port): the circuit browser's port
 */
@ConfigurationProperties("resgraph.graph")
public record GraphConfig(
    @Bindable(defaultValue = "2") int writers,
    @Bindable(defaultValue = "edges") String edgesDir,
    @Property(name = "resgraph.http.host") @Bindable(defaultValue = "0.0.0.0") String httpHost,
    @Property(name = "resgraph.http.port") @Bindable(defaultValue = "8080") int httpPort) {

  public GraphConfig {
    if (writers < 1) throw new IllegalArgumentException("resgraph.graph.writers must be at least 1, not " + writers);
    if (httpPort < 0 || httpPort > 65535) throw new IllegalArgumentException("resgraph.http.port must be a port number, not " + httpPort);
  }
}
