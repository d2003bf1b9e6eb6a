package resgraph.orchestrator;

import java.util.Map;
import resgraph.v1.JobRecord;

/** The durable record of every job: the orchestrator's only state that outlives it. */
public interface JobRecordLog {

  /**
   * What the log holds: every job's latest readable record, by id, and the jobs whose latest
   * record cannot be read, by id, with why (such a job is in {@code records} too when an earlier
   * record of it can be read).
   */
  record Replayed(Map<String, JobRecord> records, Map<String, String> unreadable) {}

  /**
   * Writes the job's latest record and returns once it is durable.
   *
   * @throws resgraph.platform.ResgraphException UNAVAILABLE when it could not be written
   */
  void write(JobRecord record);

  /** Every job's latest record as the log holds them now; a record that cannot be read is kept aside by the log first. */
  Replayed replay();
}
