package resgraph.orchestrator.kafka;

import jakarta.inject.Singleton;
import java.util.List;
import org.apache.kafka.common.KafkaException;
import resgraph.orchestrator.TaskQueue;
import resgraph.platform.ResgraphException;
import resgraph.platform.kafka.KafkaPublisher;
import resgraph.platform.kafka.Topics;
import resgraph.v1.AblationTask;

/** Tasks on resgraph.tasks, keyed job/task, so one job spreads over the topic's partitions and so over the workers. */
@Singleton
final class KafkaTaskQueue implements TaskQueue {

  private final KafkaPublisher publisher;

  KafkaTaskQueue(KafkaPublisher publisher) {
    this.publisher = publisher;
  }

  @Override
  public void queue(List<AblationTask> tasks) {
    try {
      publisher.publishAll(Topics.TASKS, tasks.stream().map(Keyed::new).toList());
    } catch (KafkaException e) {
      throw ResgraphException.unavailable("queueing its tasks on " + Topics.TASKS + " failed: " + e.getMessage(), e);
    }
  }

  private record Keyed(AblationTask value) implements KafkaPublisher.Keyed {
    @Override
    public String key() {
      return value.getJobId() + "/" + value.getTask();
    }
  }
}
