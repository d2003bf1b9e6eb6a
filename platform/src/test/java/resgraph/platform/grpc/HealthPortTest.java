package resgraph.platform.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import io.micronaut.context.ApplicationContext;
import java.net.ServerSocket;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The plaintext health port of a service without a gRPC server of its own (a worker): what Kubernetes probes. */
class HealthPortTest {

  @Test
  void aStartedServiceAnswersServingAndAClosedOneNothing() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    ManagedChannel channel = GrpcChannels.open("127.0.0.1:" + port, ClientCredentials.insecure());
    try {
      try (ApplicationContext service = ApplicationContext.run(Map.of("resgraph.health.port", port))) {
        assertEquals(ServingStatus.SERVING, check(channel));
      }
      StatusRuntimeException gone = assertThrows(StatusRuntimeException.class, () -> check(channel));
      assertEquals(io.grpc.Status.Code.UNAVAILABLE, gone.getStatus().getCode(), "the port closes with the service");
    } finally {
      GrpcChannels.close(channel);
    }
  }

  @Test
  void withoutThePropertyNothingListens() {
    try (ApplicationContext service = ApplicationContext.run()) {
      assertEquals(0, service.getBeansOfType(HealthPort.class).size());
    }
  }

  private static ServingStatus check(ManagedChannel channel) {
    return HealthGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS).check(HealthCheckRequest.getDefaultInstance())
        .getStatus();
  }
}
