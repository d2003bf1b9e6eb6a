package resgraph.orchestrator.grpc;

import io.grpc.ManagedChannel;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import java.util.concurrent.TimeUnit;
import resgraph.orchestrator.ModelServerCalls;
import resgraph.platform.grpc.GrpcStatuses;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/** The model server over gRPC, each call with a deadline long enough for a first use that downloads the model. */
@Singleton
final class ModelServerClient implements ModelServerCalls {

  private static final long DEADLINE_MINUTES = 10;
  private static final String WHO = "model server";

  private final ManagedChannel channel;

  ModelServerClient(@Named("model-server") ManagedChannel channel) {
    this.channel = channel;
  }

  @Override
  public DescribeResponse describe(ModelRef ref) {
    return GrpcStatuses.call(WHO, GrpcStatuses::fromUpstream, () -> stub().describe(DescribeRequest.newBuilder().setRef(ref).build()));
  }

  @Override
  public TokenizeResponse tokenize(ModelRef ref, String text) {
    return GrpcStatuses.call(WHO, GrpcStatuses::fromUpstream,
        () -> stub().tokenize(TokenizeRequest.newBuilder().setRef(ref).setText(text).build()));
  }

  @Override
  public TraceResponse trace(TraceRequest request) {
    return GrpcStatuses.call(WHO, GrpcStatuses::fromUpstream, () -> stub().trace(request));
  }

  @Override
  public LogitEffectsResponse logitEffects(LogitEffectsRequest request) {
    return GrpcStatuses.call(WHO, GrpcStatuses::failure, () -> stub().logitEffects(request));
  }

  private ModelServiceGrpc.ModelServiceBlockingStub stub() {
    return ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_MINUTES, TimeUnit.MINUTES);
  }
}
