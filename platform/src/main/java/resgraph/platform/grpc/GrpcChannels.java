package resgraph.platform.grpc;

import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.util.concurrent.TimeUnit;

/** Every gRPC channel between resgraph's processes, the command line's included, and its one message-size policy. */
public final class GrpcChannels {

  /**
   * The largest gRPC message, in either direction, of every server and channel: a GetCircuit or an
   * Export that carries every raw edge of a large job, or an Ablate reply of thousands of latents.
   */
  public static final int MAX_MESSAGE_BYTES = 512 << 20;

  private GrpcChannels() {}

  /**
   * A channel to {@code target}, host:port or any gRPC target such as dns:///name:port (the first
   * address that answers), showing it {@code credentials}.
   */
  public static ManagedChannel open(String target, ClientCredentials credentials) {
    return builder(target, credentials).build();
  }

  /**
   * A channel that spreads its calls over every address {@code target} names, round
   * robin (so workers share the model servers a headless Kubernetes Service names). It reconnects
   * to an address that went away with a backoff of its own that grows to two minutes: a caller
   * that retries on its own should {@link ManagedChannel#resetConnectBackoff} first.
   */
  public static ManagedChannel openSpread(String target, ClientCredentials credentials) {
    return builder(target, credentials).defaultLoadBalancingPolicy("round_robin").build();
  }

  private static ManagedChannelBuilder<?> builder(String target, ClientCredentials credentials) {
    return Grpc.newChannelBuilder(target, credentials.channelCredentials()).maxInboundMessageSize(MAX_MESSAGE_BYTES);
  }

  /** Cancels what is in flight and waits briefly for the channel to end. */
  public static void close(ManagedChannel channel) throws InterruptedException {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
