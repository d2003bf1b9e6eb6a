package resgraph.graph;

/** A request the graph service cannot answer, and why; the endpoint turns the kind into a gRPC status. */
public final class GraphException extends RuntimeException {

  public enum Kind {
    /** The request itself is wrong: INVALID_ARGUMENT. */
    BAD_REQUEST,
    /** No such job: NOT_FOUND. */
    NOT_FOUND,
    /** The job exists but is not in a state that allows this: FAILED_PRECONDITION. */
    NOT_READY,
    /** A query ran out of its time: DEADLINE_EXCEEDED. */
    TIMEOUT,
    /** Neo4j or the model server cannot be reached: UNAVAILABLE. */
    UNAVAILABLE
  }

  private final Kind kind;

  public GraphException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public GraphException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static GraphException badRequest(String message) {
    return new GraphException(Kind.BAD_REQUEST, message);
  }

  public static GraphException unknownJob(String jobId) {
    return new GraphException(Kind.NOT_FOUND, "job \"" + jobId + "\" is not registered with the graph service");
  }
}
