package resgraph.local;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

/**
 * Neo4j for the local cluster, serving Bolt on loopback without authentication: {@code LocalNeo4j
 * BOLT_PORT DIR}. The database lives in DIR, so stored graphs survive a restart. Services reach it
 * over Bolt exactly as they reach a production Neo4j.
 */
public final class LocalNeo4j {

  private LocalNeo4j() {}

  public static void main(String[] args) throws InterruptedException {
    if (args.length != 2) {
      System.err.println("usage: LocalNeo4j BOLT_PORT DIR");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    Path dir = Path.of(args[1]).toAbsolutePath();
    DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(dir)
        .setConfig(BoltConnector.enabled, true)
        .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
        .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
        .setConfig(GraphDatabaseSettings.auth_enabled, false)
        .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(256))
        // without these, Bolt's Netty waits 10 s on the way down
        .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
        .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(1))
        .build();
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      dbms.shutdown();
      stopped.countDown();
    }));
    dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME); // waits until it is available
    System.out.println("neo4j ready on bolt://127.0.0.1:" + port);
    stopped.await();
  }
}
