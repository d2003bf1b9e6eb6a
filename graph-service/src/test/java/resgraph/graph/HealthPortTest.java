package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.health.v1.HealthGrpc;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import resgraph.platform.grpc.ClientCredentials;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.GetCircuitRequest;

/**
 * The graph service's plaintext health port, as Kubernetes probes it: the answer its TLS server's
 * health service gives, and nothing else served there.
 */
@ExtendWith(GraphUnderTest.Start.class)
class HealthPortTest {

  @Test
  void answersWhatTheServerAnswersAndServesNothingElse() throws Exception {
    ManagedChannel plaintext = GrpcChannels.open("127.0.0.1:" + GraphUnderTest.HEALTH_PORT, ClientCredentials.insecure());
    try {
      HealthGrpc.HealthBlockingStub health = HealthGrpc.newBlockingStub(plaintext).withDeadlineAfter(30, TimeUnit.SECONDS);
      assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.getDefaultInstance()).getStatus());
      assertEquals(ServingStatus.SERVING, health.check(HealthCheckRequest.newBuilder().setService(GraphServiceGrpc.SERVICE_NAME).build())
          .getStatus(), "under the service's own name too");
      StatusRuntimeException other = assertThrows(StatusRuntimeException.class,
          () -> GraphServiceGrpc.newBlockingStub(plaintext).withDeadlineAfter(30, TimeUnit.SECONDS).getCircuit(GetCircuitRequest.newBuilder().setJobId("any").build()));
      assertEquals(Status.Code.UNIMPLEMENTED, other.getStatus().getCode(), "the graph service itself only over TLS with the token");
    } finally {
      GrpcChannels.close(plaintext);
    }
  }
}
