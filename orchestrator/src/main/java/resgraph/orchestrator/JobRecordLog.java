package resgraph.orchestrator;

import java.util.Map;
import resgraph.v1.JobRecord;

/** The durable record of every job: the orchestrator's only state that outlives it. */
public interface JobRecordLog {

  /**
   * Writes the job's latest record and returns once it is durable.
   *
   * @throws resgraph.platform.ResgraphException UNAVAILABLE when it could not be written
   */
  void write(JobRecord record);

  /** Every job's latest record, by id, as the log holds them now. */
  Map<String, JobRecord> replay();
}
