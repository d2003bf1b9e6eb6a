package resgraph.platform.grpc;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.ClientInterceptors;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;

/** What the server's token check lets through: any token of its file (two while one is rotated), health checks, nothing else. */
class BearerTokenTest {

  @TempDir Path dir;
  private Server server;
  private ManagedChannel channel;

  @BeforeEach
  void serve() throws Exception {
    Path file = dir.resolve("token");
    Files.writeString(file, "new-token\n\n  old-token  \n");
    ModelServiceGrpc.ModelServiceImplBase answering = new ModelServiceGrpc.ModelServiceImplBase() {
      @Override
      public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> response) {
        response.onNext(TokenizeResponse.newBuilder().addTokens(7).build());
        response.onCompleted();
      }
    };
    BearerToken check = new BearerToken(Tokens.read(file));
    server = InProcessServerBuilder.forName("bearer-token-test").directExecutor()
        .addService(ServerInterceptors.intercept(answering, check))
        .addService(ServerInterceptors.intercept(new HealthStatusManager().getHealthService(), check)).build().start();
    channel = InProcessChannelBuilder.forName("bearer-token-test").directExecutor().build();
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  @Test
  void eitherTokenOfTheFileIsLetThrough() {
    assertEquals(7, tokenize("Bearer new-token").getTokens(0));
    assertEquals(7, tokenize("Bearer old-token").getTokens(0));
  }

  @Test
  void aMissingMalformedOrWrongTokenIsUnauthenticated() {
    assertRefused(null, "needs the cluster's bearer token");
    assertRefused("new-token", "must be \"Bearer TOKEN\"");
    assertRefused("Bearer new-toke", "not this cluster's");
    assertRefused("Bearer new-token-and-more", "not this cluster's");
  }

  @Test
  void healthChecksNeedNoToken() {
    assertEquals(io.grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING,
        HealthGrpc.newBlockingStub(channel).check(HealthCheckRequest.getDefaultInstance()).getStatus());
  }

  @Test
  void aClientSendsTheFirstTokenAndAnEmptyFileIsRefused() throws Exception {
    Path file = dir.resolve("two");
    Files.writeString(file, "\n first \nsecond\n");
    assertEquals("first", Tokens.read(file).first());
    Files.writeString(file, " \n\n");
    IllegalArgumentException empty = assertThrows(IllegalArgumentException.class, () -> Tokens.read(file));
    assertTrue(empty.getMessage().contains(file.toString()), empty.getMessage());
  }

  private TokenizeResponse tokenize(String authorization) {
    Metadata headers = new Metadata();
    if (authorization != null) headers.put(ClientCredentials.AUTHORIZATION, authorization);
    return ModelServiceGrpc.newBlockingStub(ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers)))
        .tokenize(TokenizeRequest.getDefaultInstance());
  }

  private void assertRefused(String authorization, String why) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> tokenize(authorization));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains(why), e.getStatus().toString());
  }
}
