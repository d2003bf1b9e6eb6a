package resgraph.graph;

import java.time.Instant;
import java.util.List;
import resgraph.v1.TokenValue;

/**
 * What the graph holds of a job, from its (:Job) node: what it was registered with that people
 * query, its predictions, and what Annotate stored. The job's spec and phase are the
 * orchestrator's ({@link JobNodes#recorded}).
 *
 * @param created when the orchestrator created the job, or null
 * @param method how its edges were found, as {@link resgraph.platform.job.JobRules#methodName} says it
 */
public record StoredJob(String id, String prompt, String model, String saes, String method, Instant created,
    List<TokenValue> predictions, boolean finalized, long rawEdges, int circuitEdges, int circuitNodes, double effectShown) {}
