package resgraph.orchestrator;

import com.google.protobuf.MessageLite;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.kafka.Topics;
import resgraph.orchestrator.JobSpecs.LayerRange;
import resgraph.orchestrator.Planner.Plan;
import resgraph.v1.AblationTask;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.Progress;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * Submit: checks a spec, traces its prompt, plans its tasks (METHOD.md step 2), registers the job
 * with the graph service and queues the tasks.
 *
 * <p>The order makes every failure clean. Nothing is written anywhere until the graph service has
 * the job, so a refusal there (UNAVAILABLE included) leaves no trace. The job is then recorded
 * as PLANNING before its first task is queued, so no event can arrive for a job the orchestrator
 * does not know, and becomes RUNNING only once every task is acknowledged by Kafka: a job found
 * still PLANNING after a restart lost some of its tasks, and {@link Recovery} fails it.
 */
@Singleton
final class Submitter {

  private static final Logger LOG = LoggerFactory.getLogger(Submitter.class);
  /** The first use of a model may download it. */
  private static final Duration MODEL_DEADLINE = Duration.ofMinutes(10);
  private static final Duration GRAPH_DEADLINE = Duration.ofSeconds(60);

  private final ModelServiceGrpc.ModelServiceBlockingStub model;
  private final GraphServiceGrpc.GraphServiceBlockingStub graph;
  private final JobStore store;
  private final KafkaProducer<String, MessageLite> producer;
  private final Finalizer finalizer;
  private final JobIds ids = new JobIds();

  Submitter(ModelServiceGrpc.ModelServiceBlockingStub model, GraphServiceGrpc.GraphServiceBlockingStub graph, JobStore store,
      KafkaProducer<String, MessageLite> producer, Finalizer finalizer) {
    this.model = model;
    this.graph = graph;
    this.store = store;
    this.producer = producer;
    this.finalizer = finalizer;
  }

  /** The job as queued (RUNNING, or further along if its events came quickly). */
  Job submit(JobSpec request) {
    long start = System.nanoTime();
    JobSpec spec = JobSpecs.resolve(request);
    DescribeResponse described = upstream("model server", () -> model().describe(DescribeRequest.newBuilder()
        .setRef(spec.getRef()).build()));
    LayerRange layers = JobSpecs.layers(spec, described);
    TokenizeResponse tokens = upstream("model server", () -> model().tokenize(TokenizeRequest.newBuilder()
        .setRef(spec.getRef()).setText(spec.getPrompt()).build()));
    TraceRequest.Builder traceRequest = TraceRequest.newBuilder().setRef(spec.getRef()).addAllTokens(tokens.getTokensList());
    if (spec.hasTarget()) traceRequest.setTarget(spec.getTarget());
    TraceResponse trace = upstream("model server", () -> model().trace(traceRequest.build()));

    Instant now = Instant.now();
    String id = ids.next(now, taken -> store.get(taken).isPresent());
    Plan plan = Planner.plan(id, spec, tokens.getTokensList(), trace, layers, tokens.getBosPrepended() ? 1 : 0);
    Timestamp created = Transitions.timestamp(now);
    Job job = Job.newBuilder()
        .setId(id)
        .setSpec(spec)
        .setPhase(Phase.PHASE_PLANNING)
        .setProgress(Progress.newBuilder().setTasksTotal(plan.tasks().size()).setCandidates(plan.candidates()))
        .addAllTokens(tokens.getTokensList())
        .addAllTokenStrings(tokens.getTokenStringsList())
        .setTarget(trace.getTarget())
        .setLayerStart(layers.start())
        .setLayerEnd(layers.end())
        .setCreated(created)
        .setUpdated(created)
        .build();
    upstream("graph service", () -> graph.withDeadlineAfter(GRAPH_DEADLINE.toSeconds(), TimeUnit.SECONDS)
        .registerJob(RegisterJobRequest.newBuilder().setJob(job).addAllActivations(trace.getLayersList())
            .addAllPredictions(trace.getPredictionsList()).build()));

    store.create(JobRecord.newBuilder().setJob(job).build());
    queue(id, plan.tasks());
    Duration planning = Duration.ofNanos(System.nanoTime() - start);
    JobRecord queued = store.update(id, r -> Transitions.running(r, planning));
    LOG.info("job {}: {} candidates in {} tasks, layers {}:{}", id, plan.candidates(), plan.tasks().size(), layers.start(),
        layers.end());
    finalizer.finalizeIfDue(queued.getJob());
    return queued.getJob();
  }

  private ModelServiceGrpc.ModelServiceBlockingStub model() {
    return model.withDeadlineAfter(MODEL_DEADLINE.toSeconds(), TimeUnit.SECONDS);
  }

  /** Sends every task keyed job/task (so one job spreads over the partitions) and waits until Kafka has them all. */
  private void queue(String id, List<AblationTask> tasks) {
    String why;
    try {
      List<Future<RecordMetadata>> sent = new ArrayList<>();
      for (AblationTask t : tasks) sent.add(producer.send(new ProducerRecord<>(Topics.TASKS, id + "/" + t.getTask(), t)));
      producer.flush();
      for (Future<RecordMetadata> f : sent) f.get();
      return;
    } catch (ExecutionException e) {
      why = e.getCause().getMessage();
    } catch (KafkaException e) {
      why = e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      why = "interrupted";
    }
    String reason = "queueing its tasks on " + Topics.TASKS + " failed: " + why;
    store.update(id, r -> Transitions.failed(r, reason));
    throw Status.UNAVAILABLE.withDescription("job " + id + ": " + reason).asRuntimeException();
  }

  /** A call to another service; its status passes through, its message prefixed with who answered. */
  private static <T> T upstream(String service, Supplier<T> call) {
    try {
      return call.get();
    } catch (StatusRuntimeException e) {
      Status s = e.getStatus();
      throw s.withDescription(service + ": " + (s.getDescription() == null ? s.getCode().name() : s.getDescription()))
          .asRuntimeException();
    }
  }
}
