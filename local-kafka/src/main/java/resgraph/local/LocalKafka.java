package resgraph.local;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import kafka.server.KafkaConfig;
import kafka.server.KafkaRaftServer;
import kafka.tools.StorageTool;
import org.apache.kafka.common.utils.Time;
import resgraph.platform.kafka.Topics;

/**
 * A one-node Kafka broker and controller (KRaft) for the local cluster: {@code LocalKafka PORT
 * CONTROLLER_PORT DIR}. The log lives in DIR, so topics and offsets survive a restart.
 */
public final class LocalKafka {

  private LocalKafka() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 3) {
      System.err.println("usage: LocalKafka PORT CONTROLLER_PORT DIR");
      System.exit(2);
    }
    int port = Integer.parseInt(args[0]), controller = Integer.parseInt(args[1]);
    Path dir = Path.of(args[2]).toAbsolutePath();
    Files.createDirectories(dir);

    Properties p = new Properties();
    p.put("process.roles", "broker,controller");
    p.put("node.id", "1");
    p.put("controller.quorum.voters", "1@127.0.0.1:" + controller);
    p.put("listeners", "PLAINTEXT://127.0.0.1:" + port + ",CONTROLLER://127.0.0.1:" + controller);
    p.put("advertised.listeners", "PLAINTEXT://127.0.0.1:" + port);
    p.put("controller.listener.names", "CONTROLLER");
    p.put("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
    p.put("inter.broker.listener.name", "PLAINTEXT");
    p.put("log.dirs", dir.resolve("log").toString());
    // one node: every internal topic has one replica
    p.put("offsets.topic.replication.factor", "1");
    p.put("transaction.state.log.replication.factor", "1");
    p.put("transaction.state.log.min.isr", "1");
    p.put("share.coordinator.state.topic.replication.factor", "1");
    p.put("share.coordinator.state.topic.min.isr", "1");
    p.put("offsets.topic.num.partitions", "4");
    // a new consumer group starts at once instead of waiting for more members
    p.put("group.initial.rebalance.delay.ms", "0");
    // the compacted jobs topic needs the cleaner; its 128 MB default buffer overruns small heaps
    p.put("log.cleaner.dedupe.buffer.size", Integer.toString(2 << 20));
    p.put("message.max.bytes", Integer.toString(Topics.MAX_MESSAGE_BYTES + (1 << 20))); // plus batch overhead
    p.put("auto.create.topics.enable", "false");

    Path config = dir.resolve("server.properties");
    try (var out = Files.newOutputStream(config)) {
      p.store(out, "resgraph local Kafka");
    }
    String clusterId = clusterId(dir);
    StorageTool.execute(new String[] {"format", "-t", clusterId, "-c", config.toString(), "--ignore-formatted"}, System.out);

    KafkaRaftServer server = new KafkaRaftServer(KafkaConfig.fromProps(p, false), Time.SYSTEM);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.shutdown();
      server.awaitShutdown();
      stopped.countDown();
    }));
    server.startup();
    System.out.println("kafka ready on 127.0.0.1:" + port);
    stopped.await();
  }

  /** The cluster id is made once per log directory and kept, as the log is formatted with it. */
  private static String clusterId(Path dir) throws Exception {
    Path file = dir.resolve("cluster.id");
    if (Files.exists(file)) return Files.readString(file).strip();
    String id = org.apache.kafka.common.Uuid.randomUuid().toString();
    Files.writeString(file, id);
    return id;
  }
}
