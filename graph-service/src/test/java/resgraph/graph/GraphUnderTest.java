package resgraph.graph;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import resgraph.graph.http.CircuitBrowser;
import resgraph.model.SyntheticModel;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.testkit.KafkaProbe;
import resgraph.testkit.TestCluster;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.TaskEffects;

/**
 * The graph service under test, started once for all test classes of this JVM: in this JVM, on the
 * shared {@link TestCluster} (a real Kafka and Neo4j, a real model server on a generated model),
 * with what the orchestrator and the workers would do for it done here.
 */
final class GraphUnderTest {

  /** Use on a test class: starts the graph service before the first class that needs it. */
  static final class Start implements BeforeAllCallback {
    @Override
    public void beforeAll(ExtensionContext context) {
      running = context.getRoot().getStore(ExtensionContext.Namespace.GLOBAL)
          .getOrComputeIfAbsent(GraphUnderTest.class, k -> new GraphUnderTest(context), GraphUnderTest.class);
    }
  }

  static final Duration DEADLINE = TestCluster.DEADLINE;

  /** 3 layers with an SAE each, d_model 64, 200 latents of which about 8 fire per position, BOS prepended. */
  private static final SyntheticModel.Spec SPEC =
      SyntheticModel.Spec.builder().layers(3).dModel(64).heads(2).positions(32).dSae(200).l0(8).centered(true).seed(7).build();

  private static GraphUnderTest running;

  /** The plaintext port of the health service alone, which Kubernetes probes. */
  static final int HEALTH_PORT = resgraph.cluster.Launcher.freePort();

  final TestCluster cluster;
  final KafkaProbe kafka;
  final ModelRef ref;
  final Driver neo4j;
  private final TestCluster.Service service;

  private GraphUnderTest(ExtensionContext context) {
    cluster = TestCluster.shared(context, () -> TestCluster.builder().model(SPEC).start());
    kafka = cluster.kafkaProbe();
    ref = cluster.model();
    Map<String, Object> properties = new HashMap<>(replicaProperties());
    properties.put("resgraph.health.port", HEALTH_PORT);
    service = cluster.start(GraphServer::start, properties);
    neo4j = GraphDatabase.driver(cluster.bolt(), AuthTokens.basic("neo4j", cluster.neo4jPassword()));
  }

  /** What every replica of the graph service under test is given: the same Neo4j, Kafka and edge files. */
  private Map<String, Object> replicaProperties() {
    return Map.of(
        // short, so that an outage reaches the effects listener's own retries instead of waiting in the driver's
        "neo4j.max-retry-seconds", 1,
        "resgraph.http.host", "127.0.0.1",
        "resgraph.http.port", 0,
        "resgraph.graph.edges-dir", cluster.dir().resolve("graph-edges").toString(),
        // below the defaults, so that QueryTest sees the caps bite
        "resgraph.cypher.max-rows", QueryTest.MAX_ROWS,
        "resgraph.cypher.max-timeout", QueryTest.MAX_TIMEOUT_MS + "ms");
  }

  /**
   * Another replica of the graph service, as a cluster runs several: a member of the same group on
   * resgraph.effects, over the same Neo4j and edge files. The caller closes it.
   */
  TestCluster.Service startReplica() {
    return cluster.start(GraphServer::start, replicaProperties());
  }

  static GraphUnderTest get() {
    if (running == null) throw new IllegalStateException("annotate the test class with @ExtendWith(GraphUnderTest.Start.class)");
    return running;
  }

