package resgraph.platform.grpc;

import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import io.grpc.health.v1.HealthGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;

/**
 * The server's side of the bearer token: every call but a health check must carry
 * "authorization: Bearer TOKEN" with the cluster's token, else it ends UNAUTHENTICATED before the
 * service sees it. Health checks stay open so that probes and supervisors need no secret; they say
 * only whether the server serves.
 */
final class BearerToken implements ServerInterceptor {

  private static final ServerCall.Listener<Object> NOTHING = new ServerCall.Listener<>() {};

  private final byte[] token;

  BearerToken(String token) {
    this.token = token.getBytes(StandardCharsets.UTF_8);
  }

  /** The token a file holds, surrounding whitespace aside; an empty or unreadable file is an error naming it. */
  static String read(Path file) {
    String token;
    try {
      token = Files.readString(file).strip();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the token file " + file, e);
    }
    if (token.isEmpty()) throw new IllegalArgumentException("the token file " + file + " is empty");
    return token;
  }

  @Override
  @SuppressWarnings("unchecked")
  public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    if (call.getMethodDescriptor().getServiceName().equals(HealthGrpc.SERVICE_NAME)) return next.startCall(call, headers);
    String given = headers.get(ClientCredentials.AUTHORIZATION);
    String problem = given == null ? "this server needs the cluster's bearer token (authorization: Bearer TOKEN)"
        : !given.startsWith("Bearer ") ? "the authorization header must be \"Bearer TOKEN\""
        // constant time: how much of a guess matched must not show in how long it takes to refuse
        : !MessageDigest.isEqual(token, given.substring("Bearer ".length()).strip().getBytes(StandardCharsets.UTF_8))
            ? "the bearer token is not this cluster's" : null;
    if (problem == null) return next.startCall(call, headers);
    call.close(Status.UNAUTHENTICATED.withDescription(problem), new Metadata());
    return (ServerCall.Listener<Q>) NOTHING;
  }
}
