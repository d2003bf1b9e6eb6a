package resgraph.cli;

import io.grpc.StatusRuntimeException;
import java.io.UncheckedIOException;
import picocli.CommandLine;
import resgraph.platform.ResgraphException;

/** Runs a picocli command so that every failure is one readable line and an exit code, never a stack trace. */
public final class CommandLines {

  private CommandLines() {}

  /** Exit codes: 0 success, 1 the work failed, 2 the command line was wrong. */
  public static int run(Object command, String... args) {
    CommandLine cl = new CommandLine(command);
    cl.setParameterExceptionHandler((e, a) -> {
      System.err.println("resgraph: " + e.getMessage() + " (see --help)");
      return 2;
    });
    cl.setExecutionExceptionHandler((e, c, parsed) -> {
      System.err.println("resgraph: " + describe(e));
      return e instanceof IllegalArgumentException ? 2 : 1;
    });
    return cl.execute(args);
  }

  /** What went wrong, in one line a user can act on. */
  public static String describe(Throwable e) {
    // a failure while a service starts in this JVM comes wrapped in the framework's own exceptions
    for (Throwable c = e; c != null; c = c.getCause()) {
      if (c instanceof ResgraphException || c instanceof IllegalArgumentException) return c.getMessage();
    }
    if (e instanceof StatusRuntimeException s) {
      String d = s.getStatus().getDescription();
      return s.getStatus().getCode() + (d == null ? "" : ": " + d);
    }
    if (e instanceof UncheckedIOException u) return u.getMessage() + ": " + u.getCause().getMessage();
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }
}