  GraphServiceGrpc.GraphServiceBlockingStub graph() {
    return GraphServiceGrpc.newBlockingStub(service.channel()).withDeadlineAfter(DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  ModelServiceGrpc.ModelServiceBlockingStub model() {
    return cluster.modelServer();
  }

  /** The served circuit browser, e.g. http://127.0.0.1:PORT. */
  String viewer() {
    return "http://127.0.0.1:" + service.context().getBean(CircuitBrowser.class).port();
  }

  /** A request to the circuit browser with the cluster's token, as a script sends it. */
  java.net.http.HttpRequest.Builder request(String path) {
    return java.net.http.HttpRequest.newBuilder(java.net.URI.create(viewer() + path)).header("Authorization", "Bearer " + cluster.token());
  }

  /** The link that logs a browser in and shows it {@code path}, as ./resgraph status prints one. */
  String loginLink(String path) {
    return viewer() + path + (path.contains("?") ? "&" : "?") + "token=" + cluster.token();
  }

  /** The service's reader of stored circuits, for what no RPC returns as is. */
  StoredCircuits circuits() {
    return service.context().getBean(StoredCircuits.class);
  }

  /** The folder of the job's raw-edge Parquet files. */
  Path edgeFiles(String jobId) {
    return service.context().getBean(EdgeFiles.class).jobDir(jobId);
  }

  /** Registers the job and records it RUNNING on resgraph.jobs, as the orchestrator does before queueing its tasks. */
  void register(RegisterJobRequest job) {
    graph().registerJob(job);
    record(job.getJob().toBuilder().setPhase(Phase.PHASE_RUNNING).build());
  }

  /** Records the job as the orchestrator does, on resgraph.jobs. */
  void record(Job job) {
    kafka.publish(Topics.JOBS, job.getId(), JobRecord.newBuilder().setJob(job).build());
  }

  /**
   * What the orchestrator does once every task is stored: Prune, AddToCorpus, the model server's
   * logit effects of the circuit's nodes, Annotate; then records the job DONE and waits until the
   * graph service says so.
   */
  AnnotateResponse finalizeJob(Job job) {
    PruneResponse pruned = graph().prune(PruneRequest.newBuilder().setJobId(job.getId()).setPruning(job.getSpec().getPruning()).build());
    graph().addToCorpus(AddToCorpusRequest.newBuilder().setJobId(job.getId()).build());
    List<LatentLogitEffects> annotations = pruned.getNodesCount() == 0 ? List.of()
        : model().logitEffects(LogitEffectsRequest.newBuilder().setRef(job.getSpec().getRef()).addAllTokens(job.getTokensList())
            .addAllLatents(pruned.getNodesList()).setTarget(job.getTarget()).setTop(10).build()).getEffectsList();
    AnnotateResponse annotated = graph().annotate(AnnotateRequest.newBuilder().setJobId(job.getId())
        .addAllEdges(pruned.getEdgesList()).addAllAnnotations(annotations).build());
    record(job.toBuilder().setPhase(Phase.PHASE_DONE).build());
    Await.until("job " + job.getId() + " done", DEADLINE,
        () -> graph().getCircuit(GetCircuitRequest.newBuilder().setJobId(job.getId()).build()).getJob().getPhase(),
        phase -> phase == Phase.PHASE_DONE);
    return annotated;
  }

  /** Sends each message to resgraph.effects, keyed by its job as the workers do, in one flush, and waits until Kafka has them. */
  List<RecordMetadata> publish(TaskEffects... tasks) {
    return kafka.publishAll(Topics.EFFECTS, List.of(tasks), TaskEffects::getJobId);
  }

  /** Sends bytes as they are to resgraph.effects, for messages no worker would write. */
  void publishRaw(String key, byte[] value) {
    kafka.send(Topics.EFFECTS, null, key, value);
  }

  /** The first {@code count} events on resgraph.job-events of this job, in order; fails if they do not come in time. */
  List<JobEvent> events(String jobId, int count) {
    return kafka.await(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals(jobId), count, DEADLINE).stream()
        .map(KafkaProbe.Read::value).toList();
  }

  /** Every event of this job on resgraph.job-events now. */
  List<JobEvent> events(String jobId) {
    return kafka.readAll(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals(jobId)).stream()
        .map(KafkaProbe.Read::value).toList();
  }
}
