package resgraph.orchestrator;

import jakarta.inject.Singleton;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ResgraphException;
import resgraph.platform.job.JobRules;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;

/**
 * Every job this orchestrator knows, and who is watching which. The {@link JobRecordLog} is the
 * only durable state: a change is written there, and acknowledged, before anyone here can see it;
 * the store is rebuilt from the whole log when it is made, before the service answers a call.
 * Changes are made one at a time, so each is computed from the state the previous one left.
 */
@Singleton
public final class JobStore {

  private static final Logger LOG = LoggerFactory.getLogger(JobStore.class);
  private static final Comparator<Job> NEWEST_FIRST = Comparator
      .comparing((Job j) -> JobLifecycle.instant(j.getCreated())).thenComparing(Job::getId).reversed();

  private final Map<String, JobRecord> jobs = new ConcurrentHashMap<>();
  /**
   * Guarded by this: by job id or corpus id ("j-..." or "c-..."), who watches it; each watcher
   * says whether it wants more. They are called in order of the changes, under the lock.
   */
  private final Map<String, List<Predicate<Job>>> watchers = new HashMap<>();
  private final JobRecordLog log;

  JobStore(JobRecordLog log) {
    this.log = log;
    JobRecordLog.Replayed replayed = log.replay();
    jobs.putAll(replayed.records());
    replayed.unreadable().forEach(this::failUnreadable);
    LOG.info("{} jobs restored", jobs.size());
  }

  /**
   * A job whose latest record cannot be read fails with why, keeping what its last readable record
   * says (its spec, its progress), or as a bare id when none can be read. What it was after that
   * record is unknown: it may have been cancelled, or finished, so going on from the older record
   * could run a cancelled job's tasks or finalize a job twice, and waiting on it could wait
   * forever; failed, it ends, tells whoever asks why, and its tasks are skipped. A job whose last
   * readable record had ended stays as it was: no orchestrator writes a job once it has ended, so
   * the unreadable record changed nothing. Either way the record is written again, so the next
   * start reads it instead of the unreadable one, and compaction can never leave the unreadable
   * one alone to turn an ended job into a bare failed id.
   */
  private void failUnreadable(String id, String reason) {
    JobRecord last = jobs.getOrDefault(id, JobRecord.newBuilder().setJob(Job.newBuilder().setId(id)).build());
    JobRecord failed = JobLifecycle.failed(last, reason);
    if (failed != last) failed = stamped(failed);
    log.write(failed);
    jobs.put(id, failed);
    LOG.warn("job {} is {} now: {}", id, failed.getJob().getPhase(), reason);
  }

  public Optional<JobRecord> get(String id) {
    return Optional.ofNullable(jobs.get(id));
  }

  /** The job, or NOT_FOUND naming the id. */
  public JobRecord require(String id) {
    return get(id).orElseThrow(() -> ResgraphException.notFound("no job " + id));
  }

  Collection<JobRecord> all() {
    return List.copyOf(jobs.values());
  }

  public List<Job> newestFirst() {
    return jobs.values().stream().map(JobRecord::getJob).sorted(NEWEST_FIRST).toList();
  }

  /** The jobs of a corpus, in the order of its prompts. */
  public List<Job> corpus(String corpusId) {
    return jobs.values().stream().map(JobRecord::getJob).filter(j -> j.getCorpus().getCorpusId().equals(corpusId))
        .sorted(Comparator.comparingInt(j -> j.getCorpus().getIndex())).toList();
  }

  /** Records a new job; UNAVAILABLE when the log does not take it. */
  synchronized void create(JobRecord r) {
    String id = r.getJob().getId();
    if (jobs.containsKey(id)) throw new ResgraphException(ResgraphException.Kind.ALREADY_EXISTS, "job " + id + " exists");
    log.write(r);
    jobs.put(id, r);
    tell(r.getJob()); // a new job of a corpus changes the corpus
  }

  /**
   * Applies a change to a job, stamps {@code updated}, writes it and tells the job's watchers.
   * NOT_FOUND for an unknown id, UNAVAILABLE when the log does not take the write (the job is then
   * as it was), and whatever the change itself throws.
   */
  public synchronized JobRecord update(String id, UnaryOperator<JobRecord> change) {
    JobRecord before = require(id);
    JobRecord after = change.apply(before);
    if (after.equals(before)) return before;
    after = stamped(after);
    log.write(after);
    jobs.put(id, after);
    tell(after.getJob());
    return after;
  }

  /** Counts a job's events into its record ({@link JobLifecycle#counted}); empty for a job this orchestrator never recorded. */
  public Optional<Job> count(String id, List<JobEvent> events) {
    if (get(id).isEmpty()) return Optional.empty();
    return Optional.of(update(id, r -> JobLifecycle.counted(r, events, Instant.now())).getJob());
  }

  /** Cancels the job: CANCELLED; NOT_FOUND or NOT_READY (already ended) as {@link JobLifecycle#cancelled} says. */
  public Job cancel(String id) {
    return update(id, JobLifecycle::cancelled).getJob();
  }

  /**
   * Calls {@code watcher} with the job now and after each change until the job ends; returns what
   * stops the calls earlier (for a client that goes away).
   */
  public synchronized Runnable watch(String id, Consumer<Job> watcher) {
    Job job = require(id).getJob();
    watcher.accept(job);
    if (JobRules.ended(job.getPhase())) return () -> {};
    return add(id, changed -> {
      watcher.accept(changed);
      return !JobRules.ended(changed.getPhase());
    });
  }

  /**
   * Calls {@code watcher} with null now, then with each job of the corpus as it is created or
   * changes, until it returns false; returns what stops the calls earlier.
   */
  public synchronized Runnable watchCorpus(String corpusId, Predicate<Job> watcher) {
    if (!watcher.test(null)) return () -> {};
    return add(corpusId, watcher);
  }

  /** How many watchers are registered, over all jobs and corpora. */
  public synchronized int watching() {
    return watchers.values().stream().mapToInt(List::size).sum();
  }

  private Runnable add(String key, Predicate<Job> watcher) {
    watchers.computeIfAbsent(key, k -> new ArrayList<>()).add(watcher);
    return () -> unwatch(key, watcher);
  }

  private synchronized void unwatch(String key, Predicate<Job> watcher) {
    List<Predicate<Job>> list = watchers.get(key);
    if (list == null) return;
    list.remove(watcher);
    if (list.isEmpty()) watchers.remove(key);
  }

  private static JobRecord stamped(JobRecord r) {
    return r.toBuilder().setJob(r.getJob().toBuilder().setUpdated(JobLifecycle.timestamp(Instant.now()))).build();
  }

  /** Tells the job's watchers and its corpus's. */
  private void tell(Job job) {
    tell(job.getId(), job);
    if (!job.getCorpus().getCorpusId().isEmpty()) tell(job.getCorpus().getCorpusId(), job);
  }

  /** A watcher that throws (its client is gone) or wants no more is dropped; none outlives what it watches. */
  private void tell(String key, Job job) {
    List<Predicate<Job>> list = watchers.get(key);
    if (list == null) return;
    list.removeIf(w -> {
      try {
        return !w.test(job);
      } catch (RuntimeException e) {
        LOG.debug("dropping a watcher of {}: {}", key, e.toString());
        return true;
      }
    });
    if (list.isEmpty()) watchers.remove(key);
  }
}
