package resgraph.graph;

import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.annotation.Value;
import jakarta.inject.Named;
import jakarta.inject.Singleton;
import resgraph.v1.ModelServiceGrpc;

/** The channel to the model server ({@code resgraph.model-server.address}, host:port), for LogitEffects. */
@Factory
final class ModelClientFactory {

  /** Named: micronaut-grpc has a ManagedChannel of its own (to this server). */
  @Singleton
  @Named("model-server")
  @Bean(preDestroy = "shutdownNow")
  ManagedChannel modelChannel(@Value("${resgraph.model-server.address}") String address) {
    return ManagedChannelBuilder.forTarget(address).usePlaintext().build();
  }

  @Singleton
  ModelServiceGrpc.ModelServiceBlockingStub modelService(@Named("model-server") ManagedChannel modelChannel) {
    return ModelServiceGrpc.newBlockingStub(modelChannel);
  }
}
