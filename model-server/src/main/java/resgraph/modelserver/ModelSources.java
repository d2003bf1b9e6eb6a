package resgraph.modelserver;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.model.Gpt2Config;
import resgraph.model.ModelException;
import ai.djl.Device;
import resgraph.model.Sae;
import resgraph.model.SaeModel;
import resgraph.model.SaeConfig;
import resgraph.model.SyntheticModel;

/**
 * Turns the names in a request into a loaded model: "demo" (generated once into the cache), a
 * local folder, a known SAELens release, a Hugging Face hub repository (downloaded once), or
 * "synthetic:SHAPE[:SEED]" (a random model built in memory, for benchmarks at real scale).
 */
public final class ModelSources {

  private static final Logger LOG = LoggerFactory.getLogger(ModelSources.class);

  public static final String DEMO = "demo";

  /** SAELens releases that are not self-describing: where they live and how they were trained. */
  private record Release(String repo, boolean centered) {}

  private static final Map<String, Release> RELEASES = Map.of(
      // Trained on TransformerLens's GPT-2 with centred writing weights (SAELens's release table).
      "gpt2-small-res-jb", new Release("jbloom/GPT2-Small-SAEs-Reformatted", true));

  private static final Pattern HUB_REPO = Pattern.compile("[A-Za-z0-9][\\w.-]*/[\\w.-]+");

  public static final String SYNTHETIC = "synthetic:";

  /** Where a pair's files are, and what its release implies about centering. */
  public record Located(Path model, Path saes, boolean releaseCentered) {}

  /** A loaded pair and where it came from, in words. */
  public record Opened(SaeModel model, String modelPath, String saesPath) {}

  private final Path cacheDir;
  private final HubClient hub;

  public ModelSources(String cacheDir, String hubUrl, String hubToken) {
    this.cacheDir = Path.of(cacheDir);
    this.hub = new HubClient(URI.create(hubUrl), this.cacheDir, hubToken.isEmpty() ? null : hubToken, HubClient.logging());
  }

  /** Loads the pair the names denote onto the device; {@code centering} null means as the files say. */
  public Opened open(String model, String saes, Boolean centering, Device device) {
    if (model.startsWith(SYNTHETIC) || saes.startsWith(SYNTHETIC)) {
      if (!model.equals(saes)) {
        throw ModelException.badRequest("a synthetic model comes with its own SAEs: name both " + model);
      }
      return new Opened(SyntheticModel.build(synthetic(model), device), "(in memory)", "(in memory)");
    }
    Located files = locate(model, saes);
    SaeModel m = SaeModel.load(files.model(), files.saes(), centering, files.releaseCentered(), device);
    return new Opened(m, files.model().toString(), files.saes().toString());
  }

  /** "synthetic:demo", "synthetic:tiny", "synthetic:gpt2-small", "synthetic:gpt2-small:7" (the seed). */
  static SyntheticModel.Spec synthetic(String name) {
    String[] parts = name.substring(SYNTHETIC.length()).split(":", -1);
    SyntheticModel.Spec spec;
    try {
      spec = SyntheticModel.Spec.named(parts[0]);
    } catch (IllegalArgumentException e) {
      throw new ModelException(ModelException.Kind.NOT_FOUND, "no synthetic shape " + parts[0]
          + ": use synthetic:demo, synthetic:tiny or synthetic:gpt2-small, optionally with :SEED");
    }
    if (parts.length == 1) return spec;
    try {
      return spec.toBuilder().seed(Long.parseLong(parts[1])).build();
    } catch (NumberFormatException e) {
      throw ModelException.badRequest("the seed in " + name + " is not a whole number");
    }
  }

  Located locate(String model, String saes) {
    if (model.isBlank()) throw ModelException.badRequest("no model named: give a folder, a hub repository id or \"demo\"");
    if (saes.isBlank()) throw ModelException.badRequest("no SAEs named: give a folder, a release, a hub repository id or \"demo\"");
    Path modelDir = model.equals(DEMO) ? demo().resolve("model") : modelFolder(model);
    Release release = RELEASES.get(saes);
    Path saesDir = saes.equals(DEMO) ? demo().resolve("saes")
        : release != null ? hubSaes(release.repo(), modelDir, true)
        : saesFolder(saes, modelDir);
    return new Located(modelDir, saesDir, release != null && release.centered());
  }

  private Path modelFolder(String name) {
    Optional<Path> local = localFolder(name);
    if (local.isPresent()) return local.get();
    if (!HUB_REPO.matcher(name).matches()) throw notFound("model", name);
    hub.fetch(name, "config.json");
    return hub.fetch(name, "model.safetensors").getParent();
  }

  private Path saesFolder(String name, Path modelDir) {
    Optional<Path> local = localFolder(name);
    if (local.isPresent()) return local.get();
    if (!HUB_REPO.matcher(name).matches()) throw notFound("SAEs", name);
    return hubSaes(name, modelDir, false);
  }

  /**
   * Downloads the SAE of every layer of the model that the repository has. A known release must
   * have all of them; an unknown repository is probed layer by layer.
   */
  private Path hubSaes(String repo, Path modelDir, boolean everyLayer) {
    int layers = Gpt2Config.read(modelDir.resolve("config.json")).n_layer();
    Path root = null;
    for (int l = 0; l < layers; l++) {
      String folder = SaeConfig.hookName(l);
      Optional<Path> cfg = everyLayer ? Optional.of(hub.fetch(repo, folder + "/cfg.json"))
          : hub.fetchIfExists(repo, folder + "/cfg.json");
      if (cfg.isEmpty()) continue;
      hub.fetch(repo, folder + "/sae_weights.safetensors");
      root = cfg.get().getParent().getParent();
    }
    if (root == null) {
      throw new ModelException(ModelException.Kind.NOT_FOUND, "hub repository " + repo
          + " has no SAE folders blocks.{layer}.hook_resid_pre for layers 0.." + (layers - 1));
    }
    return root;
  }

  private static Optional<Path> localFolder(String name) {
    String expanded = name.startsWith("~/") ? System.getProperty("user.home") + name.substring(1) : name;
    try {
      Path p = Path.of(expanded).toAbsolutePath().normalize();
      return Files.isDirectory(p) ? Optional.of(p) : Optional.empty();
    } catch (java.nio.file.InvalidPathException e) {
      return Optional.empty();
    }
  }

  private static ModelException notFound(String what, String name) {
    return new ModelException(ModelException.Kind.NOT_FOUND, "no " + what + " folder at " + name
        + ", and it is not a hub repository id (owner/name)" + (what.equals("SAEs") ? " or a known release "
        + RELEASES.keySet() : ""));
  }

  /** The demo model, generated into the cache on first use; deterministic, so every machine gets the same one. */
  private synchronized Path demo() {
    Path dir = cacheDir.resolve("demo-" + SyntheticModel.Spec.demo().seed());
    if (Files.isDirectory(Sae.folder(dir.resolve("saes"), 0))) return dir;
    LOG.info("generating the demo model into {} (once)", dir);
    try {
      Files.createDirectories(cacheDir);
      Path tmp = Files.createTempDirectory(cacheDir, "demo-");
      SyntheticModel.write(SyntheticModel.Spec.demo(), tmp, SyntheticModel.Format.PLAIN);
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException | java.nio.file.FileAlreadyExistsException e) {
        deleteTree(tmp); // another process made it first
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the demo model into " + cacheDir, e);
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
    }
  }
}
