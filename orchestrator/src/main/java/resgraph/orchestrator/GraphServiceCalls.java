package resgraph.orchestrator;

import resgraph.v1.AnnotateRequest;
import resgraph.v1.AnnotateResponse;
import resgraph.v1.Pruning;
import resgraph.v1.PruneResponse;
import resgraph.v1.RegisterJobRequest;

/**
 * What the orchestrator asks the graph service. A refusal is a {@link resgraph.platform.ResgraphException}
 * of the answer's kind: Submit passes one of register on as it is, its message prefixed
 * "graph service: "; the message of a refused prune, annotate or addToCorpus names the status too, as a job's
 * error does.
 */
public interface GraphServiceCalls {

  void register(RegisterJobRequest request);

  PruneResponse prune(String jobId, Pruning rule);

  AnnotateResponse annotate(AnnotateRequest request);

  /** Whether this call counted the job in its corpus statistics (false: an earlier one had). */
  boolean addToCorpus(String jobId);
}
