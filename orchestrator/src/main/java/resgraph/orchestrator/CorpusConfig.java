package resgraph.orchestrator;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * How the orchestrator runs a corpus, under {@code resgraph.corpus.*}.
 *
 * @param jobsInFlight {@code jobs-in-flight} (2): a corpus's jobs planned and not yet done at once.
 *     Enough to keep the workers busy while a job is planned or finalized; more only interleaves the
 *     jobs' tasks, so that every job ends late and the finalizations pile up at the end. A pool of
 *     many GPU model servers wants about as many as it takes to fill it.
 */
@ConfigurationProperties("resgraph.corpus")
public record CorpusConfig(@Bindable(defaultValue = "2") int jobsInFlight) {

  public CorpusConfig {
    if (jobsInFlight < 1) throw new IllegalArgumentException("resgraph.corpus.jobs-in-flight must be at least 1, not " + jobsInFlight);
  }
}
