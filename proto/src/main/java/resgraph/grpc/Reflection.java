package resgraph.grpc;

import io.grpc.BindableService;
import io.grpc.protobuf.services.ProtoReflectionService;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Named;
import jakarta.inject.Singleton;

/**
 * Server reflection, so grpcurl and clients in other languages can discover the API. Every
 * resgraph gRPC server (model server, orchestrator, graph service) serves it: micronaut-grpc binds
 * each BindableService bean of its context.
 */
@Factory
public final class Reflection {

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
}
