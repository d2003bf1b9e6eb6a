package resgraph.orchestrator.grpc;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Function;
import resgraph.orchestrator.GraphServiceCalls;
import resgraph.platform.ResgraphException;
import resgraph.platform.grpc.GrpcStatuses;
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
    call(REGISTER_DEADLINE, GrpcStatuses::fromUpstream, s -> s.registerJob(request));
  }

  @Override
  public PruneResponse prune(String jobId, Pruning rule) {
    return call(FINALIZE_DEADLINE, GrpcStatuses::failure, s -> s.prune(PruneRequest.newBuilder().setJobId(jobId).setPruning(rule).build()));
  }

  @Override
  public AnnotateResponse annotate(AnnotateRequest request) {
    return call(FINALIZE_DEADLINE, GrpcStatuses::failure, s -> s.annotate(request));
  }

  private <T> T call(Duration deadline, BiFunction<String, StatusRuntimeException, ResgraphException> refusal,
      Function<GraphServiceGrpc.GraphServiceBlockingStub, T> rpc) {
    try {
      return rpc.apply(GraphServiceGrpc.newBlockingStub(channel).withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS));
    } catch (StatusRuntimeException e) {
      throw refusal.apply(WHO, e);
    }
  }
}
