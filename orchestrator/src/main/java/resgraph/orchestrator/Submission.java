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
 * candidates (METHOD.md step 2), registers the job with the graph service and queues the tasks.
 *
 * <p>The order makes every failure clean. Nothing is written anywhere until the graph service has
 * the job, so a refusal there (UNAVAILABLE included) leaves no trace. The job is then recorded
 * as PLANNING before its first task is queued, so no event can arrive for a job the orchestrator
 * does not know, and becomes RUNNING only once every task is acknowledged by Kafka: a job found
 * still PLANNING after a restart lost some of its tasks, and {@link Recovery} fails it.
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
    graph.register(RegisterJobRequest.newBuilder().setJob(job.build()).addAllActivations(trace.getLayersList())
        .addAllPredictions(trace.getPredictionsList()).build());
    long registered = System.nanoTime();

    store.create(JobRecord.newBuilder().setJob(job.build()).build());
    queue(id, plan.tasks());
    long end = System.nanoTime();
    Duration planning = Duration.ofNanos(end - start);
    JobRecord queued = store.update(id, r -> JobLifecycle.running(r, planning));
    // the parts of planning that grow with the prompt, as Finalization logs its own
    LOG.info("job {}: {} candidates in {} tasks over {}; traced in {} ms, registered in {} ms, queued in {} ms", id,
        plan.candidates(), plan.tasks().size(), chain.stream().map(ChainSite::getSite).toList(),
        (traced - start) / 1_000_000, (registered - traced) / 1_000_000, (end - registered) / 1_000_000);
    finalization.finalizeIfDue(queued.getJob());
    return queued.getJob();
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
