package resgraph.platform.kafka;

import java.util.List;
import java.util.Map;
import java.util.Optional;
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
  /** UnreadableRecord, keyed as the record was: records of any topic their consumers could not read, kept for people to look at. */
  public static final String UNREADABLE = "resgraph.unreadable";

  /** Large enough for the effects of a task of thousands of latents. */
  public static final int MAX_MESSAGE_BYTES = 32 << 20;

  private Topics() {}

  /**
   * The job a record's key names: what precedes the task number of a task's "job/task", and on
   * every other topic the key itself. Empty for no key, or a task key of another shape.
   */
  public static Optional<String> jobOf(String topic, String key) {
    if (key == null || key.isEmpty()) return Optional.empty();
    if (!topic.equals(TASKS)) return Optional.of(key);
    int slash = key.lastIndexOf('/');
    if (slash < 1 || slash == key.length() - 1 || !key.substring(slash + 1).chars().allMatch(Character::isDigit)) return Optional.empty();
    return Optional.of(key.substring(0, slash));
  }

  /** Creates whichever of resgraph's topics do not exist yet. */
  public static void ensure(Admin admin, int replicationFactor) {
    short rf = (short) replicationFactor;
    Map<String, String> large = Map.of(TopicConfig.MAX_MESSAGE_BYTES_CONFIG, Integer.toString(MAX_MESSAGE_BYTES));
    List<NewTopic> wanted = List.of(
        new NewTopic(TASKS, 16, rf).configs(large),
        new NewTopic(EFFECTS, 4, rf).configs(large),
        new NewTopic(JOB_EVENTS, 4, rf),
        new NewTopic(JOBS, 4, rf).configs(Map.of(TopicConfig.CLEANUP_POLICY_CONFIG, TopicConfig.CLEANUP_POLICY_COMPACT)),
        new NewTopic(DEAD_LETTERS, 1, rf).configs(large),
        new NewTopic(UNREADABLE, 1, rf).configs(large));
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
