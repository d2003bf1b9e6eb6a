package resgraph.orchestrator;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.v1.FinalizeRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.Phase;

/**
 * Finalizes jobs whose tasks are all stored: GraphService.Finalize, then phase DONE. Runs on its
 * own threads, never on the event loop's.
 *
 * <p>Error strategy: while the graph service is UNAVAILABLE, or the DONE record cannot be written
 * to Kafka, the whole attempt is retried, after 1 s, doubling to at most 30 s, for as long as the
 * job stays FINALIZING (Finalize is idempotent, so calling it again is safe). Any other status
 * from Finalize fails the job with that status and message. A job is finalized by one attempt at
 * a time in this process; a restart finalizes FINALIZING jobs again. So Finalize is called once
 * per job when nothing fails, and at least once in general.
 */
@Singleton
final class Finalizer {

  private static final Logger LOG = LoggerFactory.getLogger(Finalizer.class);
  /** Pruning a large job and annotating its circuit can take minutes; longer means the graph service is stuck. */
  private static final Duration DEADLINE = Duration.ofMinutes(30);

  private final GraphServiceGrpc.GraphServiceBlockingStub graph;
  private final JobStore store;
  private final ScheduledExecutorService executor = Executors.newScheduledThreadPool(2, r -> {
    Thread t = new Thread(r, "finalizer");
    t.setDaemon(true);
    return t;
  });
  private final Set<String> inFlight = ConcurrentHashMap.newKeySet();
  private volatile boolean stopping;

  Finalizer(GraphServiceGrpc.GraphServiceBlockingStub graph, JobStore store) {
    this.graph = graph;
    this.store = store;
  }

  /** Starts finalizing the job if it is FINALIZING and no attempt for it is under way here. */
  void finalizeIfDue(Job job) {
    if (job.getPhase() != Phase.PHASE_FINALIZING || !inFlight.add(job.getId())) return;
    schedule(job.getId(), Duration.ZERO, Backoff.first());
  }

  @PreDestroy
  void stop() {
    stopping = true;
    executor.shutdownNow();
  }

  private void schedule(String id, Duration delay, Backoff backoff) {
    try {
      executor.schedule(() -> attempt(id, backoff), delay.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException shuttingDown) {
      // the next orchestrator finalizes it: the job is still FINALIZING in resgraph.jobs
      inFlight.remove(id);
    }
  }

  private void attempt(String id, Backoff backoff) {
    try {
      finalizeOnce(id);
      inFlight.remove(id);
    } catch (RuntimeException e) {
      if (stopping) {
        inFlight.remove(id);
        return;
      }
      LOG.warn("finalizing job {} failed, retrying in {} s: {}", id, backoff.delay().toSeconds(), e.getMessage());
      schedule(id, backoff.delay(), backoff.next());
    }
  }

  /** One attempt; throws what is worth retrying. */
  private void finalizeOnce(String id) {
    boolean due = store.get(id).map(r -> r.getJob().getPhase() == Phase.PHASE_FINALIZING).orElse(false);
    if (!due) return; // cancelled meanwhile
    long start = System.nanoTime();
    try {
      graph.withDeadlineAfter(DEADLINE.toMinutes(), TimeUnit.MINUTES)
          .finalize(FinalizeRequest.newBuilder().setJobId(id).build());
    } catch (StatusRuntimeException e) {
      // a call cut short by this orchestrator stopping says nothing about the job
      if (e.getStatus().getCode() == Status.Code.UNAVAILABLE || stopping) throw e;
      Status s = e.getStatus();
      store.update(id, r -> Transitions.failed(r, "finalizing failed: the graph service answered " + s.getCode()
          + (s.getDescription() == null ? "" : ": " + s.getDescription())));
      return;
    }
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    store.update(id, r -> Transitions.finalized(r, took, java.time.Instant.now()));
    LOG.info("job {} is done", id);
  }
}
