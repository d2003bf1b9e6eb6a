package resgraph.platform.http;

import resgraph.platform.ResgraphException.Kind;

/** The one mapping from {@link resgraph.platform.ResgraphException}'s kinds to HTTP status codes. */
public final class HttpStatuses {

  private HttpStatuses() {}

  public static int code(Kind kind) {
    return switch (kind) {
      case BAD_REQUEST -> 400;
      case NOT_FOUND -> 404;
      case UNUSABLE_FILE, NOT_READY, ALREADY_EXISTS -> 409;
      case UNAVAILABLE, EXHAUSTED -> 503;
      case TIMEOUT -> 504;
      case INTERNAL -> 500;
    };
  }
}
