package resgraph.worker.grpc;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.util.concurrent.TimeUnit;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.grpc.GrpcStatuses;
import resgraph.platform.grpc.SecurityConfig;
import resgraph.platform.grpc.UpstreamChannels;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;
import resgraph.v1.ModelServiceGrpc;
import resgraph.worker.Ablator;
import resgraph.worker.WorkerConfig;

/** Ablate on the model server, with the worker's deadline, spread over every model server its address names. */
@Singleton
final class AblateClient implements Ablator {

  private final ManagedChannel channel;
  private final long timeoutMillis;

  AblateClient(UpstreamChannels.ModelServerAddress address, SecurityConfig security, WorkerConfig config) {
    this.channel = GrpcChannels.openSpread(address.address(), security.client());
    this.timeoutMillis = config.ablateTimeout().toMillis();
  }

  @Override
  public AblateResponse ablate(AblationTask task) throws InterruptedException {
    AblateRequest req = AblateRequest.newBuilder()
        .setRef(task.getRef())
        .addAllTokens(task.getTokensList())
        .setLayer(task.getLayer())
        .setHookName(task.getHookName())
        .setMeasureHookName(task.getMeasureHookName())
        .addAllLatents(task.getLatentsList())
        .setTarget(task.getTarget())
        .setMethod(task.getMethod())
        .setIgSteps(task.getIgSteps())
        .build();
    // reconnects now instead of after the channel's own backoff (which grows to two minutes), so
    // that the worker's backoff alone decides when a model server that was away is tried again
    channel.resetConnectBackoff();
    try {
      return ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS).ablate(req);
    } catch (StatusRuntimeException e) {
      // the blocking stub turns an interrupt into CANCELLED and sets the flag again
      if (Thread.interrupted()) throw new InterruptedException("abandoned " + task.getJobId() + "/" + task.getTask());
      throw GrpcStatuses.failure("model server", e);
    }
  }

  @PreDestroy
  void close() throws InterruptedException {
    GrpcChannels.close(channel);
  }
}
