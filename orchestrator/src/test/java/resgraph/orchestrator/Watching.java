package resgraph.orchestrator;

import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;

/** A client's Watch of one job: every Job it was sent, and how the stream ended. */
final class Watching implements ClientResponseObserver<GetJobRequest, Job> {

  final CompletableFuture<Void> ended = new CompletableFuture<>();
  private final List<Job> seen = new ArrayList<>();
  private ClientCallStreamObserver<GetJobRequest> call;

  static Watching start(OrchestratorUnderTest h, String id) {
    Watching w = new Watching();
    h.jobsAsync().watch(GetJobRequest.newBuilder().setId(id).build(), w);
    return w;
  }

  synchronized List<Job> seen() {
    return List.copyOf(seen);
  }

  /** Hangs up, as a client that goes away does. */
  void hangUp() {
    call.cancel("the client went away", null);
  }

  @Override
  public void beforeStart(ClientCallStreamObserver<GetJobRequest> call) {
    this.call = call;
  }

  @Override
  public synchronized void onNext(Job job) {
    seen.add(job);
  }

  @Override
  public void onError(Throwable t) {
    ended.completeExceptionally(t);
  }

  @Override
  public void onCompleted() {
    ended.complete(null);
  }
}
