package resgraph.orchestrator;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;

/**
 * How the orchestrator finalizes jobs, under {@code resgraph.finalization.*}.
 *
 * @param logitEffectsCalls {@code logit-effects-calls} (2): LogitEffects calls in flight at once,
 *     over all the jobs being finalized. A model server computes a call on one core of its own (up
 *     to its compute permits) and queues the rest: about as many as the model servers have permits
 *     in all, since more only wait there.
 */
@ConfigurationProperties("resgraph.finalization")
public record FinalizationConfig(@Bindable(defaultValue = "2") int logitEffectsCalls) {

  public FinalizationConfig {
    if (logitEffectsCalls < 1) {
      throw new IllegalArgumentException("resgraph.finalization.logit-effects-calls must be at least 1, not " + logitEffectsCalls);
    }
  }
}
