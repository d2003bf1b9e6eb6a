package resgraph.orchestrator;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.ParameterContext;
import org.junit.jupiter.api.extension.ParameterResolver;
import resgraph.model.SyntheticModel;
import resgraph.orchestrator.kafka.JobEventListener;
import resgraph.platform.Folders;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.testkit.KafkaProbe;
import resgraph.testkit.TestCluster;
import resgraph.v1.GetJobRequest;
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
 * The orchestrator under test, shared by the test classes of this JVM: in this JVM on a
 * {@link TestCluster} (a real Kafka, a real model server on a generated model), with a
 * {@link FakeGraph} for the graph service; a test may stop it and start it again.
 */
final class OrchestratorUnderTest implements ExtensionContext.Store.CloseableResource {

  /** Hands the shared orchestrator to a test class's {@code @BeforeAll}; JUnit closes it at the end of the run. */
  static final class Resolver implements ParameterResolver {
    @Override
    public boolean supportsParameter(ParameterContext p, ExtensionContext c) {
      return p.getParameter().getType() == OrchestratorUnderTest.class;
    }

    @Override
    public Object resolveParameter(ParameterContext p, ExtensionContext c) {
      return c.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
          .getOrComputeIfAbsent(OrchestratorUnderTest.class, k -> new OrchestratorUnderTest(), OrchestratorUnderTest.class);
    }
  }

  static final Duration DEADLINE = Duration.ofSeconds(30);
  static final String PROMPT = "When Mary and John went to the store, John gave a drink to";

  /** 4 layers with an SAE each, d 64, d_sae 256, BOS prepended. */
  static final SyntheticModel.Spec SPEC =
      SyntheticModel.Spec.builder().layers(4).dModel(64).heads(4).dSae(256).l0(8).seed(31).build();

  final TestCluster cluster;
  final KafkaProbe kafka;
  final FakeGraph graph;
  final ModelRef ref;
  /** The same model with no SAE at layer 2. */
  final ModelRef gappy;
  private TestCluster.Service orchestrator;

  private OrchestratorUnderTest() {
    cluster = TestCluster.builder().model(SPEC).start();
    try {
      kafka = cluster.kafkaProbe();
      ref = cluster.model();
      Path gap = cluster.dir().resolve("gappy");
      copy(cluster.modelFiles(), gap);
      Folders.delete(gap.resolve("saes/blocks.2.hook_resid_pre"));
      gappy = ModelRef.newBuilder().setModel(gap.resolve("model").toString()).setSaes(gap.resolve("saes").toString()).build();
      graph = new FakeGraph(cluster.credentialsFolder());
      startOrchestrator();
    } catch (IOException | RuntimeException e) {
      close(); // its processes would outlive this JVM
      throw e instanceof IOException io ? new UncheckedIOException(io) : (RuntimeException) e;
    }
  }

  // ---- the orchestrator -------------------------------------------------------------------

  void startOrchestrator() {
    orchestrator = cluster.start(Orchestrator::start, Map.of("resgraph.graph-service.address", graph.address()));
  }

  void stopOrchestrator() {
    orchestrator.close();
    orchestrator = null;
  }

  boolean orchestratorRunning() {
    return orchestrator != null;
  }

  <T> T bean(Class<T> type) {
    return orchestrator.context().getBean(type);
  }

  io.grpc.ManagedChannel channel() {
    return orchestrator.channel();
  }

  JobServiceGrpc.JobServiceBlockingStub jobs() {
    return JobServiceGrpc.newBlockingStub(channel()).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  JobServiceGrpc.JobServiceStub jobsAsync() {
    return JobServiceGrpc.newStub(channel()).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  ModelServiceGrpc.ModelServiceBlockingStub model() {
    return cluster.modelServer();
  }

  JobSpec.Builder spec() {
    return JobSpec.newBuilder().setRef(ref).setPrompt(PROMPT);
  }

  Job get(String id) {
    return jobs().get(GetJobRequest.newBuilder().setId(id).build());
  }

  /** Probes the job until it reaches {@code phase}; fails with the job as it was at the deadline. */
  Job awaitPhase(String id, Phase phase) {
    return Await.until("job " + id + " reaching " + phase, DEADLINE, () -> get(id), j -> j.getPhase() == phase);
  }

  // ---- Kafka ------------------------------------------------------------------------------

  /** Publishes events as the graph service and the workers do, keyed by job; returns where the last one went. */
  RecordMetadata publish(JobEvent... events) {
    RecordMetadata last = null;
    for (JobEvent e : events) last = kafka.publish(Topics.JOB_EVENTS, e.getJobId(), e);
    return last;
  }

  /** Waits until the orchestrator's consumer group has committed past an event: it was counted, or ignored. */
  void awaitConsumed(RecordMetadata event) {
    kafka.awaitCommittedPast(JobEventListener.GROUP, java.util.List.of(event), DEADLINE);
  }

  static JobEvent stored(String job, int task, long edges) {
    return JobEvent.newBuilder().setJobId(job).setStored(TaskStored.newBuilder().setTask(task).setEdges(edges)).build();
  }

  static JobEvent failed(String job, int task, String reason) {
    return JobEvent.newBuilder().setJobId(job).setFailed(TaskFailed.newBuilder().setTask(task).setReason(reason)).build();
  }

  /** The latest record of a job on resgraph.jobs: what a restarted orchestrator and the workers read. */
  JobRecord latest(String id) {
    return kafka.latest(Topics.JOBS, JobRecord.parser(), id);
  }

  // ---- teardown -----------------------------------------------------------------------------

  /** Clients before the broker, or their close waits out Kafka timeouts. */
  @Override
  public void close() {
    try {
      if (orchestrator != null) stopOrchestrator();
      if (graph != null) graph.close();
      cluster.close();
    } catch (Exception e) {
      throw new IllegalStateException("cannot stop the test cluster", e);
    }
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
}
