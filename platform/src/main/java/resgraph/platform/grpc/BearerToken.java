package resgraph.platform.grpc;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthGrpc;

/**
 * The server's side of the bearer token: every call but a health check must carry
 * "authorization: Bearer TOKEN" with the cluster's token, else it ends UNAUTHENTICATED before the
 * service sees it ({@link Tokens}: any of the cluster's tokens, while one is rotated). Health checks
 * stay open so that probes and supervisors need no secret; they say only whether the server serves.
 */
final class BearerToken implements ServerInterceptor {

  private static final ServerCall.Listener<Object> NOTHING = new ServerCall.Listener<>() {};

  private final Tokens tokens;

  BearerToken(Tokens tokens) {
    this.tokens = tokens;
  }

  @Override
  @SuppressWarnings("unchecked")
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    if (call.getMethodDescriptor().getServiceName().equals(HealthGrpc.SERVICE_NAME)) return next.startCall(call, headers);
    String given = headers.get(ClientCredentials.AUTHORIZATION);
    String problem = given == null ? "this server needs the cluster's bearer token (authorization: Bearer TOKEN)"
        : !given.startsWith("Bearer ") ? "the authorization header must be \"Bearer TOKEN\""
        : !tokens.accepts(given.substring("Bearer ".length())) ? "the bearer token is not this cluster's" : null;
    if (problem == null) return next.startCall(call, headers);
    call.close(Status.UNAUTHENTICATED.withDescription(problem), new Metadata());
    return (ServerCall.Listener<Q>) NOTHING;
  }
}
