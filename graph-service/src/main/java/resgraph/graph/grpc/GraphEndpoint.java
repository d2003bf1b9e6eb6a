package resgraph.graph.grpc;

import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import jakarta.inject.Singleton;
import java.time.Instant;
import java.util.concurrent.locks.LockSupport;
import resgraph.graph.CircuitAnnotator;
import resgraph.graph.CorpusCircuits;
import resgraph.graph.CorpusStatistics;
import resgraph.graph.CypherQuery;
import resgraph.graph.Exports;
import resgraph.graph.GraphComparison;
import resgraph.graph.JobNodes;
import resgraph.graph.Neo4jFactory;
import resgraph.graph.StoredCircuits;
import resgraph.platform.ResgraphException;
import resgraph.platform.grpc.GrpcCalls;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AddToCorpusResponse;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.Circuit;
import resgraph.v1.CompareRequest;
import resgraph.v1.Comparison;
import resgraph.v1.Corpus;
import resgraph.v1.ExportRequest;
import resgraph.v1.ExportResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GetCorpusRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.RegisterJobResponse;

/** The gRPC GraphService over the graph: every problem becomes a status with a message. */
@Singleton
public final class GraphEndpoint extends GraphServiceGrpc.GraphServiceImplBase {

  private static final GrpcCalls CALLS = new GrpcCalls("graph service", Neo4jFactory::unreachable);

  private final JobNodes jobs;
  private final StoredCircuits circuits;
  private final CircuitAnnotator annotator;
  private final CorpusStatistics corpus;
  private final CypherQuery query;
  private final Exports exports;
  private final CorpusCircuits corpora;
  private final GraphComparison comparison;

  GraphEndpoint(JobNodes jobs, StoredCircuits circuits, CircuitAnnotator annotator, CorpusStatistics corpus, CypherQuery query,
      Exports exports, CorpusCircuits corpora, GraphComparison comparison) {
    this.jobs = jobs;
    this.circuits = circuits;
    this.annotator = annotator;
    this.corpus = corpus;
    this.query = query;
    this.exports = exports;
    this.corpora = corpora;
    this.comparison = comparison;
  }

  @Override
  public void registerJob(RegisterJobRequest req, StreamObserver<RegisterJobResponse> out) {
    CALLS.unary(out, () -> {
      jobs.register(req);
      return RegisterJobResponse.getDefaultInstance();
    });
  }

  @Override
  public void prune(PruneRequest req, StreamObserver<PruneResponse> out) {
    CALLS.unary(out, () -> {
      StoredCircuits.Pruned p = circuits.prune(req.getJobId(), req.getPruning());
      return PruneResponse.newBuilder().addAllEdges(p.edges()).addAllNodes(p.nodes()).setRawEdges(p.rawEdges()).build();
    });
  }

  @Override
  public void annotate(AnnotateRequest req, StreamObserver<AnnotateResponse> out) {
    CALLS.unary(out, () -> {
      CircuitAnnotator.Annotated a = annotator.annotate(req.getJobId(), req.getEdgesList(), req.getAnnotationsList());
      return AnnotateResponse.newBuilder().setNodes(a.nodes()).setEdges(a.edges()).setRawEdges(a.rawEdges()).build();
    });
  }

  @Override
  public void addToCorpus(AddToCorpusRequest req, StreamObserver<AddToCorpusResponse> out) {
    CALLS.unary(out, () -> AddToCorpusResponse.newBuilder().setAdded(corpus.add(req.getJobId())).build());
  }

  @Override
  public void getCircuit(GetCircuitRequest req, StreamObserver<Circuit> out) {
    CALLS.unary(out, () -> circuits.read(req.getJobId(), req.getIncludeRawEdges()));
  }

  @Override
  public void export(ExportRequest req, StreamObserver<ExportResponse> out) {
    CALLS.unary(out, () -> exports.export(req.getJobId(), req.getFormat()));
  }

  @Override
  public void getCorpus(GetCorpusRequest req, StreamObserver<Corpus> out) {
    CALLS.unary(out, () -> corpora.summarize(req));
  }

  @Override
  public void compare(CompareRequest req, StreamObserver<Comparison> out) {
    CALLS.unary(out, () -> comparison.compare(req));
  }

  @Override
  public void query(QueryRequest req, StreamObserver<QueryRow> out) {
    ServerCallStreamObserver<QueryRow> call = (ServerCallStreamObserver<QueryRow>) out;
    try {
      query.run(req, (row, deadline) -> send(call, row, deadline));
    } catch (RuntimeException e) {
      if (!call.isCancelled()) call.onError(CALLS.status(e).asRuntimeException());
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
        throw new ResgraphException(ResgraphException.Kind.TIMEOUT, "the client did not read the rows within the query's timeout");
      }
      LockSupport.parkNanos(1_000_000);
    }
    if (call.isCancelled()) return false;
    call.onNext(row);
    return true;
  }
}
