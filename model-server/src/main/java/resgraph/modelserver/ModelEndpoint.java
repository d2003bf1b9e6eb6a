package resgraph.modelserver;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.model.ModelException;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/** The gRPC face of {@link ModelService}: every problem becomes a status with a message, never a crash. */
@Singleton
public final class ModelEndpoint extends ModelServiceGrpc.ModelServiceImplBase {

  private static final Logger LOG = LoggerFactory.getLogger(ModelEndpoint.class);

  private final ModelService service;

  public ModelEndpoint(ModelService service) {
    this.service = service;
  }

  @Override
  public void describe(DescribeRequest req, StreamObserver<DescribeResponse> out) {
    answer(out, () -> service.describe(req.getRef()));
  }

  @Override
  public void tokenize(TokenizeRequest req, StreamObserver<TokenizeResponse> out) {
    answer(out, () -> service.tokenize(req.getRef(), req.getText()));
  }

  @Override
  public void trace(TraceRequest req, StreamObserver<TraceResponse> out) {
    answer(out, () -> service.trace(req));
  }

  @Override
  public void ablate(AblateRequest req, StreamObserver<AblateResponse> out) {
    answer(out, () -> service.ablate(req));
  }

  @Override
  public void logitEffects(LogitEffectsRequest req, StreamObserver<LogitEffectsResponse> out) {
    answer(out, () -> service.logitEffects(req));
  }

  private static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
    T reply;
    try {
      reply = call.get();
    } catch (ModelException e) {
      out.onError(status(e.kind()).withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (OutOfMemoryError e) {
      LOG.error("out of memory", e);
      out.onError(Status.RESOURCE_EXHAUSTED.withDescription("the model server ran out of memory: " + e.getMessage())
          .asRuntimeException());
      return;
    } catch (RuntimeException e) {
      LOG.error("request failed", e);
      out.onError(Status.INTERNAL.withDescription("model server error: " + e).asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }

  static Status status(ModelException.Kind kind) {
    return switch (kind) {
      case BAD_REQUEST -> Status.INVALID_ARGUMENT;
      case NOT_FOUND -> Status.NOT_FOUND;
      case UNUSABLE_FILE -> Status.FAILED_PRECONDITION;
      case UNAVAILABLE -> Status.UNAVAILABLE;
    };
  }
}
