package resgraph.orchestrator.grpc;

import io.grpc.ManagedChannel;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import resgraph.orchestrator.GraphServiceCalls;
import resgraph.platform.grpc.GrpcStatuses;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;

/** The graph service over gRPC. */
@Singleton
final class GraphServiceClient implements GraphServiceCalls {

  private static final Duration REGISTER_DEADLINE = Duration.ofSeconds(60);
  /** Pruning a large job and marking its circuit can take minutes; longer means the graph service is stuck. */
  private static final Duration FINALIZE_DEADLINE = Duration.ofMinutes(30);
  private static final String WHO = "graph service";

  private final ManagedChannel channel;

  GraphServiceClient(@Named("graph-service") ManagedChannel channel) {
    this.channel = channel;
  }

  @Override
  public void register(RegisterJobRequest request) {
    GrpcStatuses.call(WHO, GrpcStatuses::fromUpstream, () -> stub(REGISTER_DEADLINE).registerJob(request));
  }

  @Override
  public PruneResponse prune(String jobId, Pruning rule) {
    return GrpcStatuses.call(WHO, GrpcStatuses::failure,
        () -> stub(FINALIZE_DEADLINE).prune(PruneRequest.newBuilder().setJobId(jobId).setPruning(rule).build()));
  }

  @Override
  public AnnotateResponse annotate(AnnotateRequest request) {
    return GrpcStatuses.call(WHO, GrpcStatuses::failure, () -> stub(FINALIZE_DEADLINE).annotate(request));
  }

  @Override
  public boolean addToCorpus(String jobId) {
    return GrpcStatuses.call(WHO, GrpcStatuses::failure,
        () -> stub(FINALIZE_DEADLINE).addToCorpus(AddToCorpusRequest.newBuilder().setJobId(jobId).build())).getAdded();
  }

  private GraphServiceGrpc.GraphServiceBlockingStub stub(Duration deadline) {
    return GraphServiceGrpc.newBlockingStub(channel).withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }
}
