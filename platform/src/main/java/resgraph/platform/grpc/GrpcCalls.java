package resgraph.platform.grpc;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ResgraphException;

/**
 * How a service's gRPC endpoint answers: every problem becomes a status with a message, never a
 * crash. A {@link ResgraphException} answers with its kind's status ({@link GrpcStatuses});
 * what the service's {@code translate} makes one of (a database or model library's own errors)
 * likewise; running out of memory RESOURCE_EXHAUSTED; anything else is a fault of the service's
 * own, logged and answered INTERNAL.
 */
public final class GrpcCalls {

  private static final Logger LOG = LoggerFactory.getLogger(GrpcCalls.class);

  private final String service;
  private final Function<RuntimeException, ResgraphException> translate;

  /**
   * @param service how INTERNAL answers name the service, e.g. "graph service"
   * @param translate the platform error a foreign exception stands for, or null for none
   */
  public GrpcCalls(String service, Function<RuntimeException, ResgraphException> translate) {
    this.service = service;
    this.translate = translate == null ? e -> null : translate;
  }

  /** Answers a unary call with what {@code call} returns, or with the status of what it throws. */
  public <T> void unary(StreamObserver<T> out, Supplier<T> call) {
    T reply;
    try {
      reply = call.get();
    } catch (RuntimeException | OutOfMemoryError e) {
      out.onError(status(e).asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }

  /** The status that answers a failed call. */
  public Status status(Throwable e) {
    if (e instanceof ResgraphException r) return GrpcStatuses.status(r);
    if (e instanceof RuntimeException r) {
      ResgraphException known = translate.apply(r);
      if (known != null) return GrpcStatuses.status(known);
    }
    if (e instanceof OutOfMemoryError) {
      LOG.error("out of memory", e);
      return Status.RESOURCE_EXHAUSTED.withDescription("the " + service + " ran out of memory: " + e.getMessage());
    }
    LOG.error("request failed", e);
    return Status.INTERNAL.withDescription(service + " error: " + e);
  }
}
