package resgraph.modelserver;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.context.annotation.Property;
import io.micronaut.core.annotation.Creator;
import io.micronaut.core.annotation.Nullable;
import java.nio.file.Path;

/**
 * Where the model server finds models it has no folder for, and keeps them. Each has a default
 * from the environment a user of the Hugging Face tools already has.
 *
 * @param cacheDir {@code resgraph.cache-dir}: downloads and the demo model; by default
 *     $RESGRAPH_CACHE, else $XDG_CACHE_HOME/resgraph, else ~/.cache/resgraph
 * @param hubUrl {@code resgraph.hub.url}: the Hugging Face hub or a mirror; by default $HF_ENDPOINT,
 *     else https://huggingface.co
 * @param hubToken {@code resgraph.hub.token}: sent with hub downloads when set; by default $HF_TOKEN
 * @param huggingFaceCache the Hugging Face tools' own cache, whose files are used without
 *     downloading: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
 */
@ConfigurationProperties("resgraph")
public record ModelFilesConfig(String cacheDir, String hubUrl, @Nullable String hubToken, String huggingFaceCache) {

  /** Binds the properties, falling back on the environment's (RESGRAPH_CACHE is resgraph.cache, HF_ENDPOINT hf.endpoint, ...). */
  @Creator
  public ModelFilesConfig(
      @Nullable @Property(name = "resgraph.cache-dir") String cacheDir,
      @Nullable @Property(name = "resgraph.cache") String resgraphCache,
      @Nullable @Property(name = "xdg.cache.home") String xdgCacheHome,
      @Nullable @Property(name = "resgraph.hub.url") String hubUrl,
      @Nullable @Property(name = "hf.endpoint") String hfEndpoint,
      @Nullable @Property(name = "resgraph.hub.token") String hubToken,
      @Nullable @Property(name = "hf.token") String hfToken,
      @Nullable @Property(name = "hf.hub.cache") String hfHubCache,
      @Nullable @Property(name = "hf.home") String hfHome) {
    this(firstSet(cacheDir, resgraphCache, xdgCacheHome == null ? null : Path.of(xdgCacheHome, "resgraph").toString(),
            Path.of(System.getProperty("user.home"), ".cache", "resgraph").toString()),
        firstSet(hubUrl, hfEndpoint, "https://huggingface.co"),
        firstSet(hubToken, hfToken, null),
        firstSet(hfHubCache, hfHome == null ? null : Path.of(hfHome, "hub").toString(),
            Path.of(System.getProperty("user.home"), ".cache", "huggingface", "hub").toString()));
  }

  /** The configuration a process without Micronaut gets: these values where given, else the environment's. */
  public static ModelFilesConfig fromEnvironment(@Nullable String cacheDir, @Nullable String hubUrl) {
    return new ModelFilesConfig(cacheDir, System.getenv("RESGRAPH_CACHE"), System.getenv("XDG_CACHE_HOME"), hubUrl,
        System.getenv("HF_ENDPOINT"), null, System.getenv("HF_TOKEN"), System.getenv("HF_HUB_CACHE"), System.getenv("HF_HOME"));
  }

  private static String firstSet(String... values) {
    for (String v : values) if (v != null && !v.isBlank()) return v;
    return null;
  }
}
