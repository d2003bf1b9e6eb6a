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
    if (options.model.startsWith(ModelSources.SYNTHETIC)) return; // built in memory: nothing to fetch
    ModelFilesConfig files = ModelFilesConfig.fromEnvironment(
        options.cacheDir == null ? null : options.cacheDir.toAbsolutePath().toString(), options.hubUrl);
    ModelSources.of(files, new DownloadBar(System.err)).locate(options.model, options.saes);
  }
}
