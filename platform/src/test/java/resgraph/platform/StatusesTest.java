package resgraph.platform;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import org.junit.jupiter.api.Test;
import resgraph.platform.ResgraphException.Kind;
import resgraph.platform.grpc.GrpcStatuses;
import resgraph.platform.http.HttpStatuses;

/** The one mapping of error kinds to gRPC and HTTP statuses. */
class StatusesTest {

  @Test
  void aKindPassedOnByAnotherServiceIsAnsweredWithTheSameStatus() {
    for (Kind kind : Kind.values()) {
      Status.Code code = GrpcStatuses.code(kind);
      assertEquals(code, GrpcStatuses.code(GrpcStatuses.kind(code)), kind.name());
    }
  }

  @Test
  void theModelsKindsAnswerAsTheModelServerAlwaysHas() {
    assertEquals(Status.Code.INVALID_ARGUMENT, GrpcStatuses.code(Kind.BAD_REQUEST));
    assertEquals(Status.Code.NOT_FOUND, GrpcStatuses.code(Kind.NOT_FOUND));
    assertEquals(Status.Code.FAILED_PRECONDITION, GrpcStatuses.code(Kind.UNUSABLE_FILE));
    assertEquals(Status.Code.UNAVAILABLE, GrpcStatuses.code(Kind.UNAVAILABLE));
  }

  @Test
  void theBrowsersCodesAreTheGraphServicesAsTheyWere() {
    assertEquals(400, HttpStatuses.code(Kind.BAD_REQUEST));
    assertEquals(404, HttpStatuses.code(Kind.NOT_FOUND));
    assertEquals(409, HttpStatuses.code(Kind.NOT_READY));
    assertEquals(504, HttpStatuses.code(Kind.TIMEOUT));
    assertEquals(503, HttpStatuses.code(Kind.UNAVAILABLE));
  }

  @Test
  void anUpstreamRefusalNamesWhoAnswered() {
    StatusRuntimeException refused = Status.NOT_FOUND.withDescription("no model folder at /x").asRuntimeException();
    ResgraphException passedOn = GrpcStatuses.fromUpstream("model server", refused);
    assertEquals(Kind.NOT_FOUND, passedOn.kind());
    assertEquals("model server: no model folder at /x", passedOn.getMessage());
    ResgraphException failed = GrpcStatuses.failure("graph service", Status.FAILED_PRECONDITION.withDescription("no edges").asRuntimeException());
    assertEquals("graph service: FAILED_PRECONDITION: no edges", failed.getMessage());
    assertTrue(!failed.kind().isTransient());
    assertTrue(GrpcStatuses.failure("model server", Status.UNAVAILABLE.asRuntimeException()).kind().isTransient());
  }
}
