package resgraph.orchestrator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import resgraph.platform.job.JobRules;
import resgraph.platform.kafka.Topics;
import resgraph.testkit.KafkaProbe;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblationTask;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.LatentEffects;
import resgraph.v1.LayerActivations;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.ModelRef;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.SparseActivations;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/** Submit: how a job is planned and queued, and every way a spec is refused. */
class SubmitTest extends OrchestratorTest {

  /**
   * The tasks on resgraph.tasks cover exactly METHOD.md step 2's candidates, as the model server's
   * own Ablate finds them when asked for every candidate, in batches no larger than asked.
   */
  @Test
  void tasksCoverTheCandidatesOfEachAblatedLayerInBatches() {
    int batch = 7;
    Job job = h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(4).setTaskBatchSize(batch).build());
    assertEquals(Phase.PHASE_RUNNING, job.getPhase());
    assertTrue(job.getId().matches("j-\\d{8}-\\d{6}-[0-9a-f]{4}"), job.getId());

    List<Integer> tokens = job.getTokensList();
    Map<Integer, Set<Integer>> expected = new TreeMap<>();
    for (int layer = 0; layer <= 2; layer++) {
      Set<Integer> latents = new TreeSet<>();
      for (LatentEffects e : h.model().ablate(AblateRequest.newBuilder().setRef(h.ref).addAllTokens(tokens).setLayer(layer).build())
          .getEffectsList()) {
        latents.add(e.getLatent());
      }
      assertFalse(latents.isEmpty(), "layer " + layer + " has candidates");
      expected.put(layer, latents);
    }

    // the same sets, read off the clean trace by hand: f > 0 at some position 1..target (0 is BOS)
    TraceResponse trace = h.model().trace(TraceRequest.newBuilder().setRef(h.ref).addAllTokens(tokens).build());
    for (LayerActivations layer : trace.getLayersList()) {
      if (layer.getLayer() > 2) continue;
      Set<Integer> active = new TreeSet<>();
      for (int p = 1; p <= trace.getTarget(); p++) {
        SparseActivations row = layer.getPositions(p);
        for (int i = 0; i < row.getLatentsCount(); i++) if (row.getValues(i) > 0) active.add(row.getLatents(i));
      }
      assertEquals(expected.get(layer.getLayer()), active, "layer " + layer.getLayer());
    }

    List<AblationTask> tasks = new ArrayList<>();
    for (KafkaProbe.Read<AblationTask> r : h.kafka.readAll(Topics.TASKS, AblationTask.parser(), t -> t.getJobId().equals(job.getId()))) {
      assertEquals(job.getId() + "/" + r.value().getTask(), r.key());
      tasks.add(r.value());
    }
    Map<Integer, Set<Integer>> planned = new TreeMap<>();
    Set<Integer> numbers = new HashSet<>();
    int latents = 0;
    for (AblationTask t : tasks) {
      assertTrue(t.getLatentsCount() >= 1 && t.getLatentsCount() <= batch, "task " + t.getTask() + " has " + t.getLatentsCount());
      assertTrue(numbers.add(t.getTask()), "task number " + t.getTask() + " is used once");
      assertEquals(tokens, t.getTokensList());
      assertEquals(job.getTarget(), t.getTarget());
      assertEquals(h.ref, t.getRef());
      latents += t.getLatentsCount();
      for (int l : t.getLatentsList()) assertTrue(planned.computeIfAbsent(t.getLayer(), k -> new TreeSet<>()).add(l), "latent planned once");
    }
    assertEquals(expected, planned);
    assertEquals(job.getProgress().getTasksTotal(), tasks.size());
    assertEquals(numbers, new HashSet<>(java.util.stream.IntStream.range(0, tasks.size()).boxed().toList()));
    for (Map.Entry<Integer, Set<Integer>> e : expected.entrySet()) {
      long perLayer = tasks.stream().filter(t -> t.getLayer() == e.getKey()).count();
      assertEquals((e.getValue().size() + batch - 1) / batch, perLayer, "tasks of layer " + e.getKey());
    }
    assertEquals(latents, job.getProgress().getCandidates());

