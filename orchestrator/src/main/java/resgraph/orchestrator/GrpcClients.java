package resgraph.orchestrator;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.ModelServiceGrpc;

/** Channels to the model server and the graph service, and the blocking stubs over them. */
@Factory
final class GrpcClients {

  /** A long prompt's trace of every layer can pass gRPC's 4 MB default. */
  private static final int MAX_MESSAGE = 64 << 20;

  @Singleton
  @Named("model-server")
  @Bean(preDestroy = "shutdownNow")
  ManagedChannel modelChannel(@Value("${resgraph.model-server.address}") String address) {
    return channel(address);
  }

  @Singleton
  @Named("graph-service")
  @Bean(preDestroy = "shutdownNow")
  ManagedChannel graphChannel(@Value("${resgraph.graph-service.address}") String address) {
    return channel(address);
  }

  @Singleton
  ModelServiceGrpc.ModelServiceBlockingStub model(@Named("model-server") ManagedChannel channel) {
    return ModelServiceGrpc.newBlockingStub(channel);
  }

  @Singleton
  GraphServiceGrpc.GraphServiceBlockingStub graph(@Named("graph-service") ManagedChannel channel) {
    return GraphServiceGrpc.newBlockingStub(channel);
  }

  private static ManagedChannel channel(String address) {
    return ManagedChannelBuilder.forTarget(address).usePlaintext().maxInboundMessageSize(MAX_MESSAGE).build();
  }
}
