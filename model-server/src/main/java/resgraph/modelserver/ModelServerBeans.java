package resgraph.modelserver;

import io.micronaut.context.annotation.Bean;
import io.micronaut.context.annotation.Factory;
import jakarta.inject.Singleton;

/** The model server's resident pairs, trace cache and model sources, from its configuration. */
@Factory
final class ModelServerBeans {

  @Singleton
  ModelSources sources(ModelFilesConfig files) {
    return ModelSources.of(files, HubClient.logging());
  }

  @Singleton
  @Bean(preDestroy = "close")
  ModelRegistry registry(ModelSources sources, ModelServerConfig config) {
    return new ModelRegistry(sources, config.maxResident());
  }

  @Singleton
  TraceCache traces(ModelServerConfig config) {
    return new TraceCache(config.traceCacheMb());
  }
}
