package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.protobuf.MessageLite;
import com.google.protobuf.Parser;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;
import resgraph.kafka.Clients;
import resgraph.kafka.ProtoSerde;
import resgraph.kafka.Topics;
import resgraph.model.SyntheticModel;
import resgraph.modelserver.ModelServer;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.TaskFailed;
import resgraph.v1.TaskStored;

/**
 * What the orchestrator runs against, started once per test JVM and shared by the test classes:
 * a real Kafka (and Neo4j) from LocalCluster, a real model server in this JVM on a generated
 * model, a {@link FakeGraph}, and the orchestrator itself, which a test may stop and start again.
 */
final class Harness implements AutoCloseable {

  /** Hands the shared harness to a test class's {@code @BeforeAll}; JUnit closes it at the end of the run. */
  static final class Resolver implements ParameterResolver {
    @Override
    public boolean supportsParameter(ParameterContext p, ExtensionContext c) {
      return p.getParameter().getType() == Harness.class;
    }

    @Override
    public Object resolveParameter(ParameterContext p, ExtensionContext c) {
      return c.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
          .getOrComputeIfAbsent(Harness.class, k -> new Harness(), Harness.class);
    }
  }

  static final Duration DEADLINE = Duration.ofSeconds(30);
  static final String PROMPT = "When Mary and John went to the store, John gave a drink to";

  /** 4 layers with an SAE each, d 64, d_sae 256, BOS prepended. */
  static final SyntheticModel.Spec SPEC =
      SyntheticModel.Spec.builder().layers(4).dModel(64).heads(4).dSae(256).l0(8).seed(31).build();

  final Path dir;
  final LocalCluster cluster;
  final FakeGraph graph;
  final ModelRef ref;
  /** The same model with no SAE at layer 2. */
  final ModelRef gappy;
  final ModelServiceGrpc.ModelServiceBlockingStub model;
  private final ApplicationContext modelServer;
  private final ManagedChannel modelChannel;
  private final String modelAddress;
  private final KafkaProducer<String, MessageLite> producer;
  private final int port = Launcher.freePort();
  private ApplicationContext orchestrator;
  private ManagedChannel channel;

  private Harness() {
    try {
      dir = Files.createTempDirectory("resgraph-orchestrator-test");
      cluster = LocalCluster.infrastructure(dir.resolve("cluster"), new LocalCluster.Options(1, "demo", "demo"), msg -> {});
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      Path models = dir.resolve("models");
      SyntheticModel.write(SPEC, models, SyntheticModel.Format.PLAIN);
      Path gap = dir.resolve("gappy");
      copy(models, gap);
      delete(gap.resolve("saes/blocks.2.hook_resid_pre"));
      ref = ModelRef.newBuilder().setModel(models.resolve("model").toString()).setSaes(models.resolve("saes").toString()).build();
      gappy = ModelRef.newBuilder().setModel(gap.resolve("model").toString()).setSaes(gap.resolve("saes").toString()).build();

      int modelPort = Launcher.freePort();
      modelAddress = "127.0.0.1:" + modelPort;
      Map<String, Object> props = new LinkedHashMap<>();
      props.put("grpc.server.port", modelPort);
      props.put("grpc.server.host", "127.0.0.1");
      props.put("resgraph.cache-dir", dir.resolve("cache").toString());
      // nothing here may reach the real hub: a name that looks like a repository id fails fast
      props.put("resgraph.hub.url", "http://127.0.0.1:" + Launcher.freePort());
      // the orchestrator's classes are on this classpath too: keep its beans out of the model server
      props.put("resgraph.orchestrator.enabled", false);
      modelServer = ModelServer.start(props);
      modelChannel = ManagedChannelBuilder.forTarget(modelAddress).usePlaintext().build();
      model = ModelServiceGrpc.newBlockingStub(modelChannel);

      graph = new FakeGraph();
      producer = Clients.producer(cluster.endpoints().kafka(), "orchestrator-test");
      startOrchestrator();
    } catch (IOException | RuntimeException e) {
      cluster.stop(); // its processes would outlive this JVM
      throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
    }
  }

  // ---- the orchestrator -------------------------------------------------------------------

  void startOrchestrator() {
    Map<String, Object> props = new LinkedHashMap<>();
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", "127.0.0.1");
    props.put("kafka.bootstrap.servers", cluster.endpoints().kafka());
    props.put("resgraph.model-server.address", modelAddress);
    props.put("resgraph.graph-service.address", graph.address());
    // model-server's beans are on this classpath too, and its endpoint joins any gRPC server here;
    // it is never called, but it needs a cache folder to be built
    props.put("resgraph.cache-dir", dir.resolve("cache").toString());
    orchestrator = ApplicationContext.builder().properties(props).start();
    orchestrator.findBean(EmbeddedApplication.class).ifPresent(EmbeddedApplication::start);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
  }

