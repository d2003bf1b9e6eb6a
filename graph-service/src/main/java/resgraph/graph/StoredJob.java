package resgraph.graph;

import java.util.List;
import resgraph.v1.Job;
import resgraph.v1.Pruning;
import resgraph.v1.TokenValue;

/**
 * A job as its (:Job) node holds it: the Job message rebuilt from the node (phase DONE once
 * finalized, RUNNING before: the graph service knows no other phase), the predictions, and what
 * Finalize stored.
 */
public record StoredJob(Job job, List<TokenValue> predictions, boolean finalized, long rawEdges, int circuitEdges,
    int circuitNodes, double effectShown) {

  public String id() {
    return job.getId();
  }

  public String model() {
    return job.getSpec().getRef().getModel();
  }

  public String saes() {
    return job.getSpec().getRef().getSaes();
  }

  /** The rule Finalize applies: the job's, always set (RegisterJob stores top_k 10 when none was given). */
  public Pruning pruning() {
    return job.getSpec().getPruning();
  }
}
