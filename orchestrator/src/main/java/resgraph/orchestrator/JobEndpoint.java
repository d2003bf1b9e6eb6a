package resgraph.orchestrator;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.v1.CancelJobRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ListJobsRequest;
import resgraph.v1.ListJobsResponse;

/** The gRPC face of the orchestrator: every problem becomes a status with a message. */
@Singleton
final class JobEndpoint extends JobServiceGrpc.JobServiceImplBase {

  private static final Logger LOG = LoggerFactory.getLogger(JobEndpoint.class);

  private final Submitter submitter;
  private final JobStore store;

  JobEndpoint(Submitter submitter, JobStore store) {
    this.submitter = submitter;
    this.store = store;
  }

  @Override
  public void submit(JobSpec req, StreamObserver<Job> out) {
    answer(out, () -> submitter.submit(req));
  }

  @Override
  public void get(GetJobRequest req, StreamObserver<Job> out) {
    answer(out, () -> store.require(req.getId()).getJob());
  }

  @Override
  public void list(ListJobsRequest req, StreamObserver<ListJobsResponse> out) {
    answer(out, () -> ListJobsResponse.newBuilder().addAllJobs(store.newestFirst()).build());
  }

  @Override
  public void cancel(CancelJobRequest req, StreamObserver<Job> out) {
    answer(out, () -> {
      JobRecord r = store.update(req.getId(), Transitions::cancelled);
      LOG.info("job {} cancelled", req.getId());
      return r.getJob();
    });
  }

  /** The job now, then each change; a client that goes away stops being told. */
  @Override
  public void watch(GetJobRequest req, StreamObserver<Job> out) {
    ServerCallStreamObserver<Job> call = (ServerCallStreamObserver<Job>) out;
    AtomicReference<Runnable> unwatch = new AtomicReference<>(() -> {});
    call.setOnCancelHandler(() -> unwatch.get().run());
    try {
      unwatch.set(store.watch(req.getId(), job -> {
        call.onNext(job);
        if (Transitions.ended(job.getPhase())) call.onCompleted();
      }));
    } catch (StatusRuntimeException e) {
      call.onError(e);
    }
  }

  private static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
    T reply;
    try {
      reply = call.get();
    } catch (StatusRuntimeException e) {
      out.onError(e);
      return;
    } catch (RuntimeException e) {
      LOG.error("request failed", e);
      out.onError(Status.INTERNAL.withDescription("orchestrator error: " + e).asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }
}
