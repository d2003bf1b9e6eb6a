package resgraph.worker;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.micronaut.context.annotation.Value;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import resgraph.kafka.Topics;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;
import resgraph.v1.ModelServiceGrpc;

/** The model server as a worker uses it: one channel, Ablate with a deadline. */
@Singleton
final class ModelClient {

  private final ManagedChannel channel;
  private final Duration timeout;

  ModelClient(
      @Value("${resgraph.model-server.address}") String address,
      @Value("${resgraph.worker.ablate-timeout:5m}") Duration timeout) {
    // a reply carries a whole task's effects, which may be as large as the Kafka message they become;
    // round robin spreads tasks over every model server a dns:/// address names
    this.channel = ManagedChannelBuilder.forTarget(address).usePlaintext().defaultLoadBalancingPolicy("round_robin")
        .maxInboundMessageSize(Topics.MAX_MESSAGE_BYTES).build();
    this.timeout = timeout;
  }

  /** METHOD.md steps 3-5 for the task's latents; a failure is a StatusRuntimeException. */
  AblateResponse ablate(AblationTask task) {
    AblateRequest req = AblateRequest.newBuilder()
        .setRef(task.getRef())
        .addAllTokens(task.getTokensList())
        .setLayer(task.getLayer())
        .addAllLatents(task.getLatentsList())
        .setTarget(task.getTarget())
        .build();
    return ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(timeout.toMillis(), TimeUnit.MILLISECONDS).ablate(req);
  }

  /**
   * Reconnects at the next call instead of after the channel's own backoff (which grows to two
   * minutes), so that the worker's retry policy alone decides when the model server is tried again.
   */
  void reconnectNow() {
    channel.resetConnectBackoff();
  }

  @PreDestroy
  void close() throws InterruptedException {
    channel.shutdownNow();
    channel.awaitTermination(5, TimeUnit.SECONDS);
  }
}
