package resgraph.testkit;

import io.grpc.ManagedChannel;
import io.micronaut.context.ApplicationContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.ExtensionContext;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;
import resgraph.model.SyntheticModel;
import resgraph.modelserver.ModelServer;
import resgraph.platform.grpc.ClientCredentials;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.grpc.SecurityConfig;
import resgraph.platform.kafka.Topics;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;

/**
 * What a service's tests run against: a real Kafka and a real Neo4j, each a process of its own as
 * the local cluster runs them; a generated model and a real model server on it in the test's JVM;
 * and the services under test, each an application context of its own in the test's JVM on the
 * cluster's Kafka, Neo4j and model server.
 *
 * <pre>
 * TestCluster cluster = TestCluster.builder().model(spec).start();
 * TestCluster.Service graph = cluster.start(GraphServer::start, Map.of("neo4j.max-retry-seconds", 1));
 * </pre>
 */
public final class TestCluster implements AutoCloseable {

  /** How long a test waits for anything the cluster does. */
  public static final Duration DEADLINE = Duration.ofSeconds(60);

  /** A service started in this JVM: its context, and a channel to its gRPC server. */
  public record Service(ApplicationContext context, String address, ManagedChannel channel) implements AutoCloseable {
    @Override
    public void close() {
      channel.shutdownNow();
      if (context.isRunning()) context.close();
    }
  }

  /** What to start besides Kafka and Neo4j. */
  public static final class Builder {
    private SyntheticModel.Spec model;

    private Builder() {}

    /** Writes this model's files (GPT-2 and SAEs in the real formats) and serves them from a model server in this JVM. */
    public Builder model(SyntheticModel.Spec spec) {
      this.model = spec;
      return this;
    }

    public TestCluster start() {
      return new TestCluster(this);
    }
  }

  private final Path dir;
  private final LocalCluster infra;
  private final KafkaProbe kafka;
  private final Map<String, Object> modelProperties = new LinkedHashMap<>();
  private final List<AutoCloseable> started = new ArrayList<>();
  private ModelRef ref;
  private ApplicationContext modelServer;
  private ManagedChannel modelChannel;
  /** Neo4j when a test restarted it: no longer the local cluster's to stop. */
  private Process restartedNeo4j;

