package resgraph.orchestrator;

import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;
import resgraph.platform.ResgraphException;
import resgraph.v1.AnnotateRequest;
import resgraph.v1.Job;
import resgraph.v1.Latent;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.Phase;
import resgraph.v1.PruneResponse;

/**
 * Finalizes jobs whose tasks are all stored, on threads of its own: asks the graph service to prune
 * the job's edges into its circuit (METHOD.md step 7), the model server for the logit effects of
 * the circuit's nodes (step 8, in a few calls that each carry latents of every site) and, while
 * it computes them, the graph service to add the job to its corpus statistics ("Across prompts"),
 * then the graph service to mark and annotate the circuit with them; then the job is DONE.
 *
 * <p>The corpus counts a job once its edges are all stored, which is when its statistics are
 * determined: a job that fails after that (a refused annotation, a cancellation while it
 * finalizes) stays counted, as its edges stay stored.
 *
 * <p>Error strategy: while a service is away (a transient kind: UNAVAILABLE, a deadline, exhausted
 * resources), or the DONE record cannot be written, the whole attempt is retried, after 1 s,
 * doubling to at most 30 s, for as long as the job stays FINALIZING (every step is idempotent, so
 * doing it again is safe). Any other refusal fails the job with it. A job is finalized by one
 * attempt at a time in this process; a restart finalizes FINALIZING jobs again. So each step is
 * taken once per job when nothing fails, and at least once in general.
 */
@Singleton
public final class Finalization {

  private static final Logger LOG = LoggerFactory.getLogger(Finalization.class);
  private static final Backoff RETRY = Backoff.forever(Duration.ofSeconds(1), Duration.ofSeconds(30));
  /** Latents per LogitEffects call: each is a forward pass from its layer to the logits. */
  private static final int LATENTS_PER_CALL = 32;
  /** How many promoted and suppressed tokens each node keeps (METHOD.md step 8). */
  private static final int TOP_TOKENS = 10;

  private final GraphServiceCalls graph;
  private final ModelServerCalls model;
  private final JobStore store;
  private final ScheduledExecutorService executor = Executors.newScheduledThreadPool(2, daemon("finalization"));
  private final ExecutorService calls;
  private final int concurrentCalls;
  private final Set<String> inFlight = ConcurrentHashMap.newKeySet();
  private volatile boolean stopping;

  Finalization(GraphServiceCalls graph, ModelServerCalls model, JobStore store, FinalizationConfig config) {
    this.graph = graph;
    this.model = model;
    this.store = store;
    this.concurrentCalls = config.logitEffectsCalls();
    this.calls = Executors.newFixedThreadPool(concurrentCalls, daemon("logit-effects"));
  }

