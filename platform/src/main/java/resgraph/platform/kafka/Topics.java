package resgraph.platform.kafka;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.config.TopicConfig;

/**
 * The Kafka topics of resgraph (what flows on each is documented in events.proto), and their
 * creation: every service ensures the topics it uses exist, so no setup step is needed.
 */
public final class Topics {

  /** AblationTask, keyed job/task; partitions bound how many workers can share one job. */
  public static final String TASKS = "resgraph.tasks";
  /** TaskEffects, keyed by job. */
  public static final String EFFECTS = "resgraph.effects";
  /** JobEvent, keyed by job. */
  public static final String JOB_EVENTS = "resgraph.job-events";
  /** Job, keyed by job, compacted: the latest state of every job. */
  public static final String JOBS = "resgraph.jobs";
  /** TaskFailure, keyed job/task: tasks given up, kept for people to look at. */
  public static final String DEAD_LETTERS = "resgraph.tasks.dlq";

  /** Large enough for the effects of a task of thousands of latents. */
  public static final int MAX_MESSAGE_BYTES = 32 << 20;

  private Topics() {}

  /** Creates whichever of resgraph's topics do not exist yet. */
  public static void ensure(Admin admin, int replicationFactor) {
    short rf = (short) replicationFactor;
    Map<String, String> large = Map.of(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, Integer.toString(MAX_MESSAGE_BYTES));
    List<NewTopic> wanted = List.of(
        new NewTopic(TASKS, 16, rf).configs(large),
        new NewTopic(EFFECTS, 4, rf).configs(large),
        new NewTopic(JOB_EVENTS, 4, rf),
        new NewTopic(JOBS, 4, rf).configs(Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT)),
        new NewTopic(DEAD_LETTERS, 1, rf).configs(large));
    try {
      Set<String> existing = admin.listTopics().names().get();
      List<NewTopic> missing = wanted.stream().filter(t -> !existing.contains(t.name())).collect(Collectors.toList());
      if (missing.isEmpty()) return;
      admin.createTopics(missing).values().forEach((name, f) -> {
        try {
          f.get();
        } catch (ExecutionException e) {
          // another service created it in the meantime
          if (!(e.getCause() instanceof org.apache.kafka.common.errors.TopicExistsException)) {
            throw new IllegalStateException("cannot create Kafka topic " + name + ": " + e.getCause().getMessage(), e);
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("interrupted creating Kafka topics", e);
        }
      });
    } catch (ExecutionException e) {
      throw new IllegalStateException("cannot reach Kafka to create topics: " + e.getCause().getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted creating Kafka topics", e);
    }
  }
}
