package resgraph.orchestrator.grpc;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;
import java.util.function.Function;
import resgraph.orchestrator.ModelServerCalls;
import resgraph.platform.ResgraphException;
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
    return call(GrpcStatuses::fromUpstream, s -> s.describe(DescribeRequest.newBuilder().setRef(ref).build()));
  }

  @Override
  public TokenizeResponse tokenize(ModelRef ref, String text) {
    return call(GrpcStatuses::fromUpstream, s -> s.tokenize(TokenizeRequest.newBuilder().setRef(ref).setText(text).build()));
  }

  @Override
  public TraceResponse trace(TraceRequest request) {
    return call(GrpcStatuses::fromUpstream, s -> s.trace(request));
  }

  @Override
  public LogitEffectsResponse logitEffects(LogitEffectsRequest request) {
    return call(GrpcStatuses::failure, s -> s.logitEffects(request));
  }

  private <T> T call(BiFunction<String, StatusRuntimeException, ResgraphException> refusal,
      Function<ModelServiceGrpc.ModelServiceBlockingStub, T> rpc) {
    try {
      return rpc.apply(ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_MINUTES, TimeUnit.MINUTES));
    } catch (StatusRuntimeException e) {
      throw refusal.apply(WHO, e);
    }
  }
}
