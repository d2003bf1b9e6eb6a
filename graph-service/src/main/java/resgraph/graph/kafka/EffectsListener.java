package resgraph.graph.kafka;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.graph.EffectsStore;
import resgraph.platform.Backoff;
import resgraph.platform.kafka.ErrorStrategy;
import resgraph.platform.kafka.GiveUp;
import resgraph.platform.kafka.JobEvents;
import resgraph.platform.kafka.KafkaBroker;
import resgraph.platform.kafka.TopicListener;
import resgraph.platform.kafka.Topics;
import resgraph.platform.kafka.UnreadableRecords;
import resgraph.v1.TaskEffects;
import resgraph.v1.TaskStored;

/**
 * The graph service's listener: group {@value #GROUP} over resgraph.effects. Stores each poll's
 * tasks of raw edges through {@link EffectsStore} (their edge files {@code resgraph.graph.writers}
 * at once, their Neo4j writes in one transaction), then publishes a {@code JobEvent{stored}} for
 * each to resgraph.job-events, and only then lets the offsets be committed, so a crash anywhere
 * redelivers rather than loses.
 *
 * <p>Error strategy, per record:
 * <ul>
 *   <li>Keep and fail the job: not a TaskEffects (or no value). It can never be stored: it is kept
 *       as it was on resgraph.unreadable, and {@code JobEvent{job_failed}} goes to the job its key
 *       names ({@link UnreadableRecords}), so the orchestrator fails it instead of waiting forever
 *       for the task it held. The poll's other tasks are stored.
 *   <li>Skip: a TaskEffects with no job id. It can never be stored and there is no job to tell;
 *       logged, nothing is published.
 *   <li>Fail the job: valid but unusable (a delta list that does not match its latents, a non-finite
 *       effect, a job never registered here). It can never be stored: {@code JobEvent{failed}} goes
 *       to the job, so the orchestrator fails it instead of waiting forever. (No dead letter:
 *       TaskFailure carries the AblationTask, which this service never sees.) The poll's other
 *       tasks are stored.
 *   <li>Already stored (a redelivery, a duplicate): not written again; its stored event is published
 *       again with the edge count it had, so a crash between the Neo4j commit and the event never
 *       stalls a job. The orchestrator counts each task once.
 *   <li>Retry with backoff: anything else (Neo4j unreachable beyond the driver's own 30 s of
 *       transaction retries, a deadlock that outlasts them, Kafka refusing the events or the poll),
 *       the whole poll, from 1 s doubling to 30 s, without end. No unwritten task is ever committed.
 * </ul>
 */
@Factory
public class EffectsListener implements TopicListener.BatchHandler<TaskEffects> {

  public static final String GROUP = "resgraph-graph";

  private static final Logger LOG = LoggerFactory.getLogger(EffectsListener.class);

  private final EffectsStore store;
  private final JobEvents events;

  EffectsListener(EffectsStore store, JobEvents events) {
    this.store = store;
    this.events = events;
  }

  @Singleton
  @Bean(preDestroy = "close")
  TopicListener<TaskEffects> effects(KafkaBroker broker, UnreadableRecords unreadable) {
    GiveUp<TaskEffects> failJob = events.failJob("graph service", TaskEffects::getJobId, TaskEffects::getTask);
    return TopicListener.on(Topics.EFFECTS, TaskEffects.getDefaultInstance())
        .group(GROUP)
        .name("graph-service-effects", "effects-listener")
        // a poll is a transaction: enough tasks to amortize its commit; a TaskEffects can be tens of MB, which fetch.max.bytes
        // bounds. A fetch waits up to 100 ms for a megabyte (some fifteen GPT-2-small tasks): a burst's first polls
        // otherwise took one task each, a transaction and a commit apiece, a quarter of a replay's time.
        .settings(Map.of(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 64, ConsumerConfig.FETCH_MIN_BYTES_CONFIG, 1 << 20,
            ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 100))
        .errors(new ErrorStrategy<>(Backoff.forever(Duration.ofSeconds(1), Duration.ofSeconds(30)),
            unreadable.giveUp(GROUP, events::failed), failJob))
        .batches(broker, this);
  }

  @Override
  public Map<TaskEffects, String> handle(List<TaskEffects> tasks) throws InterruptedException {
    Map<TaskEffects, String> refused = new HashMap<>();
    List<TaskEffects> withJob = new ArrayList<>();
    for (TaskEffects t : tasks) {
      if (t.getJobId().isEmpty()) {
        LOG.error("skipping a TaskEffects without a job id (task {})", t.getTask());
      } else {
        withJob.add(t);
      }
    }
    List<EffectsStore.Outcome> outcomes = store.store(withJob);
    List<JobEvents.Stored> stored = new ArrayList<>();
    for (EffectsStore.Outcome o : outcomes) {
      TaskEffects task = o.task();
      if (o.refusal() != null) {
        refused.put(task, o.refusal());
        continue;
      }
      stored.add(new JobEvents.Stored(task.getJobId(), TaskStored.newBuilder().setTask(task.getTask()).setEdges(o.edges())
          .setWriteSeconds(o.seconds()).setAblateSeconds(task.getAblateSeconds()).build()));
      if (o.written()) {
        LOG.info("stored task {} of job {}: {} edges in {} ms ({} ms of it on the edge files)", task.getTask(), task.getJobId(),
            o.edges(), Math.round(o.seconds() * 1000), o.fileMillis());
      } else {
        LOG.info("task {} of job {} was already stored; its event is published again", task.getTask(), task.getJobId());
      }
    }
    events.stored(stored);
    return refused;
  }
}
