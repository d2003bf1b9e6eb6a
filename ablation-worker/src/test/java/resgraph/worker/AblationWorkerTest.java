package resgraph.worker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.spi.ILoggingEvent;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import resgraph.model.SyntheticModel;
import resgraph.platform.job.RecordedJobs;
import resgraph.platform.kafka.TopicListener;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.Await;
import resgraph.testkit.KafkaProbe;
import resgraph.testkit.KafkaProbe.Read;
import resgraph.testkit.LogCapture;
import resgraph.testkit.TestCluster;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.LayerActivations;
import resgraph.v1.ModelRef;
import resgraph.v1.Phase;
import resgraph.v1.SparseActivations;
import resgraph.v1.TaskEffects;
import resgraph.v1.TaskFailed;
import resgraph.v1.TaskFailure;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;
import resgraph.v1.UnreadableRecord;
import resgraph.worker.kafka.CrashAfterPublish;
import resgraph.worker.kafka.TaskListener;

/**
 * Workers as the cluster runs them, in this JVM: the test cluster's real Kafka broker (its own
 * process) and real model server on a generated model, and each worker its own Micronaut
 * context. Every worker shares the one group, so each test waits until its tasks are committed,
 * leaving nothing for the next; jobs are named per test and everything read is filtered by job.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AblationWorkerTest {

  private static final String PROMPT = "When Mary and John went to the store, John gave a drink to";
  /** 3 layers, so 0 and 1 can be ablated; BOS prepended. */
  private static final SyntheticModel.Spec SPEC =
      SyntheticModel.Spec.builder().layers(3).dModel(64).heads(4).dSae(256).l0(10).seed(7).build();
  private static final Duration WAIT = Duration.ofSeconds(60);

  private static TestCluster cluster;
  private static KafkaProbe kafka;
  private static ModelRef ref;
  private static List<Integer> tokens;
  private static int target;
  /** METHOD.md step 2's candidates of layers 0 and 1. */
  private static Map<Integer, List<Integer>> candidates;

  private final List<TestCluster.Service> workers = new ArrayList<>();

  @BeforeAll
  static void start() {
    cluster = TestCluster.builder().model(SPEC).start();
    kafka = cluster.kafkaProbe();
    ref = cluster.model();
    tokens = model().tokenize(TokenizeRequest.newBuilder().setRef(ref).setText(PROMPT).build()).getTokensList();
    TraceResponse trace = model().trace(TraceRequest.newBuilder().setRef(ref).addAllTokens(tokens).build());
    target = trace.getTarget();
    candidates = new HashMap<>();
    for (LayerActivations layer : trace.getLayersList()) {
      TreeSet<Integer> active = new TreeSet<>();
      // position 0 is BOS, never ablated
      for (SparseActivations p : layer.getPositionsList().subList(1, target + 1)) active.addAll(p.getLatentsList());
      candidates.put(layer.getLayer(), List.copyOf(active));
    }
    assertTrue(candidates.get(0).size() >= 16, "too few candidates to test with: " + candidates.get(0).size());
  }

  @AfterEach
  void stopWorkers() {
    for (TestCluster.Service w : workers) w.close();
    workers.clear();
  }

  /** A test that stopped the model server and failed before starting it again must not fail the next. */
  @AfterEach
  void modelServerUp() {
    cluster.startModelServer();
  }

  @AfterAll
  static void stop() throws Exception {
    if (cluster != null) cluster.close();
  }

  // ---- helpers ----------------------------------------------------------------------------

  private static resgraph.v1.ModelServiceGrpc.ModelServiceBlockingStub model() {
    return cluster.modelServer();
  }

  private TestCluster.Service worker(String name, Map<String, Object> extra) {
    Map<String, Object> p = new HashMap<>(extra);
    p.put("resgraph.worker.name", name);
    TestCluster.Service w = cluster.start(AblationWorker::start, p);
    workers.add(w);
    return w;
  }

  private TestCluster.Service worker(String name) {
    return worker(name, Map.of());
  }

  /** A task ablating resid_pre of a layer and measuring the next, as the orchestrator plans one. */
  private static AblationTask task(String job, int n, int layer, List<Integer> latents) {
    return AblationTask.newBuilder().setJobId(job).setTask(n).setRef(ref).addAllTokens(tokens).setLayer(layer)
        .setHookName("blocks." + layer + ".hook_resid_pre").setMeasureHookName("blocks." + (layer + 1) + ".hook_resid_pre")
        .addAllLatents(latents).setTarget(target).build();
  }

  /** Tasks 0..count-1 of a job, each ablating two layer-0 candidates. */
  private static List<AblationTask> tasks(String job, int count) {
    List<Integer> c = candidates.get(0);
    return IntStream.range(0, count)
        .mapToObj(i -> task(job, i, 0, List.of(c.get((2 * i) % c.size()), c.get((2 * i + 1) % c.size())))).toList();
  }

  /** Publishes as the orchestrator does, keyed job/task; a partition given puts tasks in a known order. */
  private static RecordMetadata publish(AblationTask t, Integer partition) {
    return kafka.send(Topics.TASKS, partition, t.getJobId() + "/" + t.getTask(), t.toByteArray());
  }

  private static List<RecordMetadata> publish(List<AblationTask> tasks) {
    return tasks.stream().map(t -> publish(t, null)).toList();
  }

  private static void publishPhase(String job, Phase phase) {
    kafka.send(Topics.JOBS, null, job,
        JobRecord.newBuilder().setJob(Job.newBuilder().setId(job).setPhase(phase)).build().toByteArray());
  }

  /** What the worker must have published for a task: exactly what Ablate answers when asked directly. */
  private static TaskEffects expected(AblationTask t) {
    AblateResponse direct = model().ablate(AblateRequest.newBuilder().setRef(t.getRef()).addAllTokens(t.getTokensList())
        .setHookName(t.getHookName()).setMeasureHookName(t.getMeasureHookName()).addAllLatents(t.getLatentsList())
        .setTarget(t.getTarget()).build());
    return TaskEffects.newBuilder().setJobId(t.getJobId()).setTask(t.getTask()).setLayer(direct.getLayer())
        .setHookName(direct.getHookName()).setMeasureHookName(direct.getMeasureHookName())
        .setTarget(direct.getTarget()).addAllEffects(direct.getEffectsList()).build();
  }

  private static List<Read<TaskEffects>> awaitEffects(String job, int count) {
    return untimed(kafka.await(Topics.EFFECTS, TaskEffects.parser(), e -> e.getJobId().equals(job), count, WAIT));
  }

  /** The effects without the worker's timing, which differs run to run, once it is seen to be there. */
  private static List<Read<TaskEffects>> untimed(List<Read<TaskEffects>> reads) {
    return reads.stream().map(r -> {
      assertTrue(r.value().getAblateSeconds() > 0, "the worker timed the model server");
      return new Read<>(r.key(), r.value().toBuilder().clearAblateSeconds().build(), r.partition(), r.offset());
    }).toList();
  }

  private static List<Read<TaskEffects>> allEffects(String job) {
    return kafka.readAll(Topics.EFFECTS, TaskEffects.parser(), e -> e.getJobId().equals(job));
  }

  private static void awaitCommitted(List<RecordMetadata> sent) {
    kafka.awaitCommittedPast(TaskListener.GROUP, sent, WAIT);
  }

  /** The "done" lines the task loop logged for a job, by the thread (so the worker) that logged them. */
  private static Map<String, Long> doneByThread(LogCapture log, String job) {
    return log.events().stream()
        .filter(e -> e.getMessage().contains("latents ablated") && e.getArgumentArray()[0].toString().startsWith(job + "/"))
        .collect(Collectors.groupingBy(ILoggingEvent::getThreadName, Collectors.counting()));
  }

  // ---- tests ------------------------------------------------------------------------------

  @Test
  void publishesTheEffectsADirectAblateCallGives() {
    worker("w-effects");
    List<Integer> c0 = candidates.get(0), c1 = candidates.get(1);
    List<AblationTask> tasks = List.of(
        task("j-effects", 0, 0, c0.subList(0, 8)),
        task("j-effects", 1, 0, c0.subList(8, 16)),
        task("j-effects", 2, 1, c1.subList(0, Math.min(8, c1.size()))));
    List<RecordMetadata> sent = publish(tasks);

    Map<Integer, Read<TaskEffects>> got = awaitEffects("j-effects", 3).stream()
        .collect(Collectors.toMap(r -> r.value().getTask(), Function.identity()));
    for (AblationTask t : tasks) {
      TaskEffects want = expected(t);
      assertEquals(t.getLatentsCount(), want.getEffectsCount());
      assertTrue(want.getEffectsList().stream().anyMatch(e -> e.getDownstreamCount() > 0), "a vacuous comparison");
      assertEquals(want, got.get(t.getTask()).value(), "task " + t.getTask());
      assertEquals("j-effects", got.get(t.getTask()).key(), "effects are keyed by job");
    }
    awaitCommitted(sent);
  }

  @Test
  void twoWorkersSplitTheTasksAndAnswerEachOnce() {
    try (LogCapture log = new LogCapture(TaskListener.class)) {
      worker("w-left");
      worker("w-right");
      kafka.awaitGroup(TaskListener.GROUP, 2, WAIT);
      List<RecordMetadata> sent = publish(tasks("j-split", 24));
      awaitEffects("j-split", 24);
      awaitCommitted(sent);
      stopWorkers();

      Map<Integer, Long> perTask = allEffects("j-split").stream()
          .collect(Collectors.groupingBy(r -> r.value().getTask(), Collectors.counting()));
      assertEquals(IntStream.range(0, 24).boxed().collect(Collectors.toMap(i -> i, i -> 1L)), perTask,
          "every task answered exactly once");
      Map<String, Long> byWorker = doneByThread(log, "j-split");
      assertEquals(24, byWorker.values().stream().mapToLong(Long::longValue).sum(), "done lines: " + byWorker);
      assertTrue(byWorker.getOrDefault("tasks-w-left", 0L) > 0 && byWorker.getOrDefault("tasks-w-right", 0L) > 0,
          "both workers take tasks: " + byWorker);
    }
  }

  @Test
  void aBadTaskIsDeadLetteredFailsItsJobAndTheNextTaskStillRuns() {
    worker("w-dlq");
    // one partition, so "next" means next
    AblationTask badLayer = task("j-dlq", 0, 9, candidates.get(0).subList(0, 4));
    AblationTask good = task("j-dlq", 1, 0, candidates.get(0).subList(0, 4));
    List<RecordMetadata> sent = List.of(publish(badLayer, 3), publish(good, 3));

    assertEquals(expected(good), awaitEffects("j-dlq", 1).get(0).value());

    Read<TaskFailure> letter = kafka.await(Topics.DEAD_LETTERS, TaskFailure.parser(),
        f -> f.getTask().getJobId().equals("j-dlq"), 1, WAIT).get(0);
    assertEquals("j-dlq/0", letter.key());
    assertEquals(badLayer, letter.value().getTask());
    assertEquals(1, letter.value().getAttempts(), "a bad task is not retried");
    assertTrue(letter.value().getReason().startsWith("model server: INVALID_ARGUMENT: 9 (blocks.9.hook_resid_pre) has no SAE; SAEs are at 0, 1, 2"),
        letter.value().getReason());

    JobEvent failed = kafka.await(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals("j-dlq"), 1, WAIT).get(0).value();
    assertEquals(TaskFailed.newBuilder().setTask(0).setReason(letter.value().getReason()).build(), failed.getFailed());
    awaitCommitted(sent);
  }

  @Test
  void anUnreadableTaskIsKeptAsItWasFailsItsJobAndTheNextTaskStillRuns() {
    worker("w-unreadable");
    byte[] garbage = {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff};
    AblationTask good = task("j-unreadable", 1, 0, candidates.get(0).subList(0, 4));
    // one partition, so "next" means next
    RecordMetadata bad = kafka.send(Topics.TASKS, 4, "j-unreadable/0", garbage);
    List<RecordMetadata> sent = List.of(bad, publish(good, 4));

    assertEquals(expected(good), awaitEffects("j-unreadable", 1).get(0).value());

    Read<UnreadableRecord> letter = kafka.await(Topics.UNREADABLE, UnreadableRecord.parser(),
        u -> u.getKey().equals("j-unreadable/0"), 1, WAIT).get(0);
    assertEquals("j-unreadable/0", letter.key(), "kept under its own key");
    String problem = letter.value().getProblem();
    assertTrue(problem.startsWith("the value is not a valid AblationTask ("), problem);
    assertEquals(UnreadableRecord.newBuilder().setTopic(Topics.TASKS).setPartition(4).setOffset(bad.offset()).setKey("j-unreadable/0")
        .setValue(ByteString.copyFrom(garbage)).setValueSize(garbage.length).setProblem(problem).setConsumer(TaskListener.GROUP).build(),
        letter.value());

    JobEvent failed = kafka.await(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals("j-unreadable"), 1, WAIT).get(0).value();
    String reason = failed.getJobFailed().getReason();
    assertTrue(reason.contains("(resgraph.tasks partition 4 offset " + bad.offset() + ", key j-unreadable/0): " + problem), reason);
    awaitCommitted(sent);
  }

  @Test
  void tasksWaitOutAModelServerRestartWithBackoff() {
    worker("w-restart");
    List<AblationTask> tasks = tasks("j-restart", 3);
    try (LogCapture log = new LogCapture(TopicListener.class)) {
      cluster.stopModelServer();
      List<RecordMetadata> sent = tasks.stream().map(t -> publish(t, 5)).toList();
      Await.until("three retries of the first task", WAIT, () -> retries(log, "j-restart/0").size() >= 3);
      cluster.startModelServer();

      Map<Integer, TaskEffects> got = awaitEffects("j-restart", 3).stream()
          .collect(Collectors.toMap(r -> r.value().getTask(), Read::value));
      for (AblationTask t : tasks) assertEquals(expected(t), got.get(t.getTask()));
      awaitCommitted(sent);

      List<ILoggingEvent> retries = retries(log, "j-restart/0");
      assertEquals(List.of(500L, 1000L, 2000L), retries.subList(0, 3).stream().map(e -> (Long) e.getArgumentArray()[2]).toList(),
          "exponential backoff from 0.5 s");
      assertTrue(retries.get(0).getArgumentArray()[1].toString().startsWith("model server: UNAVAILABLE"), retries.get(0).getFormattedMessage());
      assertEquals(List.of(), kafka.readAll(Topics.DEAD_LETTERS, TaskFailure.parser(), f -> f.getTask().getJobId().equals("j-restart")),
          "nothing dead-lettered");
    }
  }

  @Test
  void aWorkerWaitingOnTheModelServerDoesNotHoldUpTheGroup() {
    worker("w-busy");
    try (LogCapture log = new LogCapture(TopicListener.class)) {
      cluster.stopModelServer();
      List<RecordMetadata> sent = publish(tasks("j-busy", 6));
      Await.until("w-busy retrying", WAIT, () -> !retries(log, "j-busy/").isEmpty());
      // it keeps polling with its partitions paused, so a new member is in within a heartbeat or two
      worker("w-joining");
      kafka.awaitGroup(TaskListener.GROUP, 2, Duration.ofSeconds(15));
      cluster.startModelServer();

      awaitEffects("j-busy", 6);
      awaitCommitted(sent);
      // a task whose partition moved was abandoned unpublished by w-busy and run by w-joining
      Map<Integer, Long> perTask = allEffects("j-busy").stream()
          .collect(Collectors.groupingBy(r -> r.value().getTask(), Collectors.counting()));
      assertEquals(IntStream.range(0, 6).boxed().collect(Collectors.toMap(i -> i, i -> 1L)), perTask);
    }
  }

  @Test
  void aModelServerDownForLongerThanTheRetryTimeFailsTheTask() {
    worker("w-retry-for", Map.of("resgraph.worker.retry-for", "2500ms", "resgraph.worker.backoff-initial", "200ms"));
    cluster.stopModelServer();
    AblationTask t = tasks("j-retry-for", 1).get(0);
    RecordMetadata sent = publish(t, null);

    TaskFailure letter = kafka.await(Topics.DEAD_LETTERS, TaskFailure.parser(),
        f -> f.getTask().getJobId().equals("j-retry-for"), 1, WAIT).get(0).value();
    assertEquals(t, letter.getTask());
    // waits of 0.2, 0.4 and 0.8 s fit in 2.5 s with room to spare; after them the next 1.6 s cannot
    assertEquals(4, letter.getAttempts());
    assertTrue(letter.getReason().startsWith("model server: UNAVAILABLE") && letter.getReason().contains("still failing after 4 attempts"),
        letter.getReason());
    JobEvent failed = kafka.await(Topics.JOB_EVENTS, JobEvent.parser(), e -> e.getJobId().equals("j-retry-for"), 1, WAIT).get(0).value();
    assertEquals(letter.getReason(), failed.getFailed().getReason());
    awaitCommitted(List.of(sent));
  }

  private static List<ILoggingEvent> retries(LogCapture log, String task) {
    return log.events().stream().filter(e -> e.getMessage().contains("retrying in")
        && e.getArgumentArray()[0].toString().startsWith(task)).toList();
  }

  @Test
  void tasksOfCancelledAndFailedJobsAreSkippedAndCommitted() {
    // cancelled before the worker starts: it reads the jobs topic before taking any task
    publishPhase("j-cancelled", Phase.PHASE_CANCELLED);
    List<RecordMetadata> sent = new ArrayList<>(publish(tasks("j-cancelled", 3)));
    TestCluster.Service w = worker("w-skip");
    // failed while the worker runs: it follows the topic
    publishPhase("j-failed", Phase.PHASE_FAILED);
    RecordedJobs jobs = w.context().getBean(RecordedJobs.class);
    Await.until("the worker sees j-failed fail", WAIT,
        () -> jobs.get("j-failed").map(r -> r.getJob().getPhase()).equals(Optional.of(Phase.PHASE_FAILED)));
    sent.addAll(publish(tasks("j-failed", 3)));
    sent.addAll(publish(tasks("j-running", 1)));

    awaitEffects("j-running", 1);
    awaitCommitted(sent);
    // committed means settled: effects, had there been any, would be on the topic by now
    assertEquals(List.of(), allEffects("j-cancelled"));
    assertEquals(List.of(), allEffects("j-failed"));
  }

  @Test
  void aStoppedWorkerLeavesNothingUncommitted() {
    worker("w-offsets");
    publish(tasks("j-offsets", 5));
    awaitEffects("j-offsets", 5);
    // at once: a stop never comes between a publish and its commit
    stopWorkers();
    assertEquals(Map.of(), kafka.left(TaskListener.GROUP, Topics.TASKS), "records a new member of the group would be handed");
  }

  @Test
  void aWorkerThatDiesBetweenPublishingAndCommittingHasItsTaskRedelivered() throws Exception {
    TestCluster.Service crashing = worker("w-crash", Map.of("test.crash-after-publish", "true"));
    AblationTask t = task("j-crash", 0, 0, candidates.get(0).subList(0, 4));
    RecordMetadata sent = publish(t, null);
    awaitEffects("j-crash", 1);
    Optional<Throwable> end = CompletableFuture.supplyAsync(() -> crashing.context().getBean(TopicListener.class).awaitEnd())
        .get(WAIT.toSeconds(), TimeUnit.SECONDS);
    assertInstanceOf(CrashAfterPublish.Crash.class, end.orElseThrow());
    assertFalse(kafka.committedPast(TaskListener.GROUP, List.of(sent)), "the crashed worker committed its task");

    worker("w-rescue");
    List<Read<TaskEffects>> effects = awaitEffects("j-crash", 2);
    assertEquals(effects.get(0).value(), effects.get(1).value(), "the task ran again, to the same effects");
    awaitCommitted(List.of(sent));
  }
}
