package resgraph.platform.kafka;

import io.micronaut.context.BeanContext;
import io.micronaut.context.event.ApplicationEventListener;
import io.micronaut.context.event.StartupEvent;
import jakarta.inject.Singleton;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts every {@link TopicListener} bean of a service once its context has started (so a listener
 * never sees a service half built), and tells the application when one ends on a failure. Each
 * listener is stopped by its bean's destruction, when the context closes.
 */
@Singleton
public final class Listeners implements ApplicationEventListener<StartupEvent> {

  private static final Logger LOG = LoggerFactory.getLogger(Listeners.class);

  /** What the application does when a listener ends on a failure (a process exits for its supervisor to restart it). */
  @FunctionalInterface
  public interface OnFailure {
    void failed(String listener, Throwable failure);
  }

  private final BeanContext context;
  private final Optional<OnFailure> onFailure;

  Listeners(BeanContext context, Optional<OnFailure> onFailure) {
    this.context = context;
    this.onFailure = onFailure;
  }

  @Override
  public void onApplicationEvent(StartupEvent event) {
    for (TopicListener<?> listener : context.getBeansOfType(TopicListener.class)) {
      listener.ended().thenAccept(end -> end.ifPresent(failure -> {
        LOG.error("listener {} stopped on a failure", listener.name());
        onFailure.ifPresent(f -> f.failed(listener.name(), failure));
      }));
      listener.start();
    }
  }
}
