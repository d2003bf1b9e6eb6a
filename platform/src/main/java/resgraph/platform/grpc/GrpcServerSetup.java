package resgraph.platform.grpc;

import io.grpc.BindableService;
import io.grpc.ServerBuilder;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.micronaut.context.annotation.Factory;
import io.micronaut.context.event.BeanCreatedEvent;
import io.micronaut.context.event.BeanCreatedEventListener;
import jakarta.inject.Named;
import jakarta.inject.Singleton;

/**
 * What every resgraph gRPC server (model server, orchestrator, graph service) serves besides its
 * own service, and how: server reflection, so grpcurl and clients in other languages can discover
 * the API; the standard health service (micronaut-grpc registers it, grpc-services being on the
 * classpath); and messages up to {@link GrpcChannels#MAX_MESSAGE_BYTES}, as every channel takes.
 * micronaut-grpc binds each BindableService bean of a context to its server.
 */
@Factory
public final class GrpcServerSetup {

  @Singleton
  @Named("reflection-v1")
  BindableService reflection() {
    return ProtoReflectionServiceV1.newInstance();
  }

  /** The v1alpha name that many existing clients still ask for first. */
  @Singleton
  @Named("reflection-v1alpha")
  @SuppressWarnings("deprecation")
  BindableService reflectionAlpha() {
    return ProtoReflectionService.newInstance();
  }

  /** The message size of every server: requests such as RegisterJob carry every layer's activations. */
  @Singleton
  static final class MessageSize implements BeanCreatedEventListener<ServerBuilder<?>> {
    @Override
    public ServerBuilder<?> onCreated(BeanCreatedEvent<ServerBuilder<?>> event) {
      return event.getBean().maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES);
    }
  }
}
