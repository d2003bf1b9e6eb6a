package resgraph.cli;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micronaut.context.ApplicationContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import resgraph.modelserver.grpc.ModelEndpoint;
import resgraph.modelserver.ModelServer;
import resgraph.platform.grpc.ClientCredentials;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.ModelServiceGrpc;

/**
 * A gRPC client of ModelService: of a server at HOST:PORT, or of one started inside this process
 * (on the in-process transport, so no port is taken) when no server is named.
 */
final class ModelClient implements AutoCloseable {

  final ModelServiceGrpc.ModelServiceBlockingStub stub;
  private final ManagedChannel channel;
  private final Server server;
  private final ApplicationContext context;

  private ModelClient(ManagedChannel channel, Server server, ApplicationContext context) {
    this.channel = channel;
    this.server = server;
    this.context = context;
    this.stub = ModelServiceGrpc.newBlockingStub(channel);
  }

  static ModelClient connect(String hostPort, ClientCredentials credentials) {
    return new ModelClient(GrpcChannels.open(hostPort, credentials), null, null);
  }

  static ModelClient inProcess(Map<String, Object> properties) {
    properties.put("grpc.server.enabled", false);
    ApplicationContext ctx = ModelServer.start(properties);
    String name = "resgraph-model-" + ProcessHandle.current().pid();
    try {
      Server server = InProcessServerBuilder.forName(name).directExecutor()
          .addService(ctx.getBean(ModelEndpoint.class)).build().start();
      return new ModelClient(InProcessChannelBuilder.forName(name).directExecutor()
          .maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES).build(), server, ctx);
    } catch (IOException e) {
      ctx.close();
      throw new UncheckedIOException("cannot start the in-process model server", e);
    }
  }

  @Override
  public void close() throws InterruptedException {
    GrpcChannels.close(channel);
    if (server != null) server.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    if (context != null) context.close();
  }
}
