package resgraph.platform;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.EmbeddedApplication;
import io.micronaut.runtime.Micronaut;
import java.util.HashMap;
import java.util.Map;
import resgraph.platform.kafka.Listeners;

/**
 * How every resgraph service starts, the same way: a Micronaut application whose beans are enabled
 * by {@code resgraph.<service>.enabled}, which the application sets for its own service alone. So
 * a JVM whose classpath holds several services (a test's, or the command line's) runs only those
 * it starts, each in a context of its own.
 *
 * <p>A service's gRPC server (if it has one) and its Kafka listeners (if it has any) start with the
 * context; configuration is Micronaut properties, as -D system properties or environment variables
 * (KAFKA_BOOTSTRAP_SERVERS for kafka.bootstrap.servers).
 */
public final class ServiceApplication {

  private ServiceApplication() {}

  /** The property that enables a service's beans, e.g. resgraph.graph.enabled. */
  public static String enabled(String service) {
    return "resgraph." + service + ".enabled";
  }

  /**
   * A service's process: runs until the JVM is told to stop (SIGTERM closes the context, and so
   * the server and the listeners), and exits with status 1 when a listener fails, for its
   * supervisor to restart it.
   */
  public static ApplicationContext run(Class<?> application, String service, String... args) {
    ApplicationContext ctx = Micronaut.build(args).mainClass(application).banner(false)
        .properties(Map.of(enabled(service), true))
        .singletons(new ExitOnFailure())
        .start();
    // a service that serves no port has no embedded server to close the context at shutdown
    if (ctx.findBean(EmbeddedApplication.class).isEmpty()) {
      Runtime.getRuntime().addShutdownHook(new Thread(ctx::close, service + "-shutdown"));
    }
    return ctx;
  }

  /**
   * A process whose listener failed exits, its supervisor restarts it, and its group hands what it
   * held to another member. The exit runs on a thread of its own: this is called on the listener's
   * thread, and System.exit there would wait for the shutdown hook that closes the context, which
   * waits for that same thread to end, so the process stayed up with its listener gone.
   */
  private static final class ExitOnFailure implements Listeners.OnFailure {
    @Override
    public void failed(String listener, Throwable failure) {
      new Thread(() -> System.exit(1), "exit-after-" + listener).start();
    }
  }

  /**
   * Starts a service in this JVM with these properties and returns at once; the caller closes the
   * context. A listener that fails here only says so ({@link resgraph.platform.kafka.TopicListener#ended}).
   */
  public static ApplicationContext start(Class<?> application, String service, Map<String, Object> properties) {
    Map<String, Object> all = new HashMap<>(properties);
    all.put(enabled(service), true);
    ApplicationContext ctx = ApplicationContext.builder(application).properties(all).start();
    try {
      ctx.findBean(EmbeddedApplication.class).ifPresent(EmbeddedApplication::start);
    } catch (RuntimeException e) {
      ctx.close();
      throw e;
    }
    return ctx;
  }
}
