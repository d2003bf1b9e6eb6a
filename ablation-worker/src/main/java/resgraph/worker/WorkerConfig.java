package resgraph.worker;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.bind.annotation.Bindable;
import java.time.Duration;
import resgraph.platform.Backoff;

/**
 * A worker's settings, under {@code resgraph.worker.*} (it also needs {@code kafka.bootstrap.servers}
 * and {@code resgraph.model-server.address}).
 *
 * @param name {@code name} (ablation-worker): its Kafka client id, in logs and thread names
 * @param retryFor {@code retry-for} (10m): how long a task is retried while the model server is down or busy
 * @param backoffInitial {@code backoff-initial} (500ms): the first wait before a retry, doubling after each
 * @param backoffMax {@code backoff-max} (15s): the longest wait
 * @param ablateTimeout {@code ablate-timeout} (5m): the deadline of one Ablate call, queueing at the model server included
 */
@ConfigurationProperties("resgraph.worker")
public record WorkerConfig(
    @Bindable(defaultValue = "ablation-worker") String name,
    @Bindable(defaultValue = "10m") Duration retryFor,
    @Bindable(defaultValue = "500ms") Duration backoffInitial,
    @Bindable(defaultValue = "15s") Duration backoffMax,
    @Bindable(defaultValue = "5m") Duration ablateTimeout) {

  public WorkerConfig {
    if (name.isBlank()) throw new IllegalArgumentException("resgraph.worker.name is empty");
    new Backoff(backoffInitial, backoffMax, retryFor); // refuses what makes no sense
    if (ablateTimeout.isNegative() || ablateTimeout.isZero()) throw new IllegalArgumentException("resgraph.worker.ablate-timeout must be positive, not " + ablateTimeout);
  }

  /** When a task whose model server is away is tried again, and for how long. */
  public Backoff backoff() {
    return new Backoff(backoffInitial, backoffMax, retryFor);
  }
}
