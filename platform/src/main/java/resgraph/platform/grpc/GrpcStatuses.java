package resgraph.platform.grpc;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Supplier;
import resgraph.platform.ResgraphException;
import resgraph.platform.ResgraphException.Kind;

/**
 * The one mapping between {@link ResgraphException}'s kinds and gRPC status codes, both ways: what
 * a server answers for a kind, and what kind another service's answer means to its caller.
 */
public final class GrpcStatuses {

  private static final Map<Kind, Status.Code> CODES = Map.of(
      Kind.BAD_REQUEST, Status.Code.INVALID_ARGUMENT,
      Kind.NOT_FOUND, Status.Code.NOT_FOUND,
      Kind.UNUSABLE_FILE, Status.Code.FAILED_PRECONDITION,
      Kind.UNAVAILABLE, Status.Code.UNAVAILABLE,
      Kind.NOT_READY, Status.Code.FAILED_PRECONDITION,
      Kind.ALREADY_EXISTS, Status.Code.ALREADY_EXISTS,
      Kind.TIMEOUT, Status.Code.DEADLINE_EXCEEDED,
      Kind.EXHAUSTED, Status.Code.RESOURCE_EXHAUSTED,
      Kind.INTERNAL, Status.Code.INTERNAL);

  private GrpcStatuses() {}

  /** The status a server answers for a problem of this kind. */
  public static Status.Code code(Kind kind) {
    return CODES.get(kind);
  }

  /** The status a server answers for the exception, with its message. */
  public static Status status(ResgraphException e) {
    return Status.fromCode(code(e.kind())).withDescription(e.getMessage());
  }

  /**
   * What a status from another service means to its caller. FAILED_PRECONDITION reads as NOT_READY
   * (which answers with the same code); ABORTED, which asks to be tried again, as UNAVAILABLE; a
   * code no kind answers with (UNKNOWN, CANCELLED, UNIMPLEMENTED, ...) as INTERNAL.
   */
  public static Kind kind(Status.Code code) {
    return switch (code) {
      case INVALID_ARGUMENT, OUT_OF_RANGE -> Kind.BAD_REQUEST;
      case NOT_FOUND -> Kind.NOT_FOUND;
      case FAILED_PRECONDITION -> Kind.NOT_READY;
      case UNAVAILABLE, ABORTED -> Kind.UNAVAILABLE;
      case ALREADY_EXISTS -> Kind.ALREADY_EXISTS;
      case DEADLINE_EXCEEDED -> Kind.TIMEOUT;
      case RESOURCE_EXHAUSTED -> Kind.EXHAUSTED;
      default -> Kind.INTERNAL;
    };
  }

  /**
   * Calls another service: what it answers, or its refusal as a {@link ResgraphException} that
   * {@code refusal} words ({@link #fromUpstream} or {@link #failure}).
   */
  public static <T> T call(String who, BiFunction<String, StatusRuntimeException, ResgraphException> refusal, Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw refusal.apply(who, e);
    }
  }

  /**
   * Another service's refusal, passed on: its kind, its message prefixed with who answered, e.g.
   * "model server: no model folder at ...".
   */
  public static ResgraphException fromUpstream(String who, StatusRuntimeException e) {
    Status s = e.getStatus();
    return new ResgraphException(kind(s.getCode()), who + ": " + (s.getDescription() == null ? s.getCode().name() : s.getDescription()), e);
  }

  /**
   * Another service's refusal as a reason that names the status too, for a job's error or a dead
   * letter, where no status travels with it: e.g. "model server: INVALID_ARGUMENT: layer 9 is
   * outside 0..4", and a failed connection's cause, e.g. "model server: UNAVAILABLE: io exception
   * (Connection refused)".
   */
  public static ResgraphException failure(String who, StatusRuntimeException e) {
    return new ResgraphException(kind(e.getStatus().getCode()), reason(who, e.getStatus()), e);
  }

  /** The reason {@link #failure} gives. */
  public static String reason(String who, Status s) {
    StringBuilder r = new StringBuilder(who).append(": ").append(s.getCode());
    if (s.getDescription() != null) r.append(": ").append(s.getDescription());
    // a connection that failed says why only in its cause ("io exception" / "Connection refused")
    if (s.getCause() != null && s.getCause().getMessage() != null) r.append(" (").append(s.getCause().getMessage()).append(')');
    return r.toString();
  }
}