  private TestCluster(Builder b) {
    try {
      dir = Files.createTempDirectory("resgraph-test");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    infra = LocalCluster.infrastructure(dir.resolve("cluster"), new LocalCluster.Options(1, "demo", "demo"), msg -> {});
    try {
      kafka = new KafkaProbe(infra.endpoints().kafka());
      // as the services do when they start, so a test may publish before any does
      Topics.ensure(kafka.admin(), 1);
      if (b.model != null) {
        Path files = dir.resolve("model-files");
        SyntheticModel.write(b.model, files, SyntheticModel.Format.PLAIN);
        ref = ModelRef.newBuilder().setModel(files.resolve("model").toString()).setSaes(files.resolve("saes").toString()).build();
        int port = Launcher.freePort();
        modelProperties.put("grpc.server.port", port);
        modelProperties.put("grpc.server.host", "127.0.0.1");
        modelProperties.putAll(security());
        modelProperties.put("resgraph.cache-dir", dir.resolve("cache").toString());
        // nothing here may reach the real hub: a name that looks like a repository id fails fast
        modelProperties.put("resgraph.hub.url", "http://127.0.0.1:" + Launcher.freePort());
        startModelServer();
        modelChannel = GrpcChannels.open("127.0.0.1:" + port, credentials());
      }
    } catch (IOException | RuntimeException e) {
      // leave no Kafka or Neo4j process behind
      if (modelServer != null) modelServer.close();
      infra.stop();
      throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The cluster shared by every test class of this JVM that asks for it: started by the first,
   * closed by JUnit after the last.
   */
  public static TestCluster shared(ExtensionContext context, Supplier<TestCluster> start) {
    return context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
        .getOrComputeIfAbsent(TestCluster.class, k -> new Closing(start.get()), Closing.class).cluster();
  }

  /** Closes the shared cluster when JUnit is done with the store that holds it. */
  private record Closing(TestCluster cluster) implements ExtensionContext.Store.CloseableResource {
    @Override
    public void close() throws Exception {
      cluster.close();
    }
  }

  public Path dir() {
    return dir;
  }

  public String kafka() {
    return infra.endpoints().kafka();
  }

  public String bolt() {
    return infra.endpoints().bolt();
  }

  /** Neo4j's password for user neo4j. */
  public String neo4jPassword() {
    return infra.neo4jPassword();
  }

  /** What a client of the cluster's gRPC servers shows them: TLS trusting the cluster's certificate, and its token. */
  public ClientCredentials credentials() {
    return ClientCredentials.fromFolder(infra.credentials());
  }

  /** The folder of the cluster's token, certificate and key, laid out as the Kubernetes Secret is mounted. */
  public Path credentialsFolder() {
    return infra.credentials();
  }

  /** The cluster's bearer token, which its gRPC servers and circuit browser ask for. */
  public String token() {
    try {
      return Files.readString(infra.credentials().resolve("token")).strip();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The settings that secure a service's gRPC as the local cluster's are: TLS and the token, from the cluster's files. */
  public Map<String, Object> security() {
    return SecurityConfig.fromFolder(credentialsFolder());
  }

  public KafkaProbe kafkaProbe() {
    return kafka;
  }

  /** The generated model, as requests name it. */
  public ModelRef model() {
    return ref;
  }

  /** Where the generated model's files are: {@code model/} and {@code saes/}. */
  public Path modelFiles() {
    return dir.resolve("model-files");
  }

  public String modelServerAddress() {
    return "127.0.0.1:" + modelProperties.get("grpc.server.port");
  }

  /** The model server, each call with the cluster's deadline. */
  public ModelServiceGrpc.ModelServiceBlockingStub modelServer() {
    return ModelServiceGrpc.newBlockingStub(modelChannel).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  /** Stops the model server, as a restart or an outage would; {@link #startModelServer} brings it back on the same port. */
  public void stopModelServer() {
    modelServer.close();
  }

  public void startModelServer() {
    if (modelServer == null || !modelServer.isRunning()) modelServer = ModelServer.start(new HashMap<>(modelProperties));
  }

  /**
   * Starts a service in this JVM, through its application's {@code start(properties)}, on the
   * cluster's Kafka, Neo4j and model server, with its gRPC server on a free local port, and these
   * properties besides. The cluster stops it when it closes, unless the test does first.
   */
  public Service start(Function<Map<String, Object>, ApplicationContext> application, Map<String, Object> properties) {
    int port = Launcher.freePort();
    Map<String, Object> p = new HashMap<>();
    p.put("grpc.server.port", port);
    p.put("grpc.server.host", "127.0.0.1");
    p.put("kafka.bootstrap.servers", kafka());
    p.put("neo4j.uri", bolt());
    p.put("neo4j.user", "neo4j");
    p.put("neo4j.password-file", infra.neo4jPasswordFile().toString());
    p.putAll(security());
    if (ref != null) p.put("resgraph.model-server.address", modelServerAddress());
    p.putAll(properties);
    ApplicationContext ctx = application.apply(p);
    Service s = new Service(ctx, "127.0.0.1:" + port, GrpcChannels.open("127.0.0.1:" + port, credentials()));
    started.add(s);
    return s;
  }

  /** Stops Neo4j as an outage would (the services keep running), and returns a way to bring it back. */
  public Runnable stopNeo4j() {
    infra.stop("neo4j", false);
    return () -> {
      int port = Integer.parseInt(bolt().substring(bolt().lastIndexOf(':') + 1));
      Path log = infra.dir().resolve("logs").resolve("neo4j-restarted.log");
      restartedNeo4j = Launcher.start("local-neo4j", "resgraph.local.LocalNeo4j", List.of("-Xmx1g"),
          List.of(Integer.toString(port), infra.dir().resolve("neo4j").toString(), infra.neo4jPasswordFile().toString()), log);
      Launcher.awaitPort("neo4j", restartedNeo4j, port, Duration.ofSeconds(120), log);
    };
  }

  /** Clients and services before the broker, or their close waits out Kafka timeouts. */
  @Override
  public void close() throws Exception {
    for (int i = started.size() - 1; i >= 0; i--) started.get(i).close();
    kafka.close();
    if (modelChannel != null) GrpcChannels.close(modelChannel);
    if (modelServer != null && modelServer.isRunning()) modelServer.close();
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
