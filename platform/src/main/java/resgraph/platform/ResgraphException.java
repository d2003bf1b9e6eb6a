package resgraph.platform;

/**
 * A problem a caller can act on, with a message that names it, and its kind. Services throw it from
 * their domain code; the gRPC endpoints answer it with the status {@code GrpcStatuses} gives its
 * kind, the HTTP pages with the code {@code HttpStatuses} gives it. It knows nothing of either.
 */
public final class ResgraphException extends RuntimeException {

  /** What went wrong, as far as the caller is concerned. */
  public enum Kind {
    /** The request itself is wrong: an empty prompt, a layer out of range. */
    BAD_REQUEST,
    /** What the request names does not exist: a model, a job. */
    NOT_FOUND,
    /** Files exist but cannot be used: malformed, the wrong shape, NaN weights. */
    UNUSABLE_FILE,
    /** Something this depends on cannot be reached now (a download, Kafka, Neo4j, another service). */
    UNAVAILABLE,
    /** It exists but is not in a state that allows this: a job not finalized yet, or already ended. */
    NOT_READY,
    /** It exists already. */
    ALREADY_EXISTS,
    /** It took longer than allowed. */
    TIMEOUT,
    /** Memory or another resource ran out. */
    EXHAUSTED,
    /** A fault of resgraph's own, or an answer from another service that makes no sense. */
    INTERNAL;

    /** Whether the same request may succeed later, unchanged. */
    public boolean isTransient() {
      return this == UNAVAILABLE || this == TIMEOUT || this == EXHAUSTED;
    }
  }

  private final Kind kind;

  public ResgraphException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public ResgraphException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static ResgraphException badRequest(String message) {
    return new ResgraphException(Kind.BAD_REQUEST, message);
  }

  /** A file that exists but cannot be used, named with what is wrong with it. */
  public static ResgraphException unusable(Object file, String problem) {
    return new ResgraphException(Kind.UNUSABLE_FILE, file + ": " + problem);
  }

  public static ResgraphException notFound(String message) {
    return new ResgraphException(Kind.NOT_FOUND, message);
  }

  public static ResgraphException notReady(String message) {
    return new ResgraphException(Kind.NOT_READY, message);
  }

  public static ResgraphException unavailable(String message, Throwable cause) {
    return new ResgraphException(Kind.UNAVAILABLE, message, cause);
  }
}
