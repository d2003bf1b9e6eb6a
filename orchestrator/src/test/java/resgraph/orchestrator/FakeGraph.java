package resgraph.orchestrator;

import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.util.Deque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import resgraph.v1.FinalizeRequest;
import resgraph.v1.FinalizeResponse;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.RegisterJobResponse;

/**
 * A GraphService on a local port that records what the orchestrator asks of it and answers as a
 * test says: the real graph service is tested on its own and with everything together.
 */
final class FakeGraph extends GraphServiceGrpc.GraphServiceImplBase implements AutoCloseable {

  final Map<String, RegisterJobRequest> registered = new ConcurrentHashMap<>();
  /** What RegisterJob answers; OK records the job. */
  volatile Status registerAnswer = Status.OK;
  /** What the next Finalize calls answer, in order; once empty, they succeed. */
  final Deque<Status> finalizeAnswers = new ConcurrentLinkedDeque<>();

  private final Map<String, AtomicInteger> finalizeCalls = new ConcurrentHashMap<>();
  private final Server server;

  FakeGraph() throws IOException {
    server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create()).addService(this).build().start();
  }

  String address() {
    return "127.0.0.1:" + server.getPort();
  }

  int finalizeCalls(String job) {
    AtomicInteger n = finalizeCalls.get(job);
    return n == null ? 0 : n.get();
  }

  void reset() {
    registerAnswer = Status.OK;
    finalizeAnswers.clear();
  }

  @Override
  public void registerJob(RegisterJobRequest req, StreamObserver<RegisterJobResponse> out) {
    Status answer = registerAnswer;
    if (!answer.isOk()) {
      out.onError(answer.asRuntimeException());
      return;
    }
    registered.put(req.getJob().getId(), req);
    out.onNext(RegisterJobResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void finalize(FinalizeRequest req, StreamObserver<FinalizeResponse> out) {
    finalizeCalls.computeIfAbsent(req.getJobId(), k -> new AtomicInteger()).incrementAndGet();
    Status answer = finalizeAnswers.poll();
    if (answer != null && !answer.isOk()) {
      out.onError(answer.asRuntimeException());
      return;
    }
    out.onNext(FinalizeResponse.getDefaultInstance());
    out.onCompleted();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
