package resgraph.orchestrator;

import io.grpc.Grpc;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.TlsServerCredentials;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Deque;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import resgraph.v1.AddToCorpusRequest;
import resgraph.v1.AddToCorpusResponse;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.LayerActivations;
import resgraph.v1.Latent;
import resgraph.v1.PruneRequest;
import resgraph.v1.PruneResponse;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.RegisterJobResponse;

/**
 * A GraphService on a local port that records what the orchestrator asks of it and answers as a
 * test says: the real graph service is tested on its own and with everything together. Its
 * circuit of a job is every latent active at the job's last two positions before the target, so
 * that the orchestrator has real latents to ask the model server about (more than one call's worth).
 */
final class FakeGraph extends GraphServiceGrpc.GraphServiceImplBase implements AutoCloseable {

  final Map<String, RegisterJobRequest> registered = new ConcurrentHashMap<>();
  /** The last Annotate of each job. */
  final Map<String, AnnotateRequest> annotated = new ConcurrentHashMap<>();
  /** The jobs AddToCorpus was asked for. */
  final Set<String> counted = ConcurrentHashMap.newKeySet();
  /** What RegisterJob answers; OK records the job. */
  volatile Status registerAnswer = Status.OK;
  /** The answer to a registration that carries the prompt's activations. */
  volatile Status activationsAnswer = Status.OK;
  /** What the next Prune calls answer, in order; once empty, they succeed. */
  final Deque<Status> pruneAnswers = new ConcurrentLinkedDeque<>();

  private final Map<String, AtomicInteger> pruneCalls = new ConcurrentHashMap<>();
  private final Server server;

  /** Serves TLS with the certificate of the cluster's {@code credentials} folder, as the real graph service does; it takes any token. */
  FakeGraph(Path credentials) throws IOException {
    server = Grpc.newServerBuilderForPort(0, TlsServerCredentials.create(credentials.resolve("tls.crt").toFile(),
        credentials.resolve("tls.key").toFile())).addService(this).build().start();
  }

  String address() {
    return "127.0.0.1:" + server.getPort();
  }

  int pruneCalls(String job) {
    AtomicInteger n = pruneCalls.get(job);
    return n == null ? 0 : n.get();
  }

  void reset() {
    registerAnswer = Status.OK;
    activationsAnswer = Status.OK;
    pruneAnswers.clear();
  }

  @Override
  public void registerJob(RegisterJobRequest req, StreamObserver<RegisterJobResponse> out) {
    Status answer = req.getActivationsCount() > 0 && registerAnswer.isOk() ? activationsAnswer : registerAnswer;
    if (!answer.isOk()) {
      out.onError(answer.asRuntimeException());
      return;
    }
    registered.put(req.getJob().getId(), req);
    out.onNext(RegisterJobResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void prune(PruneRequest req, StreamObserver<PruneResponse> out) {
    pruneCalls.computeIfAbsent(req.getJobId(), k -> new AtomicInteger()).incrementAndGet();
    Status answer = pruneAnswers.poll();
    if (answer != null && !answer.isOk()) {
      out.onError(answer.asRuntimeException());
      return;
    }
    out.onNext(PruneResponse.newBuilder().addAllNodes(nodes(registered.get(req.getJobId()))).build());
    out.onCompleted();
  }

  @Override
  public void annotate(AnnotateRequest req, StreamObserver<AnnotateResponse> out) {
    annotated.put(req.getJobId(), req);
    out.onNext(AnnotateResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void addToCorpus(AddToCorpusRequest req, StreamObserver<AddToCorpusResponse> out) {
    out.onNext(AddToCorpusResponse.newBuilder().setAdded(counted.add(req.getJobId())).build());
    out.onCompleted();
  }

  /** Every latent active at one of the two positions before and at the target, by layer then latent. */
  private static Iterable<Latent> nodes(RegisterJobRequest job) {
    TreeSet<Latent> nodes = new TreeSet<>((a, b) -> a.getLayer() != b.getLayer() ? Integer.compare(a.getLayer(), b.getLayer())
        : Integer.compare(a.getLatent(), b.getLatent()));
    int target = job.getJob().getTarget();
    for (LayerActivations layer : job.getActivationsList()) {
      for (int p = target - 1; p <= target; p++) {
        for (int latent : layer.getPositions(p).getLatentsList()) {
          nodes.add(Latent.newBuilder().setLayer(layer.getLayer()).setLatent(latent).build());
        }
      }
    }
    return nodes;
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