  private static ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }

  /** Starts finalizing the job if it is FINALIZING and no attempt for it is under way here. */
  public void finalizeIfDue(Job job) {
    if (job.getPhase() != Phase.PHASE_FINALIZING || !inFlight.add(job.getId())) return;
    schedule(job.getId(), Duration.ZERO, 1);
  }

  @PreDestroy
  void stop() {
    stopping = true;
    executor.shutdownNow();
    calls.shutdownNow();
  }

  private void schedule(String id, Duration delay, int attempt) {
    try {
      executor.schedule(() -> attempt(id, attempt), delay.toMillis(), TimeUnit.MILLISECONDS);
    } catch (RejectedExecutionException shuttingDown) {
      // the next orchestrator finalizes it: the job is still FINALIZING in its record
      inFlight.remove(id);
    }
  }

  private void attempt(String id, int attempt) {
    try {
      finalizeOnce(id);
      inFlight.remove(id);
    } catch (RuntimeException e) {
      if (stopping) {
        inFlight.remove(id);
        return;
      }
      Duration wait = RETRY.delay(attempt);
      LOG.warn("finalizing job {} failed, retrying in {} s: {}", id, wait.toSeconds(), e.getMessage());
      schedule(id, wait, attempt + 1);
    }
  }

  /** One attempt; throws what is worth retrying. */
  private void finalizeOnce(String id) {
    Job job = store.get(id).map(r -> r.getJob()).orElse(null);
    if (job == null || job.getPhase() != Phase.PHASE_FINALIZING) return; // cancelled meanwhile
    long start = System.nanoTime();
    long pruned, counted, computed;
    try {
      PruneResponse circuit = graph.prune(id, job.getSpec().getPruning());
      pruned = System.nanoTime();
      List<LatentLogitEffects> effects;
      try (LogitCalls calls = logitEffects(job, circuit.getNodesList())) {
        graph.addToCorpus(id); // while the model server computes them: the statistics are of the stored edges alone
        counted = System.nanoTime();
        effects = calls.results();
      }
      computed = System.nanoTime();
      graph.annotate(AnnotateRequest.newBuilder().setJobId(id).addAllEdges(circuit.getEdgesList())
          .addAllAnnotations(effects).build());
    } catch (ResgraphException e) {
      // a call cut short by this orchestrator stopping says nothing about the job
      if (e.kind().isTransient() || stopping) throw e;
      store.update(id, r -> JobLifecycle.failed(r, "finalizing failed: " + e.getMessage()));
      return;
    }
    long end = System.nanoTime();
    Duration took = Duration.ofNanos(end - start);
    store.update(id, r -> JobLifecycle.finalized(r, took, Instant.now()));
    LOG.info("job {} is done: pruned in {} ms; logit effects and corpus statistics side by side in {} ms (the statistics {} ms); "
        + "annotated in {} ms", id, (pruned - start) / 1_000_000, (computed - pruned) / 1_000_000, (counted - pruned) / 1_000_000,
        (end - computed) / 1_000_000);
  }

  /**
   * The nodes' logit effects, asked for: a model server carries a call's latents of every
   * site through one pass from the earliest of them (a later site's join at its stream), so the
   * calls are as few as {@value #LATENTS_PER_CALL} latents a call allows, rounded up to a multiple
   * of {@code resgraph.finalization.logit-effects-calls}, the calls in flight at once across this
   * orchestrator's jobs (a model server computes one call on one core), so that they share those
   * evenly. The latents are dealt out in the order of their layers: every call carries about as
   * many of each layer, as far.
   */
  private LogitCalls logitEffects(Job job, List<Latent> nodes) {
    List<Integer> byLayer = IntStream.range(0, nodes.size()).boxed()
        .sorted(Comparator.comparingInt((Integer i) -> nodes.get(i).getLayer())).toList();
    int fewest = (nodes.size() + LATENTS_PER_CALL - 1) / LATENTS_PER_CALL;
    int count = Math.min(nodes.size(), (fewest + concurrentCalls - 1) / concurrentCalls * concurrentCalls);
    List<List<Integer>> parts = new ArrayList<>();
    for (int c = 0; c < count; c++) parts.add(new ArrayList<>());
    for (int k = 0; k < byLayer.size(); k++) parts.get(k % count).add(byLayer.get(k));
    List<Future<List<LatentLogitEffects>>> pending = new ArrayList<>();
    for (List<Integer> part : parts) {
      pending.add(calls.submit(() -> model.logitEffects(LogitEffectsRequest.newBuilder()
          .setRef(job.getSpec().getRef())
          .addAllTokens(job.getTokensList())
          .addAllLatents(part.stream().map(nodes::get).toList())
          .setTarget(job.getTarget())
          .setTop(TOP_TOKENS)
          .build()).getEffectsList()));
    }
    return new LogitCalls(job.getId(), nodes.size(), parts, pending);
  }

  /** A job's LogitEffects calls in flight; closing cancels those not done. */
  private record LogitCalls(String jobId, int nodes, List<List<Integer>> parts, List<Future<List<LatentLogitEffects>>> pending)
      implements AutoCloseable {

    /** Each node's effects, in the order of the nodes, once every call has answered. */
    List<LatentLogitEffects> results() {
      LatentLogitEffects[] out = new LatentLogitEffects[nodes];
      try {
        for (int c = 0; c < parts.size(); c++) {
          List<LatentLogitEffects> effects = pending.get(c).get();
          for (int k = 0; k < effects.size(); k++) out[parts.get(c).get(k)] = effects.get(k);
        }
      } catch (ExecutionException e) {
        throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while finalizing job " + jobId);
      }
      return List.of(out);
    }

    /** After a failure the attempt starts over: its other calls are not waited for. */
    @Override
    public void close() {
      pending.forEach(f -> f.cancel(true));
    }
  }
}
