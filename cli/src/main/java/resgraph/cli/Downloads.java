package resgraph.cli;

import java.net.URI;
import java.nio.file.Path;
import java.util.Map;
import resgraph.modelserver.ModelOptions;
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
    Map<String, Object> p = options.properties();
    String hub = (String) p.getOrDefault("resgraph.hub.url", "https://huggingface.co");
    String token = (String) p.getOrDefault("resgraph.hub.token", "");
    new ModelSources(Path.of((String) p.get("resgraph.cache-dir")), ModelSources.huggingFaceCache(), URI.create(hub), token,
        new DownloadBar(System.err)).locate(options.model, options.saes);
  }
}
