package resgraph.modelserver.grpc;

import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;
import resgraph.modelserver.ModelRequests;
import resgraph.platform.grpc.GrpcCalls;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.FaithfulnessRequest;
import resgraph.v1.FaithfulnessResponse;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/** The gRPC ModelService over {@link ModelRequests}: every problem becomes a status with a message, never a crash. */
@Singleton
public final class ModelEndpoint extends ModelServiceGrpc.ModelServiceImplBase {

  private static final GrpcCalls CALLS = new GrpcCalls("model server", null);

  private final ModelRequests requests;

  public ModelEndpoint(ModelRequests requests) {
    this.requests = requests;
  }

  @Override
  public void describe(DescribeRequest req, StreamObserver<DescribeResponse> out) {
    CALLS.unary(out, () -> requests.describe(req.getRef()));
  }

  @Override
  public void tokenize(TokenizeRequest req, StreamObserver<TokenizeResponse> out) {
    CALLS.unary(out, () -> requests.tokenize(req.getRef(), req.getText()));
  }

  @Override
  public void trace(TraceRequest req, StreamObserver<TraceResponse> out) {
    CALLS.unary(out, () -> requests.trace(req));
  }

  @Override
  public void ablate(AblateRequest req, StreamObserver<AblateResponse> out) {
    CALLS.unary(out, () -> requests.ablate(req));
  }

  @Override
  public void logitEffects(LogitEffectsRequest req, StreamObserver<LogitEffectsResponse> out) {
    CALLS.unary(out, () -> requests.logitEffects(req));
  }

  @Override
  public void faithfulness(FaithfulnessRequest req, StreamObserver<FaithfulnessResponse> out) {
    CALLS.unary(out, () -> requests.faithfulness(req));
  }
}