  void stopOrchestrator() throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    orchestrator.close();
    orchestrator = null;
  }

  boolean orchestratorRunning() {
    return orchestrator != null;
  }

  <T> T bean(Class<T> type) {
    return orchestrator.getBean(type);
  }

  ManagedChannel channel() {
    return channel;
  }

  JobServiceGrpc.JobServiceBlockingStub jobs() {
    return JobServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  JobServiceGrpc.JobServiceStub jobsAsync() {
    return JobServiceGrpc.newStub(channel).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  JobSpec.Builder spec() {
    return JobSpec.newBuilder().setRef(ref).setPrompt(PROMPT);
  }

  Job get(String id) {
    return jobs().get(resgraph.v1.GetJobRequest.newBuilder().setId(id).build());
  }

  /** Polls the job until it reaches {@code phase}; fails with the job as it was at the deadline. */
  Job awaitPhase(String id, Phase phase) {
    return await("job " + id + " reaching " + phase, () -> get(id), j -> j.getPhase() == phase);
  }

  static <T> T await(String what, Supplier<T> probe, Predicate<T> done) {
    Instant deadline = Instant.now().plus(DEADLINE);
    T last = probe.get();
    while (!done.test(last)) {
      if (Instant.now().isAfter(deadline)) fail("no " + what + " within " + DEADLINE.toSeconds() + " s; last seen: " + last);
      try {
        Thread.sleep(50); // the interval between probes, not the assertion
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
      last = probe.get();
    }
    return last;
  }

  // ---- Kafka ------------------------------------------------------------------------------

  /** Publishes events as the graph service and the workers do, keyed by job; returns where the last one went. */
  RecordMetadata publish(JobEvent... events) {
    try {
      RecordMetadata last = null;
      for (JobEvent e : events) last = producer.send(new ProducerRecord<>(Topics.JOB_EVENTS, e.getJobId(), e)).get();
      return last;
    } catch (InterruptedException | ExecutionException e) {
      throw new AssertionError("publishing job events failed", e);
    }
  }

  /** Waits until the orchestrator's consumer group has committed past an event: it was counted, or ignored. */
  void awaitConsumed(RecordMetadata event) {
    TopicPartition tp = new TopicPartition(event.topic(), event.partition());
    try (Admin admin = Clients.admin(cluster.endpoints().kafka())) {
      await("the orchestrator committing past offset " + event.offset() + " of " + tp, () -> {
        try {
          OffsetAndMetadata committed = admin.listConsumerGroupOffsets(JobEventLoop.GROUP)
              .partitionsToOffsetAndMetadata().get().get(tp);
          return committed == null ? -1L : committed.offset();
        } catch (InterruptedException | ExecutionException e) {
          throw new AssertionError(e);
        }
      }, offset -> offset > event.offset());
    }
  }

  static JobEvent stored(String job, int task, long edges) {
    return JobEvent.newBuilder().setJobId(job).setStored(TaskStored.newBuilder().setTask(task).setEdges(edges)).build();
  }

  static JobEvent failed(String job, int task, String reason) {
    return JobEvent.newBuilder().setJobId(job).setFailed(TaskFailed.newBuilder().setTask(task).setReason(reason)).build();
  }

  /** Every record on a topic now, read from the beginning of each partition to its end. */
  <V extends MessageLite> List<ConsumerRecord<String, V>> readAll(String topic, Parser<V> parser) {
    try (KafkaConsumer<String, V> c = Clients.consumer(cluster.endpoints().kafka(), null, ProtoSerde.deserializer(parser), Map.of())) {
      List<TopicPartition> parts = c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
      c.assign(parts);
      c.seekToBeginning(parts);
      Map<TopicPartition, Long> end = c.endOffsets(parts);
      List<ConsumerRecord<String, V>> out = new ArrayList<>();
      Instant deadline = Instant.now().plus(DEADLINE);
      while (parts.stream().anyMatch(p -> c.position(p) < end.get(p))) {
        if (Instant.now().isAfter(deadline)) fail("could not read " + topic + " to its end");
        c.poll(Duration.ofMillis(200)).forEach(out::add);
      }
      return out;
    }
  }

  /** The latest record of a job on resgraph.jobs: what a restarted orchestrator and the workers read. */
  JobRecord latest(String id) {
    JobRecord last = null;
    for (ConsumerRecord<String, JobRecord> r : readAll(Topics.JOBS, JobRecord.parser())) if (r.key().equals(id)) last = r.value();
    return last;
  }

  /** The sum of a topic's end offsets: grows with every record written to it. */
  long endOffset(String topic) {
    try (KafkaConsumer<String, byte[]> c = Clients.consumer(cluster.endpoints().kafka(), null,
        new org.apache.kafka.common.serialization.ByteArrayDeserializer(), Map.of())) {
      List<TopicPartition> parts = c.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
      return c.endOffsets(parts).values().stream().mapToLong(Long::longValue).sum();
    }
  }

  // ---- teardown -----------------------------------------------------------------------------

  /** Clients before the broker, or their close waits out Kafka timeouts. */
  @Override
  public void close() throws Exception {
    if (orchestrator != null) stopOrchestrator();
    producer.close();
    graph.close();
    modelChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    modelServer.close();
    cluster.stop();
    delete(dir);
  }

  private static void copy(Path from, Path to) throws IOException {
    try (Stream<Path> files = Files.walk(from)) {
      for (Path p : (Iterable<Path>) files::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(target);
        else Files.copy(p, target);
      }
    }
  }

  private static void delete(Path root) throws IOException {
    try (Stream<Path> files = Files.walk(root)) {
      for (Path p : (Iterable<Path>) files.sorted(Comparator.reverseOrder())::iterator) Files.delete(p);
    }
  }
}
