package resgraph.orchestrator.grpc;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.orchestrator.Corpora;
import resgraph.orchestrator.JobStore;
import resgraph.orchestrator.Submission;
import resgraph.platform.grpc.GrpcCalls;
import resgraph.platform.job.JobRules;
import resgraph.v1.CancelJobRequest;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusSpec;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.ListJobsResponse;
import resgraph.v1.Phase;

/** The gRPC JobService over the orchestrator's jobs: every problem becomes a status with a message. */
@Singleton
final class JobEndpoint extends JobServiceGrpc.JobServiceImplBase {

  private static final Logger LOG = LoggerFactory.getLogger(JobEndpoint.class);
  private static final GrpcCalls CALLS = new GrpcCalls("orchestrator", null);

  private final Submission submission;
  private final JobStore store;
  private final Corpora corpora;

  JobEndpoint(Submission submission, JobStore store, Corpora corpora) {
    this.submission = submission;
    this.store = store;
    this.corpora = corpora;
  }

  @Override
  public void submit(JobSpec req, StreamObserver<Job> out) {
    CALLS.unary(out, () -> submission.submit(req));
  }

  @Override
  public void get(GetJobRequest req, StreamObserver<Job> out) {
    CALLS.unary(out, () -> store.require(req.getId()).getJob());
  }

  @Override
  public void list(ListJobsRequest req, StreamObserver<ListJobsResponse> out) {
    CALLS.unary(out, () -> ListJobsResponse.newBuilder().addAllJobs(store.newestFirst()).build());
  }

  @Override
  public void cancel(CancelJobRequest req, StreamObserver<Job> out) {
    CALLS.unary(out, () -> {
      Job job = store.cancel(req.getId());
      LOG.info("job {} cancelled", req.getId());
      return job;
    });
  }

  /** The job now, then each change; a client that goes away stops being told. */
  @Override
  public void watch(GetJobRequest req, StreamObserver<Job> out) {
    stream(out, send -> store.watch(req.getId(), send), Job::getPhase);
  }

  @Override
  public void submitCorpus(CorpusSpec req, StreamObserver<CorpusJob> out) {
    CALLS.unary(out, () -> corpora.submit(req));
  }

  @Override
  public void getCorpusJob(GetJobRequest req, StreamObserver<CorpusJob> out) {
    CALLS.unary(out, () -> corpora.get(req.getId()));
  }

  @Override
  public void watchCorpus(GetJobRequest req, StreamObserver<CorpusJob> out) {
    stream(out, send -> corpora.watch(req.getId(), send), CorpusJob::getPhase);
  }

  @Override
  public void cancelCorpus(CancelJobRequest req, StreamObserver<CorpusJob> out) {
    CALLS.unary(out, () -> corpora.cancel(req.getId()));
  }

  /** Streams what {@code watch} sends until its phase has ended; a client that goes away stops being told. */
  private static <T> void stream(StreamObserver<T> out, Function<Consumer<T>, Runnable> watch, Function<T, Phase> phase) {
    ServerCallStreamObserver<T> call = (ServerCallStreamObserver<T>) out;
    AtomicReference<Runnable> unwatch = new AtomicReference<>(() -> {});
    call.setOnCancelHandler(() -> unwatch.get().run());
    try {
      unwatch.set(watch.apply(value -> {
        call.onNext(value);
        if (JobRules.ended(phase.apply(value))) call.onCompleted();
      }));
    } catch (RuntimeException e) {
      call.onError(CALLS.status(e).asRuntimeException());
    }
  }
}
