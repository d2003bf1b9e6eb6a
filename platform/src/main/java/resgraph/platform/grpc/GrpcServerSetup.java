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
 * classpath); messages up to {@link GrpcChannels#MAX_MESSAGE_BYTES}, as every channel takes; and,
 * unless {@link SecurityConfig} is turned off, TLS and the bearer token on every call.
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

  /** The transport of every server: its message size (requests such as RegisterJob carry every layer's activations) and security. */
  @Singleton
  static final class Transport implements BeanCreatedEventListener<ServerBuilder<?>> {
    private final SecurityConfig security;

    Transport(SecurityConfig security) {
      this.security = security;
    }

    @Override
    public ServerBuilder<?> onCreated(BeanCreatedEvent<ServerBuilder<?>> event) {
      ServerBuilder<?> server = event.getBean().maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES);
      if (!security.enabled()) return server;
      return server.useTransportSecurity(security.certificate().toFile(), security.privateKey().toFile())
          .intercept(new BearerToken(security.tokens()));
    }
  }
}
