package resgraph.cli;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Option;
import resgraph.cluster.LocalCluster;
import resgraph.modelserver.ModelServerConfig;
import resgraph.v1.ModelRef;

/** The command-line options that name a (model, SAEs) pair and where downloads go. */
final class ModelOptions {

  @Option(names = "--model", paramLabel = "M", defaultValue = "demo",
      description = "GPT-2: a folder (config.json, model.safetensors), a hub repository id, or demo (default: ${DEFAULT-VALUE}).")
  public String model;

  @Option(names = "--saes", paramLabel = "S", defaultValue = "demo",
      description = "SAEs: a folder of blocks.{l}.hook_resid_pre folders, gpt2-small-res-jb, a hub repository id, or demo (default: ${DEFAULT-VALUE}).")
  public String saes;

  @Option(names = "--centering", paramLabel = "auto|on|off", defaultValue = "auto",
      description = "Whether the SAEs read the mean-free residual (TransformerLens center_writing_weights); auto reads cfg.json and the release (default: ${DEFAULT-VALUE}).")
  public String centering;

  @Option(names = "--cache-dir", paramLabel = "DIR",
      description = "Where downloads and the demo model go (default: $RESGRAPH_CACHE, else ~/.cache/resgraph).")
  public Path cacheDir;

  @Option(names = "--hub-url", paramLabel = "URL",
      description = "The Hugging Face hub to download from (default: $HF_ENDPOINT, else https://huggingface.co).")
  public String hubUrl;

  public ModelRef ref() {
    return ModelRef.newBuilder().setModel(model).setSaes(saes).setCentering(ModelServerConfig.centering("--centering", centering)).build();
  }

  /**
   * Micronaut properties for a model server that uses these options: where downloads go and the
   * hub, when given ({@link ModelFilesConfig} says what they are otherwise).
   */
  public Map<String, Object> properties() {
    Map<String, Object> p = new LinkedHashMap<>();
    if (cacheDir != null) p.put("resgraph.cache-dir", cacheDir.toAbsolutePath().toString());
    if (hubUrl != null) p.put("resgraph.hub.url", hubUrl);
    return p;
  }

  /** A local cluster whose model server loads this pair at start, with these options. */
  LocalCluster.Options cluster(int workers) {
    return new LocalCluster.Options(workers, model, saes, centering, cacheDir == null ? null : cacheDir.toAbsolutePath().toString(),
        hubUrl);
  }
}
