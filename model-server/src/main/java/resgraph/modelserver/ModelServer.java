package resgraph.modelserver;

import io.micronaut.context.ApplicationContext;
import io.micronaut.runtime.EmbeddedApplication;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code resgraph model-server}: serves ModelService over gRPC in the foreground, as the container does. */
@Command(name = "model-server", mixinStandardHelpOptions = true,
    description = "Serve GPT-2 with SAEs over gRPC (resgraph.v1.ModelService, reflection and health).")
public final class ModelServer implements Callable<Integer> {

  private static final Logger LOG = LoggerFactory.getLogger(ModelServer.class);

  @Mixin ModelOptions options;

  @Option(names = "--port", defaultValue = "50051", description = "gRPC port (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(names = "--host", defaultValue = "0.0.0.0", description = "Address to listen on (default: ${DEFAULT-VALUE}).")
  String host;

  @Option(names = "--max-resident", defaultValue = "2",
      description = "How many (model, SAEs) pairs stay loaded (default: ${DEFAULT-VALUE}).")
  int maxResident;

  @Option(names = "--no-preload", description = "Load the pair on the first request instead of at start-up.")
  boolean noPreload;

  /**
   * Starts the context and its gRPC server with these extra properties, and returns at once (where
   * Micronaut.run would block the calling thread); the caller closes the context.
   */
  public static ApplicationContext start(Map<String, Object> properties) {
    ApplicationContext ctx = ApplicationContext.builder(ModelServer.class).properties(properties).start();
    try {
      ctx.findBean(EmbeddedApplication.class).ifPresent(EmbeddedApplication::start);
    } catch (RuntimeException e) {
      ctx.close();
      throw e;
    }
    return ctx;
  }

  @Override
  public Integer call() throws InterruptedException {
    Map<String, Object> props = options.properties();
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", host);
    props.put("grpc.server.max-inbound-message-size", 64 << 20);
    props.put("resgraph.model-server.max-resident", maxResident);
    ApplicationContext ctx = start(props);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      ctx.close();
      stopped.countDown();
    }));
    if (!noPreload) {
      ctx.getBean(ModelService.class).describe(options.ref());
    }
    LOG.info("model server listening on {}:{}", host, port);
    stopped.await();
    return 0;
  }

  public static void main(String[] args) {
    System.exit(CommandLines.run(new ModelServer(), args));
  }
}
