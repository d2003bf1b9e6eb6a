package resgraph.modelserver;

import io.micronaut.runtime.event.annotation.EventListener;
import io.micronaut.runtime.server.event.ServerStartupEvent;
import jakarta.inject.Provider;
import jakarta.inject.Singleton;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;
import resgraph.platform.grpc.ServiceHealth;
import resgraph.v1.ModelRef;

/**
 * Loads the pair {@code preload-model} names once the server listens, on a thread of its own, so
 * the first job does not wait for it; until it is resident the health service says NOT_SERVING.
 * A load that fails is logged with its reason and tried again, backing off to once a minute: the
 * server keeps answering meanwhile, and a request for that pair gets the reason itself.
 */
@Singleton
final class ModelPreload implements ServiceHealth.Readiness {

  private static final Logger LOG = LoggerFactory.getLogger(ModelPreload.class);
  private static final Backoff RETRY = Backoff.forever(Duration.ofSeconds(2), Duration.ofMinutes(1));

  private final ModelRequests requests;
  private final ModelServerConfig config;
  private final Provider<ServiceHealth> health;
  private volatile boolean loaded;

  ModelPreload(ModelRequests requests, ModelServerConfig config, Provider<ServiceHealth> health) {
    this.requests = requests;
    this.config = config;
    this.health = health;
    this.loaded = config.preload().isEmpty();
  }

  @Override
  public boolean ready() {
    return loaded;
  }

  @EventListener
  void started(ServerStartupEvent event) {
    LOG.info("model server listening on port {}", event.getSource().getPort());
    config.preload().ifPresent(ref -> {
      Thread t = new Thread(() -> load(ref), "preload");
      t.setDaemon(true);
      t.start();
    });
  }

  private void load(ModelRef ref) {
    for (int attempt = 1; ; attempt++) {
      try {
        LOG.info("loading {} with SAEs {}", ref.getModel(), ref.getSaes());
        requests.describe(ref);
        loaded = true;
        health.get().refresh();
        LOG.info("{} with SAEs {} is loaded: serving", ref.getModel(), ref.getSaes());
        return;
      } catch (RuntimeException e) {
        Duration wait = RETRY.delay(attempt);
        LOG.error("cannot load {} with SAEs {}: {}; trying again in {} s", ref.getModel(), ref.getSaes(), e.getMessage(),
            wait.toSeconds());
        try {
          Thread.sleep(wait.toMillis());
        } catch (InterruptedException stop) {
          return;
        }
      }
    }
  }
}
