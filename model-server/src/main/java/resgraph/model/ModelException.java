package resgraph.model;

/**
 * A problem a caller can act on, with a message that names it (the file and field, the argument
 * and its allowed range). The kind tells a server which status to answer with.
 */
public final class ModelException extends RuntimeException {

  public enum Kind {
    /** The request itself is wrong: an empty prompt, a layer out of range. */
    BAD_REQUEST,
    /** The named model, SAE folder or hub file does not exist. */
    NOT_FOUND,
    /** The files exist but cannot be used: malformed, the wrong shape, NaN weights. */
    UNUSABLE_FILE,
    /** A download failed part way or the hub could not be reached. */
    UNAVAILABLE
  }

  private final Kind kind;

  public ModelException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public ModelException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static ModelException badRequest(String message) {
    return new ModelException(Kind.BAD_REQUEST, message);
  }

  public static ModelException unusable(Object file, String problem) {
    return new ModelException(Kind.UNUSABLE_FILE, file + ": " + problem);
  }
}
