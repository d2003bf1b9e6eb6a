package resgraph.orchestrator.kafka;

import jakarta.inject.Singleton;
import java.util.List;
import org.apache.kafka.common.KafkaException;
import resgraph.orchestrator.TaskQueue;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.platform.kafka.Topics;
import resgraph.v1.AblationTask;

/**
 * Tasks on resgraph.tasks, keyed job/task. Each worker takes the tasks of the partitions it owns,
 * so where a job's tasks land decides how evenly its workers are loaded: hashed, a job of eleven
 * tasks gave one of two workers eight. Instead consecutive tasks are placed a golden-ratio step
 * apart around the partitions (from a point the job id picks), which puts about as many on every
 * contiguous range of partitions and on every other one, the two ways consumer groups share them out.
 */
@Singleton
final class KafkaTaskQueue implements TaskQueue {

  private final KafkaPublisher publisher;

  KafkaTaskQueue(KafkaPublisher publisher) {
    this.publisher = publisher;
  }

  @Override
  public void queue(List<AblationTask> tasks) {
    try {
      int partitions = tasks.isEmpty() ? 1 : publisher.partitions(Topics.TASKS);
      publisher.publishAll(Topics.TASKS, tasks.stream().map(t -> new Keyed(t, partition(t, partitions))).toList());
    } catch (KafkaException e) {
      throw ResgraphException.unavailable("queueing its tasks on " + Topics.TASKS + " failed: " + e.getMessage(), e);
    }
  }

  /** The partition of {@code task} among {@code n}. */
  static int partition(AblationTask task, int n) {
    return (int) Math.floorMod(task.getJobId().hashCode() + (long) task.getTask() * goldenStep(n), n);
  }

  /** The step nearest n/φ that is prime to n, so that n steps visit every partition once. */
  private static int goldenStep(int n) {
    int near = (int) Math.round(n * (Math.sqrt(5) - 1) / 2);
    for (int d = 0; ; d++) {
      if (near - d >= 1 && gcd(near - d, n) == 1) return near - d;
      if (gcd(near + d, n) == 1) return near + d;
    }
  }

  private static int gcd(int a, int b) {
    return b == 0 ? a : gcd(b, a % b);
  }

  private record Keyed(AblationTask value, Integer partition) implements KafkaPublisher.Keyed {
    @Override
    public String key() {
      return value.getJobId() + "/" + value.getTask();
    }
  }
}
