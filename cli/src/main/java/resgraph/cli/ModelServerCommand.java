package resgraph.cli;

import io.micronaut.context.ApplicationContext;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import resgraph.modelserver.ModelServer;
import resgraph.platform.grpc.SecurityConfig;

/**
 * {@code resgraph model-server}: the model server's application in the foreground, as the
 * container runs it, with properties from these options.
 */
@Command(name = "model-server", mixinStandardHelpOptions = true,
    description = "Serve GPT-2 with SAEs over gRPC (resgraph.v1.ModelService, reflection and health).")
final class ModelServerCommand implements Callable<Integer> {

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

  @Option(names = "--credentials", paramLabel = "DIR",
      description = "Folder with token, tls.crt, tls.key and ca.crt: gRPC over TLS, every call with that bearer token (default: $RESGRAPH_CREDENTIALS).")
  Path credentials;

  @Option(names = "--insecure", description = "Plaintext gRPC without a token, for a test on loopback.")
  boolean insecure;

  @Override
  public Integer call() throws InterruptedException {
    Map<String, Object> props = options.properties();
    Path folder = ClusterDir.credentialsFolder(credentials);
    if (insecure) props.put("resgraph.security.enabled", false);
    else if (folder != null) props.putAll(SecurityConfig.fromFolder(folder));
    else throw new IllegalArgumentException("give --credentials DIR (token, tls.crt, tls.key, ca.crt) or --insecure");
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", host);
    props.put("resgraph.model-server.max-resident", maxResident);
    if (!noPreload) {
      props.put("resgraph.model-server.preload-model", options.model);
      props.put("resgraph.model-server.preload-saes", options.saes);
      props.put("resgraph.model-server.preload-centering", options.centering);
    }
    ApplicationContext ctx = ModelServer.start(props);
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      ctx.close();
      stopped.countDown();
    }));
    stopped.await();
    return 0;
  }
}