    // the graph service had the job, the trace and the predictions before any task was queued
    RegisterJobRequest registered = h.graph.registered.get(job.getId());
    assertEquals(trace.getLayersList(), registered.getActivationsList());
    assertEquals(trace.getPredictionsList(), registered.getPredictionsList());
    assertEquals(Phase.PHASE_PLANNING, registered.getJob().getPhase());
    // and the job as recorded in resgraph.jobs is the job as answered
    assertEquals(job, h.latest(job.getId()).getJob());
  }

  @Test
  void absentFieldsGetTheirDefaults() {
    Job job = h.jobs().submit(h.spec().build());
    assertEquals(0, job.getLayerStart());
    assertEquals(OrchestratorUnderTest.SPEC.n_layer(), job.getLayerEnd());
    assertEquals(job.getTokensCount() - 1, job.getTarget());
    assertEquals(50256, job.getTokens(0), "BOS first");
    assertEquals(job.getTokensCount(), job.getTokenStringsCount());
    assertEquals(Pruning.newBuilder().setTopK(10).build(), job.getSpec().getPruning());
    assertEquals(JobRules.DEFAULT_TASK_BATCH_SIZE, job.getSpec().getTaskBatchSize());
  }

  @Test
  void theTargetBoundsTheCandidates() {
    Job all = h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(2).build());
    Job early = h.jobs().submit(h.spec().setLayerStart(0).setLayerEnd(2).setTarget(1).build());
    assertEquals(1, early.getTarget());
    assertTrue(early.getProgress().getCandidates() < all.getProgress().getCandidates(),
        early.getProgress().getCandidates() + " candidates at position 1 alone, " + all.getProgress().getCandidates() + " up to the end");

    // exactly the latents that fire at position 1: 0 is BOS, never ablated, and 2 on come after the target
    TraceResponse trace = h.model().trace(TraceRequest.newBuilder().setRef(h.ref).addAllTokens(early.getTokensList()).build());
    Set<Integer> atOne = new TreeSet<>();
    SparseActivations row = trace.getLayers(0).getPositions(1);
    for (int i = 0; i < row.getLatentsCount(); i++) if (row.getValues(i) > 0) atOne.add(row.getLatents(i));
    Set<Integer> planned = new TreeSet<>();
    for (KafkaProbe.Read<AblationTask> r : h.kafka.readAll(Topics.TASKS, AblationTask.parser(), t -> t.getJobId().equals(early.getId()))) {
      assertEquals(0, r.value().getLayer());
      planned.addAll(r.value().getLatentsList());
    }
    assertEquals(atOne, planned);
  }

  @Test
  void badSpecsAreRefusedNamingTheField() {
    int before = list().size();
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setPrompt(""), "prompt");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setPrompt("   "), "prompt");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setLayerStart(5).setLayerEnd(2), "5:2", "start", "must be below the end");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setLayerStart(2).setLayerEnd(3), "2:3", "at least two");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setLayerStart(-1).setLayerEnd(3), "layer_start", "negative");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setLayerStart(0).setLayerEnd(99), "0:99", "layer_end", "at most 4");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().addSites("1").addSites("2m"), "2m", "has no SAE");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().addSites("1").addSites("2").setLayerEnd(3), "give one of them");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setLayerStart(5), "5:4", "must be below the end");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setPruning(Pruning.newBuilder().setTopK(0)), "top_k");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setPruning(Pruning.newBuilder().setThreshold(0)), "threshold");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setPruning(Pruning.newBuilder().setThreshold(Double.NaN)), "threshold", "NaN");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setTaskBatchSize(-1), "task_batch_size");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setRef(h.gappy).setLayerStart(1).setLayerEnd(4), "layer 2 has none");
    refused(Status.Code.INVALID_ARGUMENT, h.spec().setTarget(999), "target");
    ModelRef missing = h.ref.toBuilder().setModel(h.ref.getModel() + "-missing").build();
    refused(Status.Code.NOT_FOUND, h.spec().setRef(missing), "model server", "-missing");
    assertEquals(before, list().size(), "no refused spec made a job");
  }

  /** A range whose layers all have SAEs is fine on the model with a gap elsewhere. */
  @Test
  void aRangeAroundAMissingSaeIsAccepted() {
    Job job = h.jobs().submit(h.spec().setRef(h.gappy).setLayerStart(0).setLayerEnd(2).build());
    assertEquals(Phase.PHASE_RUNNING, job.getPhase());
  }

  @Test
  void anUnavailableGraphServiceLeavesNothingBehind() {
    int jobs = list().size();
    long tasks = h.kafka.endOffset(Topics.TASKS), records = h.kafka.endOffset(Topics.JOBS);
    h.graph.registerAnswer = Status.UNAVAILABLE.withDescription("neo4j is down");
    String d = refused(Status.Code.UNAVAILABLE, h.spec(), "graph service", "neo4j is down");
    assertTrue(d.startsWith("graph service"), d);
    assertEquals(jobs, list().size());
    assertEquals(tasks, h.kafka.endOffset(Topics.TASKS), "no task was queued");
    assertEquals(records, h.kafka.endOffset(Topics.JOBS), "no job was recorded");
  }

  @Test
  void activationsTheGraphServiceRefusesAfterTheTasksAreQueuedFailTheJob() {
    int jobs = list().size();
    long tasks = h.kafka.endOffset(Topics.TASKS);
    h.graph.activationsAnswer = Status.UNAVAILABLE.withDescription("neo4j went down");
    try {
      refused(Status.Code.UNAVAILABLE, h.spec(), "graph service", "neo4j went down");
    } finally {
      h.graph.activationsAnswer = Status.OK;
    }
    List<Job> now = list();
    assertEquals(jobs + 1, now.size(), "the job is recorded");
    Job failed = now.stream().filter(j -> j.getPhase() == Phase.PHASE_FAILED && j.getError().contains("registering its activations"))
        .findFirst().orElseThrow(() -> new AssertionError("no job failed for its activations: " + now));
    assertTrue(failed.getError().contains("neo4j went down"), failed.getError());
    assertTrue(h.kafka.endOffset(Topics.TASKS) > tasks, "its tasks were queued before, and its workers will skip them");
  }

  /** What a Kubernetes probe or LocalCluster asks. */
  @Test
  void theHealthServiceAnswersServing() {
    HealthCheckResponse r = HealthGrpc.newBlockingStub(h.channel()).withDeadlineAfter(OrchestratorUnderTest.DEADLINE.toSeconds(), TimeUnit.SECONDS)
        .check(HealthCheckRequest.getDefaultInstance());
    assertEquals(HealthCheckResponse.ServingStatus.SERVING, r.getStatus());
  }

  private static List<Job> list() {
    return h.jobs().list(ListJobsRequest.getDefaultInstance()).getJobsList();
  }


  private static String refused(Status.Code code, JobSpec.Builder spec, String... named) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> h.jobs().submit(spec.build()));
    String d = e.getStatus().getDescription();
    assertEquals(code, e.getStatus().getCode(), "status of: " + d);
    for (String n : named) assertTrue(d != null && d.contains(n), "\"" + d + "\" should name " + n);
    return d;
  }
}
