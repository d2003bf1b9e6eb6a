package resgraph.modelserver;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;
import java.util.Locale;
import java.util.Optional;
import resgraph.v1.Centering;
import resgraph.v1.ModelRef;

/**
 * How the model server serves, under {@code resgraph.model-server.*}.
 *
 * @param maxResident {@code max-resident} (2): how many (model, SAEs) pairs stay loaded, the least recently used leaving first
 * @param ablationBatch {@code ablation-batch} (128): latents ablated in one batched pass
 * @param computePermits {@code compute-permits} (1): heavy passes run at once (on a CPU whose cores libtorch's threads
 *     already share, two at once only slow each other; with one thread a pass, as many as cores)
 * @param traceCacheMb {@code trace-cache-mb} (512): the clean traces kept, in MB
 * @param preloadModel {@code preload-model}: a model to load as soon as the server listens (none by default)
 * @param preloadSaes {@code preload-saes}: its SAEs
 * @param preloadCentering {@code preload-centering} (auto): auto, on or off, as ModelRef.centering
 */
@ConfigurationProperties("resgraph.model-server")
public record ModelServerConfig(
    @Bindable(defaultValue = "2") int maxResident,
    @Bindable(defaultValue = "128") int ablationBatch,
    @Bindable(defaultValue = "1") int computePermits,
    @Bindable(defaultValue = "512") long traceCacheMb,
    @Nullable String preloadModel,
    @Nullable String preloadSaes,
    @Bindable(defaultValue = "auto") String preloadCentering) {

  public ModelServerConfig {
    if (maxResident < 1) throw new IllegalArgumentException("resgraph.model-server.max-resident must be at least 1, not " + maxResident);
    if (ablationBatch < 1) throw new IllegalArgumentException("resgraph.model-server.ablation-batch must be at least 1, not " + ablationBatch);
    if (computePermits < 1) {
      throw new IllegalArgumentException("resgraph.model-server.compute-permits must be at least 1, not " + computePermits);
    }
    if (traceCacheMb < 0) throw new IllegalArgumentException("resgraph.model-server.trace-cache-mb must not be negative, not " + traceCacheMb);
    if ((preloadModel == null) != (preloadSaes == null)) {
      throw new IllegalArgumentException("resgraph.model-server.preload-model and preload-saes go together");
    }
    centering("resgraph.model-server.preload-centering", preloadCentering);
  }

  /** The pair to load at start, if any. */
  public Optional<ModelRef> preload() {
    if (preloadModel == null) return Optional.empty();
    return Optional.of(ModelRef.newBuilder().setModel(preloadModel).setSaes(preloadSaes)
        .setCentering(centering("resgraph.model-server.preload-centering", preloadCentering)).build());
  }

  /** A centring as people write it (auto, on or off) as ModelRef.centering; IllegalArgumentException naming {@code option}. */
  public static Centering centering(String option, String value) {
    return switch (value.toLowerCase(Locale.ROOT)) {
      case "auto" -> Centering.CENTERING_AUTO;
      case "on", "true" -> Centering.CENTERING_ON;
      case "off", "false" -> Centering.CENTERING_OFF;
      default -> throw new IllegalArgumentException(option + " must be auto, on or off, not " + value);
    };
  }
}
