package resgraph.cli;

import resgraph.modelserver.ModelFilesConfig;
import resgraph.modelserver.ModelSources;

/**
 * Fetches what a (model, SAEs) pair needs into the cache a model server on this machine reads,
 * before that server loads it, so the download shows its progress in the terminal of whoever asked
 * for it; the server then finds every file in place.
 */
final class Downloads {

  private Downloads() {}

  static void prefetch(ModelOptions options) {
    prefetch(options.model, options.saes, options.cacheDir == null ? null : options.cacheDir.toAbsolutePath().toString(),
        options.hubUrl);
  }

  /** {@code cacheDir} and {@code hubUrl} null: the environment's, as the model server would take them. */
  static void prefetch(String model, String saes, String cacheDir, String hubUrl) {
    if (model.startsWith(ModelSources.SYNTHETIC)) return; // built in memory: nothing to fetch
    ModelSources.of(ModelFilesConfig.fromEnvironment(cacheDir, hubUrl), new DownloadBar(System.err)).locate(model, saes);
  }
}
