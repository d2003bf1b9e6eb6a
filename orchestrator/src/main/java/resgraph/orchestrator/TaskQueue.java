package resgraph.orchestrator;

import java.util.List;
import resgraph.v1.AblationTask;

/** Where a job's tasks go for the workers to take. */
public interface TaskQueue {

  /**
   * Queues every task and returns once they are all durable.
   *
   * @throws resgraph.platform.ResgraphException UNAVAILABLE when they could not all be queued; the reason says why
   */
  void queue(List<AblationTask> tasks);
}
