package resgraph.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.GraphDatabaseInternalSettings;
import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

/**
 * Neo4j for the local cluster, serving Bolt on loopback: {@code LocalNeo4j BOLT_PORT DIR
 * [PASSWORD_FILE]}. With a password file, Bolt asks for user {@code neo4j} with that password (set
 * whenever the file's differs from the one set last, so the file is the truth); without one,
 * authentication is off. The database
 * lives in DIR, so stored graphs survive a restart. Services reach it over Bolt exactly as they
 * reach a production Neo4j.
 */
public final class LocalNeo4j {

  private LocalNeo4j() {}

  public static void main(String[] args) throws InterruptedException, IOException {
    if (args.length != 2 && args.length != 3) {
      System.err.println("usage: LocalNeo4j BOLT_PORT DIR [PASSWORD_FILE]");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]);
    Path dir = Path.of(args[1]).toAbsolutePath();
    String password = args.length == 3 ? Files.readString(Path.of(args[2])).strip() : null;
    if (password != null) setPassword(dir, password);
    DatabaseManagementService dbms = builder(dir)
        .setConfig(BoltConnector.enabled, true)
        .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
        .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
        .setConfig(GraphDatabaseSettings.auth_enabled, password != null)
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

  /**
   * Sets user neo4j's password with Bolt closed: once Bolt listens, the services connect, and they
   * must never meet the password of an earlier start. A digest of the password set last is kept
   * beside the database: Neo4j refuses to set the password it has, and a restart need not start twice.
   */
  private static void setPassword(Path dir, String password) throws IOException {
    Path applied = dir.resolve("password.sha256");
    String digest = sha256(password);
    if (Files.exists(applied) && Files.readString(applied).equals(digest)) return;
    DatabaseManagementService dbms = builder(dir).setConfig(BoltConnector.enabled, false).build();
    try {
      // through a random one first: Neo4j refuses to set the password a user has, and a database
      // from before the digest was kept may have this one already
      for (String p : new String[] {UUID.randomUUID().toString(), password}) {
        dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
            "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", p));
      }
    } finally {
      dbms.shutdown();
    }
    Files.writeString(applied, digest);
  }

  private static String sha256(String text) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e); // every JVM has SHA-256
    }
  }

  private static DatabaseManagementServiceBuilder builder(Path dir) {
    return new DatabaseManagementServiceBuilder(dir)
        .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(256))
        // without these, Bolt's Netty waits 10 s on the way down
        .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_quiet_period, 0)
        .setConfig(GraphDatabaseInternalSettings.netty_server_shutdown_timeout, Duration.ofSeconds(1));
  }
}
