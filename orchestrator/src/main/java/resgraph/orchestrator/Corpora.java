package resgraph.orchestrator;

import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusMember;
import resgraph.v1.CorpusMembership;
import resgraph.v1.CorpusProgress;
import resgraph.v1.CorpusPrompt;
import resgraph.v1.CorpusSpec;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.Phase;

/**
 * Corpora: many prompts, a job each, sharing the cluster. A corpus has no state of its own: each
 * of its jobs records its membership (corpus id, place, corpus size), so the corpus is whatever
 * the {@link JobStore} holds of those jobs and survives a restart with them. Only the planning of
 * prompts not yet submitted lives here; a restart in the middle of it leaves the rest without a
 * job, which the corpus then reports instead of waiting for them.
 *
 * <p>The first prompt is planned while SubmitCorpus waits, so a spec that no prompt could run
 * (a model that does not exist, a chain its SAEs do not have) is refused at once, with nothing
 * stored; the others are planned one after another on a thread of their own, each once fewer than
 * {@link CorpusConfig#jobsInFlight} of the corpus's jobs are unfinished, so the jobs end in order
 * while the workers always have the next one's tasks.
 */
@Singleton
public final class Corpora {

  private static final Logger LOG = LoggerFactory.getLogger(Corpora.class);
  /** How often the planner looks whether a job of the corpus has ended. */
  private static final Duration WINDOW_POLL = Duration.ofMillis(200);
  /** A prompt whose planning the model server or Kafka refused for a while is tried again so long. */
  private static final Backoff PLANNING_RETRY = new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(15), Duration.ofMinutes(2));

  private final Submission submission;
  private final JobStore store;
  private final CorpusConfig config;
  private final JobIds ids = new JobIds("c");
  /** The corpora whose prompts are being planned by this orchestrator now. */
  private final Set<String> planning = ConcurrentHashMap.newKeySet();
  /** A thread per corpus being planned: one waiting for its jobs to end holds up no other. */
  private final ExecutorService planner = Executors.newCachedThreadPool(r -> new Thread(r, "corpus-planner"));

  Corpora(Submission submission, JobStore store, CorpusConfig config) {
    this.submission = submission;
    this.store = store;
    this.config = config;
  }

  @PreDestroy
  void close() {
    planner.shutdownNow();
  }

  /** Plans the first prompt's job, starts planning the others, and answers the corpus as it is then. */
  public CorpusJob submit(CorpusSpec spec) {
    if (spec.getPromptsCount() == 0) throw ResgraphException.badRequest("a corpus needs at least one prompt");
    if (!spec.getJob().getPrompt().isEmpty() || spec.getJob().hasTarget()) {
      throw ResgraphException.badRequest("job.prompt and job.target are each prompt's: set them in prompts, not in job");
    }
    for (int i = 0; i < spec.getPromptsCount(); i++) {
      if (spec.getPrompts(i).getPrompt().isEmpty()) throw ResgraphException.badRequest("prompts[" + i + "] is empty");
    }
    String id = ids.next(Instant.now(), taken -> !store.corpus(taken).isEmpty());
    planning.add(id);
    try {
      submission.submit(jobSpec(spec, 0), membership(id, 0, spec));
    } catch (RuntimeException e) {
      planning.remove(id);
      throw e;
    }
    LOG.info("corpus {}: {} prompts; the first is queued", id, spec.getPromptsCount());
    if (spec.getPromptsCount() == 1) {
      planning.remove(id);
    } else {
      planner.execute(() -> planRest(id, spec));
    }
    return get(id);
  }

  /** The corpus now; NOT_FOUND for an id no job belongs to. */
  public CorpusJob get(String id) {
    List<Job> jobs = store.corpus(id);
    if (jobs.isEmpty()) throw ResgraphException.notFound("no corpus " + id);
    return summary(id, jobs);
  }

  /** Calls {@code watcher} with the corpus now and after each change until it ends; returns what stops the calls earlier. */
  public Runnable watch(String id, Consumer<CorpusJob> watcher) {
    get(id); // NOT_FOUND before anything is sent
    return store.watchCorpus(id, changed -> {
      CorpusJob now = get(id);
      watcher.accept(now);
      return !JobRules.ended(now.getPhase());
    });
  }

  /** Plans no more of its prompts and cancels its jobs that have not ended. */
  public CorpusJob cancel(String id) {
    List<Job> jobs = store.corpus(id);
    if (jobs.isEmpty()) throw ResgraphException.notFound("no corpus " + id);
    planning.remove(id);
    for (Job j : jobs) cancelQuietly(j);
    LOG.info("corpus {} cancelled", id);
    return get(id);
  }

  private void planRest(String id, CorpusSpec spec) {
    try {
      for (int i = 1; i < spec.getPromptsCount() && planning.contains(id); i++) {
        while (inFlight(id) >= config.jobsInFlight() && planning.contains(id)) Thread.sleep(WINDOW_POLL.toMillis());
        if (!planning.contains(id)) break;
        Job job = plan(id, spec, i);
        if (!planning.contains(id)) cancelQuietly(job); // cancelled while this one was planned
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (RuntimeException e) {
      LOG.error("corpus {}: planning stopped", id, e);
    } finally {
      planning.remove(id);
    }
  }

  /** The corpus's jobs that have not ended. */
  private long inFlight(String id) {
    return store.corpus(id).stream().filter(j -> !JobRules.ended(j.getPhase())).count();
  }

  /** Queues prompt {@code i}'s job, or records it failed with why; retries what may pass. */
  private Job plan(String id, CorpusSpec spec, int i) throws InterruptedException {
    Instant start = Instant.now();
    for (int attempt = 1; ; attempt++) {
      try {
        return submission.submit(jobSpec(spec, i), membership(id, i, spec));
      } catch (ResgraphException e) {
        Duration wait = PLANNING_RETRY.delay(attempt);
        if (!e.kind().isTransient() || !PLANNING_RETRY.allows(Duration.between(start, Instant.now()), wait)) {
          LOG.warn("corpus {}: prompt {} could not be planned: {}", id, i + 1, e.getMessage());
          return submission.recordUnplanned(jobSpec(spec, i), membership(id, i, spec), e.getMessage());
        }
        Thread.sleep(wait.toMillis());
      }
    }
  }

  private void cancelQuietly(Job job) {
    if (JobRules.ended(job.getPhase())) return;
    try {
      store.cancel(job.getId());
    } catch (ResgraphException e) {
      LOG.debug("job {} of its corpus ended before it could be cancelled: {}", job.getId(), e.getMessage());
    }
  }

  private static JobSpec jobSpec(CorpusSpec spec, int i) {
    CorpusPrompt p = spec.getPrompts(i);
    JobSpec.Builder job = spec.getJob().toBuilder().setPrompt(p.getPrompt());
    if (p.hasTarget()) job.setTarget(p.getTarget());
    return job.build();
  }

  private static CorpusMembership membership(String id, int i, CorpusSpec spec) {
    return CorpusMembership.newBuilder().setCorpusId(id).setIndex(i).setSize(spec.getPromptsCount()).build();
  }

  /** The corpus from its jobs: their phases, progress summed, a rate and an ETA. */
  private CorpusJob summary(String id, List<Job> jobs) {
    int size = jobs.get(0).getCorpus().getSize();
    CorpusJob.Builder c = CorpusJob.newBuilder().setId(id).setCreated(jobs.get(0).getCreated());
    CorpusProgress.Builder p = CorpusProgress.newBuilder().setPromptsTotal(size);
    boolean cancelled = false, running = false, started = false;
    double doneFraction = 0;
    for (Job j : jobs) {
      c.addMembers(CorpusMember.newBuilder().setIndex(j.getCorpus().getIndex()).setJobId(j.getId()).setPhase(j.getPhase())
          .setError(j.getError()).setProgress(j.getProgress()));
      started |= j.getPhase() != Phase.PHASE_PLANNING;
      switch (j.getPhase()) {
        case PHASE_DONE -> p.setPromptsDone(p.getPromptsDone() + 1);
        case PHASE_FAILED -> p.setPromptsFailed(p.getPromptsFailed() + 1);
        case PHASE_CANCELLED -> {
          p.setPromptsFailed(p.getPromptsFailed() + 1);
          cancelled = true;
        }
        default -> running = true;
      }
      p.setTasksTotal(p.getTasksTotal() + j.getProgress().getTasksTotal()).setTasksDone(p.getTasksDone() + j.getProgress().getTasksDone())
          .setEdgesWritten(p.getEdgesWritten() + j.getProgress().getEdgesWritten());
      int tasks = j.getProgress().getTasksTotal();
      doneFraction += JobRules.ended(j.getPhase()) ? 1 : tasks == 0 ? 0 : (double) j.getProgress().getTasksDone() / tasks;
    }
    boolean beingPlanned = jobs.size() < size && planning.contains(id);
    if (jobs.size() < size && !beingPlanned && !cancelled) {
      c.setError("prompts " + (jobs.size() + 1) + " to " + size + " have no job: the orchestrator stopped while planning them");
      p.setPromptsFailed(p.getPromptsFailed() + size - jobs.size());
    }
    // a corpus plans its prompts a few at a time all along (jobs-in-flight): it is running once a job is
    c.setPhase(beingPlanned || running ? (started ? Phase.PHASE_RUNNING : Phase.PHASE_PLANNING) : cancelled ? Phase.PHASE_CANCELLED
        : p.getPromptsDone() > 0 ? Phase.PHASE_DONE : Phase.PHASE_FAILED);
    double seconds = Duration.between(JobLifecycle.instant(jobs.get(0).getCreated()), Instant.now()).toNanos() / 1e9;
    if (seconds > 0) p.setEdgesPerSecond(p.getEdgesWritten() / seconds);
    double fraction = doneFraction / size;
    if (fraction > 0 && !JobRules.ended(c.getPhase())) p.setEtaSeconds(seconds * (1 - fraction) / fraction);
    return c.setProgress(p).build();
  }
}
