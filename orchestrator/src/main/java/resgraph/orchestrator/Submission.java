package resgraph.orchestrator;

import com.google.protobuf.Timestamp;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.orchestrator.JobPlanner.Plan;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.AblationTask;
import resgraph.v1.ChainSite;
import resgraph.v1.CorpusMembership;
import resgraph.v1.DescribeResponse;
import resgraph.v1.Job;
import resgraph.v1.JobRecord;
import resgraph.v1.JobSpec;
import resgraph.v1.Phase;
import resgraph.v1.Progress;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * Submit: checks a spec ({@link JobRules}), traces its prompt, plans its tasks from the trace's
 * candidates (METHOD.md step 2), registers the job with the graph service, queues the tasks and
 * registers the prompt's activations while the first tasks run.
 *
 * <p>The order makes every failure clean. Nothing is written anywhere until the graph service has
 * the job, so a refusal there (UNAVAILABLE included) leaves no trace. The job is then recorded
 * as PLANNING before its first task is queued, so no event can arrive for a job the orchestrator
 * does not know, and becomes RUNNING only once every task is acknowledged by Kafka and the
 * activations are registered: a job found still PLANNING after a restart lost some of its tasks or
 * its activations, and {@link Recovery} fails it, as Submit fails a job whose activations the graph
 * service refused.
 */
@Singleton
public final class Submission {

  private static final Logger LOG = LoggerFactory.getLogger(Submission.class);

  private final ModelServerCalls model;
  private final GraphServiceCalls graph;
  private final JobStore store;
  private final TaskQueue tasks;
  private final Finalization finalization;
  private final JobIds ids = new JobIds("j");

  Submission(ModelServerCalls model, GraphServiceCalls graph, JobStore store, TaskQueue tasks, Finalization finalization) {
    this.model = model;
    this.graph = graph;
    this.store = store;
    this.tasks = tasks;
    this.finalization = finalization;
  }

  /** The job as queued (RUNNING, or further along if its events came quickly). */
  public Job submit(JobSpec request) {
    return submit(request, null);
  }

  /** A job as a prompt of a corpus ({@code corpus} null for one alone), as queued. */
  Job submit(JobSpec request, CorpusMembership corpus) {
    long start = System.nanoTime();
    JobSpec spec = JobRules.resolve(request);
    DescribeResponse described = model.describe(spec.getRef());
    TokenizeResponse tokens = model.tokenize(spec.getRef(), spec.getPrompt());
    // the model server resolves the chain the spec names against its SAEs, and checks it
    TraceRequest.Builder traceRequest = TraceRequest.newBuilder().setRef(spec.getRef()).addAllTokens(tokens.getTokensList())
        .addAllSites(spec.getSitesList());
    if (spec.hasTarget()) traceRequest.setTarget(spec.getTarget());
    if (spec.hasLayerStart()) traceRequest.setLayerStart(spec.getLayerStart());
    if (spec.hasLayerEnd()) traceRequest.setLayerEnd(spec.getLayerEnd());
    TraceResponse trace = model.trace(traceRequest.build());
    long traced = System.nanoTime();
    List<ChainSite> chain = trace.getChainList();

    Instant now = Instant.now();
    String id = ids.next(now, taken -> store.get(taken).isPresent());
    Plan plan = JobPlanner.plan(id, spec, tokens.getTokensList(), trace);
    Timestamp created = JobLifecycle.timestamp(now);
    Job.Builder job = Job.newBuilder()
        .setId(id)
        .setSpec(spec)
        .setPhase(Phase.PHASE_PLANNING)
        .setProgress(Progress.newBuilder().setTasksTotal(plan.tasks().size()).setCandidates(plan.candidates()))
        .addAllTokens(tokens.getTokensList())
        .addAllTokenStrings(tokens.getTokenStringsList())
        .setTarget(trace.getTarget())
        .setLayerStart(chain.get(0).getLayer())
        .setLayerEnd(chain.get(chain.size() - 1).getLayer() + 1)
        .addAllChain(chain)
        .addAllSaesSettings(described.getSettingsList())
        .setRelease(described.getRelease())
        .setCreated(created)
        .setUpdated(created);
    if (corpus != null) job.setCorpus(corpus);
    // The job node first: the graph service stores a task's effects only for a job it holds. The
    // prompt's activations, thousands of ACTIVE relationships, follow while the workers ablate:
    // only finalization reads them, and it waits for RUNNING, which their registration precedes.
    RegisterJobRequest.Builder registration = RegisterJobRequest.newBuilder().setJob(job.build())
        .addAllPredictions(trace.getPredictionsList());
    graph.register(registration.build());
    long registered = System.nanoTime();

    store.create(JobRecord.newBuilder().setJob(job.build()).build());
    queue(id, plan.tasks());
    long queued = System.nanoTime();
    registerActivations(id, registration.addAllActivations(trace.getLayersList()).build());
    long end = System.nanoTime();
    Duration planning = Duration.ofNanos(queued - start); // what the first task waits for
    JobRecord running = store.update(id, r -> JobLifecycle.running(r, planning));
    // the parts of planning that grow with the prompt, as Finalization logs its own
    LOG.info("job {}: {} candidates in {} tasks over {}; traced in {} ms, registered in {} ms, queued in {} ms, "
        + "activations registered in {} ms", id, plan.candidates(), plan.tasks().size(),
        chain.stream().map(ChainSite::getSite).toList(), (traced - start) / 1_000_000, (registered - traced) / 1_000_000,
        (queued - registered) / 1_000_000, (end - queued) / 1_000_000);
    finalization.finalizeIfDue(running.getJob());
    return running.getJob();
  }

  /**
   * Records a prompt of a corpus that could not be planned as a job that failed with why, so that
   * the corpus accounts for every prompt. Nothing else was written for it.
   */
  Job recordUnplanned(JobSpec request, CorpusMembership corpus, String reason) {
    Instant now = Instant.now();
    Timestamp created = JobLifecycle.timestamp(now);
    Job job = Job.newBuilder().setId(ids.next(now, taken -> store.get(taken).isPresent())).setSpec(request)
        .setPhase(Phase.PHASE_FAILED).setError(reason).setCorpus(corpus).setCreated(created).setUpdated(created).build();
    store.create(JobRecord.newBuilder().setJob(job).build());
    return job;
  }

  /**
   * Registers the prompt's activations of a job whose tasks are queued; when that fails, the job
   * fails with the reason (its workers then skip what is left of it) and Submit answers as the graph
   * service did.
   */
  private void registerActivations(String id, RegisterJobRequest registration) {
    try {
      graph.register(registration);
    } catch (ResgraphException e) {
      store.update(id, r -> JobLifecycle.failed(r, "registering its activations: " + e.getMessage()));
      throw e;
    }
  }

  /** Queues the job's tasks; when that fails, the job fails with the reason and Submit answers UNAVAILABLE. */
  private void queue(String id, List<AblationTask> planned) {
    try {
      tasks.queue(planned);
    } catch (ResgraphException e) {
      store.update(id, r -> JobLifecycle.failed(r, e.getMessage()));
      throw ResgraphException.unavailable("job " + id + ": " + e.getMessage(), e);
    }
  }
}
