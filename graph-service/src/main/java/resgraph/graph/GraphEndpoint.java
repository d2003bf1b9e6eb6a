package resgraph.graph;

import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.micronaut.context.annotation.Requires;
import jakarta.inject.Singleton;
import java.time.Instant;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import org.neo4j.driver.exceptions.ServiceUnavailableException;
import org.neo4j.driver.exceptions.SessionExpiredException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.v1.Circuit;
import resgraph.v1.ExportRequest;
import resgraph.v1.ExportResponse;
import resgraph.v1.FinalizeRequest;
import resgraph.v1.FinalizeResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.RegisterJobResponse;

/**
 * The gRPC face of the graph service: every problem becomes a status with a message. Served only
 * where a Neo4j is configured, so a JVM that embeds another resgraph server does not start it.
 */
@Singleton
@Requires(property = "neo4j.uri")
public final class GraphEndpoint extends GraphServiceGrpc.GraphServiceImplBase {

  private static final Logger LOG = LoggerFactory.getLogger(GraphEndpoint.class);

  private final Jobs jobs;
  private final Finalizer finalizer;
  private final Circuits circuits;
  private final CypherQuery query;
  private final Exports exports;

  public GraphEndpoint(Jobs jobs, Finalizer finalizer, Circuits circuits, CypherQuery query, Exports exports) {
    this.jobs = jobs;
    this.finalizer = finalizer;
    this.circuits = circuits;
    this.query = query;
    this.exports = exports;
  }

  @Override
  public void registerJob(RegisterJobRequest req, StreamObserver<RegisterJobResponse> out) {
    answer(out, () -> {
      jobs.register(req);
      return RegisterJobResponse.getDefaultInstance();
    });
  }

  @Override
  public void finalize(FinalizeRequest req, StreamObserver<FinalizeResponse> out) {
    answer(out, () -> finalizer.finalizeJob(req.getJobId()));
  }

  @Override
  public void getCircuit(GetCircuitRequest req, StreamObserver<Circuit> out) {
    answer(out, () -> circuits.read(req.getJobId(), req.getIncludeRawEdges()));
  }

  @Override
  public void export(ExportRequest req, StreamObserver<ExportResponse> out) {
    answer(out, () -> exports.export(req.getJobId(), req.getFormat()));
  }

  @Override
  public void query(QueryRequest req, StreamObserver<QueryRow> out) {
    ServerCallStreamObserver<QueryRow> call = (ServerCallStreamObserver<QueryRow>) out;
    try {
      query.run(req, (row, deadline) -> send(call, row, deadline));
    } catch (RuntimeException e) {
      if (!call.isCancelled()) call.onError(status(e).asRuntimeException());
      return;
    }
    if (!call.isCancelled()) call.onCompleted();
  }

  /**
   * Sends once the client can take more, so a slow reader of a large result does not pile rows up
   * in memory. Polls: this call's onReady callback cannot run while its thread is in here.
   */
  private static boolean send(ServerCallStreamObserver<QueryRow> call, QueryRow row, Instant deadline) {
    while (!call.isReady()) {
      if (call.isCancelled()) return false;
      if (Instant.now().isAfter(deadline)) {
        throw new GraphException(GraphException.Kind.TIMEOUT, "the client did not read the rows within the query's timeout");
      }
      LockSupport.parkNanos(1_000_000);
    }
    if (call.isCancelled()) return false;
    call.onNext(row);
    return true;
  }

  private static <T> void answer(StreamObserver<T> out, Supplier<T> call) {
    T reply;
    try {
      reply = call.get();
    } catch (RuntimeException e) {
      out.onError(status(e).asRuntimeException());
      return;
    }
    out.onNext(reply);
    out.onCompleted();
  }

  private static Status status(RuntimeException e) {
    if (e instanceof GraphException g) {
      Status s = switch (g.kind()) {
        case BAD_REQUEST -> Status.INVALID_ARGUMENT;
        case NOT_FOUND -> Status.NOT_FOUND;
        case NOT_READY -> Status.FAILED_PRECONDITION;
        case TIMEOUT -> Status.DEADLINE_EXCEEDED;
        case UNAVAILABLE -> Status.UNAVAILABLE;
      };
      return s.withDescription(g.getMessage());
    }
    if (e instanceof ServiceUnavailableException || e instanceof SessionExpiredException) {
      return Status.UNAVAILABLE.withDescription("Neo4j is unreachable: " + e.getMessage());
    }
    LOG.error("request failed", e);
    return Status.INTERNAL.withDescription("graph service error: " + e);
  }
}
