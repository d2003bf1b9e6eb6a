package resgraph.graph;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.EmbeddedApplication;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;
import resgraph.kafka.Clients;
import resgraph.kafka.ProtoSerde;
import resgraph.kafka.Topics;
import resgraph.model.SyntheticModel;
import resgraph.modelserver.ModelServer;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.JobEvent;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TaskEffects;

/**
 * What the graph service runs against, started once for all test classes: a real Kafka and a real
 * Neo4j as processes of their own (the local cluster's), a real model server in this JVM on a
 * generated model, and the graph service itself in this JVM on its own gRPC port.
 */
final class TestCluster implements AutoCloseable {

  /** Use on a test class: starts the cluster before the first class that needs it, stops it after the last. */
  static final class Start implements BeforeAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) {
      context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
          .getOrComputeIfAbsent(TestCluster.class, k -> start(), TestCluster.class);
    }
  }

  static final Duration DEADLINE = Duration.ofSeconds(60);

  /** 3 layers with an SAE each, d_model 64, 200 latents of which about 8 fire per position, BOS prepended. */
  private static final SyntheticModel.Spec SPEC =
      SyntheticModel.Spec.builder().layers(3).dModel(64).heads(2).positions(32).dSae(200).l0(8).centered(true).seed(7).build();

  private static TestCluster running;

  final Path dir;
  final LocalCluster infra;
  final ModelRef ref;
  final Driver neo4j;
  private final ApplicationContext modelServer;
  private final ApplicationContext graphServer;
  private final ManagedChannel modelChannel;
  private final ManagedChannel graphChannel;
  private final KafkaProducer<String, TaskEffects> effects;
  private final KafkaProducer<String, byte[]> rawEffects;
  /** Neo4j when a test restarted it: no longer the local cluster's to stop. */
  private Process restartedNeo4j;

  private TestCluster(Path dir, LocalCluster infra, ModelRef ref, ApplicationContext modelServer, ApplicationContext graphServer,
      ManagedChannel modelChannel, ManagedChannel graphChannel, Driver neo4j) {
    this.dir = dir;
    this.infra = infra;
    this.ref = ref;
    this.modelServer = modelServer;
    this.graphServer = graphServer;
    this.modelChannel = modelChannel;
    this.graphChannel = graphChannel;
    this.neo4j = neo4j;
    this.effects = Clients.producer(infra.endpoints().kafka(), "test-effects");
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, infra.endpoints().kafka());
    this.rawEffects = new KafkaProducer<>(p, new StringSerializer(), new ByteArraySerializer());
  }

  static TestCluster get() {
    if (running == null) throw new IllegalStateException("annotate the test class with @ExtendWith(TestCluster.Start.class)");
    return running;
  }

  private static TestCluster start() {
    Path dir;
    try {
      dir = Files.createTempDirectory("graph-service-test");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    LocalCluster infra = LocalCluster.infrastructure(dir.resolve("cluster"), new LocalCluster.Options(1, "demo", "demo"), msg -> {});
    ApplicationContext modelServer = null;
    try {
      Path model = dir.resolve("model-files");
      SyntheticModel.write(SPEC, model, SyntheticModel.Format.PLAIN);
      ModelRef ref = ModelRef.newBuilder().setModel(model.resolve("model").toString()).setSaes(model.resolve("saes").toString()).build();
      int modelPort = Launcher.freePort(), graphPort = Launcher.freePort();
      modelServer = ModelServer.start(Map.of("grpc.server.port", modelPort, "grpc.server.host", "127.0.0.1",
          "resgraph.cache-dir", dir.resolve("cache").toString()));
      ApplicationContext graphServer = ApplicationContext.builder(GraphServer.class).properties(Map.of(
          "grpc.server.port", graphPort,
          "grpc.server.host", "127.0.0.1",
          "kafka.bootstrap.servers", infra.endpoints().kafka(),
          "neo4j.uri", infra.endpoints().bolt(),
          // short, so that an outage reaches the effects consumer's own retries instead of waiting in the driver's
          "neo4j.max-retry-seconds", 1,
          "resgraph.model-server.address", "127.0.0.1:" + modelPort,
          "resgraph.http.host", "127.0.0.1",
          "resgraph.http.port", 0,
          // the model server's beans are on this test classpath too, and need a cache folder
          "resgraph.cache-dir", dir.resolve("cache").toString())).start();
      graphServer.findBean(EmbeddedApplication.class).ifPresent(EmbeddedApplication::start);
      running = new TestCluster(dir, infra, ref, modelServer, graphServer,
          ManagedChannelBuilder.forAddress("127.0.0.1", modelPort).usePlaintext().build(),
          ManagedChannelBuilder.forAddress("127.0.0.1", graphPort).usePlaintext().maxInboundMessageSize(64 << 20).build(),
          GraphDatabase.driver(infra.endpoints().bolt(), AuthTokens.none()));
      return running;
    } catch (IOException | RuntimeException e) {
      // leave no Kafka or Neo4j process behind
      if (modelServer != null) modelServer.close();
      infra.stop();
      throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
    }
  }

  GraphServiceGrpc.GraphServiceBlockingStub graph() {
    return GraphServiceGrpc.newBlockingStub(graphChannel).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  /** The served circuit browser, e.g. http://127.0.0.1:PORT. */
  String viewer() {
    return "http://127.0.0.1:" + graphServer.getBean(ViewerServer.class).port();
  }

  ModelServiceGrpc.ModelServiceBlockingStub model() {
    return ModelServiceGrpc.newBlockingStub(modelChannel).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  /** Sends each message to resgraph.effects, keyed by its job as the workers do, and waits until Kafka has them. */
  List<RecordMetadata> publish(TaskEffects... tasks) {
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    for (TaskEffects t : tasks) sent.add(effects.send(new ProducerRecord<>(Topics.EFFECTS, t.getJobId(), t)));
    effects.flush();
    return await(sent);
  }

  /** Sends bytes as they are to resgraph.effects, for messages no worker would write. */
  void publishRaw(String key, byte[] value) {
    await(List.of(rawEffects.send(new ProducerRecord<>(Topics.EFFECTS, key, value))));
  }

  private static List<RecordMetadata> await(List<Future<RecordMetadata>> sent) {
    List<RecordMetadata> out = new ArrayList<>();
    try {
      for (Future<RecordMetadata> f : sent) out.add(f.get(DEADLINE.toSeconds(), TimeUnit.SECONDS));
    } catch (InterruptedException | ExecutionException | TimeoutException e) {
      throw new IllegalStateException("cannot publish to Kafka", e);
    }
    return out;
  }

  /**
   * The events on resgraph.job-events keyed by this job, in order, once there are at least
   * {@code count} of them (or all there are when the deadline passes: the caller's assertions fail).
   */
  List<JobEvent> events(String jobId, int count) {
    return events(jobId, count, DEADLINE);
  }

  List<JobEvent> events(String jobId, int count, Duration timeout) {
    try (KafkaConsumer<String, JobEvent> consumer = Clients.consumer(infra.endpoints().kafka(), null,
        ProtoSerde.deserializer(JobEvent.parser()), Map.of())) {
      List<TopicPartition> partitions = consumer.partitionsFor(Topics.JOB_EVENTS).stream()
          .map(p -> new TopicPartition(p.topic(), p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      List<JobEvent> events = new ArrayList<>();
      Instant deadline = Instant.now().plus(timeout);
      while (events.size() < count && Instant.now().isBefore(deadline)) {
        for (ConsumerRecord<String, JobEvent> r : consumer.poll(Duration.ofMillis(200))) {
          if (jobId.equals(r.key())) events.add(r.value());
        }
      }
      return events;
    }
  }

  /** Stops Neo4j as an outage would (the graph service keeps running), and returns a way to bring it back. */
  Runnable stopNeo4j() {
    infra.stop("neo4j", false);
    return () -> {
      String bolt = infra.endpoints().bolt();
      int port = Integer.parseInt(bolt.substring(bolt.lastIndexOf(':') + 1));
      Path log = infra.dir().resolve("logs").resolve("neo4j-restarted.log");
      restartedNeo4j = Launcher.start("local-neo4j", "resgraph.local.LocalNeo4j", List.of("-Xmx1g"),
          List.of(Integer.toString(port), infra.dir().resolve("neo4j").toString()), log);
      Launcher.awaitPort("neo4j", restartedNeo4j, port, Duration.ofSeconds(120), log);
    };
  }

  @Override
  public void close() throws Exception {
    effects.close(Duration.ofSeconds(5));
    rawEffects.close(Duration.ofSeconds(5));
    graphChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    modelChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    graphServer.close();
    modelServer.close();
    neo4j.close();
    infra.stop();
    if (restartedNeo4j != null) {
      restartedNeo4j.destroy();
      restartedNeo4j.waitFor(30, TimeUnit.SECONDS);
    }
    try (Stream<Path> files = Files.walk(dir)) {
      files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }
}
