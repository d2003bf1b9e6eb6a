package resgraph.worker;

import resgraph.v1.AblateResponse;
import resgraph.v1.AblationTask;

/** The model server as a worker uses it. */
public interface Ablator {

  /**
   * METHOD.md steps 3-5 for the task's latents.
   *
   * @throws resgraph.platform.ResgraphException what the model server answered, its reason naming
   *     the status; a transient kind when it is down, restarting or busy
   * @throws InterruptedException when the task is abandoned meanwhile
   */
  AblateResponse ablate(AblationTask task) throws InterruptedException;
}
