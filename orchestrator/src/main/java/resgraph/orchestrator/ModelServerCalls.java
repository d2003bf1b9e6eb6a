package resgraph.orchestrator;

import resgraph.v1.DescribeResponse;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.ModelRef;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * What the orchestrator asks the model server. A refusal is a {@link resgraph.platform.ResgraphException}
 * of the answer's kind: Submit passes those of describe, tokenize and trace on as they are, their
 * message prefixed "model server: "; the message of a refused logitEffects names the status too,
 * as a job's error does.
 */
public interface ModelServerCalls {

  DescribeResponse describe(ModelRef ref);

  TokenizeResponse tokenize(ModelRef ref, String text);

  TraceResponse trace(TraceRequest request);

  LogitEffectsResponse logitEffects(LogitEffectsRequest request);
}
