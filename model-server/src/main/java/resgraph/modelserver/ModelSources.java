package resgraph.modelserver;

import ai.djl.Device;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.model.SaeConfig;
import resgraph.model.SaeConfig.Setting;
import resgraph.model.SaeModel;
import resgraph.model.SyntheticModel;
import resgraph.modelserver.SaeReleases.Release;
import resgraph.platform.Folders;
import resgraph.platform.ResgraphException;

/**
 * Turns the names in a request into a loaded model: "demo" (generated once into the cache), a
 * local folder, a known SAELens release, a Hugging Face hub repository ("gpt2", TransformerLens's
 * name, is openai-community/gpt2), or "synthetic:SHAPE[:SEED]" (a random model built in memory, for
 * benchmarks at real scale). Files already in the Hugging Face cache are used as they are; others
 * are downloaded once into resgraph's cache.
 *
 * <p>SAEs are recognised as a release (which decides their centring and Neuronpedia ids) by name;
 * by the origin resgraph records in a folder it downloads; by a Hugging Face cache folder's
 * repository; by the folder's name; or by the fields of their cfg.json.
 */
public final class ModelSources {

  private static final Logger LOG = LoggerFactory.getLogger(ModelSources.class);

  public static final String DEMO = "demo";
  public static final String SYNTHETIC = "synthetic:";
  /** Written into a folder of SAEs downloaded from the hub: the repository it came from. */
  static final String ORIGIN = "resgraph-origin.json";

  private static final Pattern HUB_REPO = Pattern.compile("[A-Za-z0-9][\\w.-]*/[\\w.-]+");
  /** A snapshot in the Hugging Face cache: .../models--{org}--{name}/snapshots/{revision}. */
  private static final Pattern HF_SNAPSHOT = Pattern.compile(".*/models--([^/]+?)--([^/]+)/snapshots/[^/]+/?");
  /** TransformerLens's names for GPT-2 small. */
  private static final Map<String, String> MODEL_ALIASES = Map.of("gpt2", SaeReleases.GPT2, "gpt2-small", SaeReleases.GPT2);
  private static final ObjectMapper JSON = new ObjectMapper();

  /** A release the SAEs were recognised as, and how. */
  public record Recognised(Release release, String how) {
    public String describe() {
      return release.name() + " (" + how + ")";
    }
  }

  /** Where a pair's files are, and the release its SAEs are, if any. */
  public record Located(Path model, Path saes, Optional<Recognised> release) {}

  /** A loaded pair and where it came from, in words. */
  public record Opened(SaeModel model, String modelPath, String saesPath, Optional<Recognised> release) {}

  private final Path cacheDir;
  private final Path huggingFaceCache;
  private final HubClient hub;

  /** {@code progress} shows downloads: a terminal's progress bar, or the log. */
  public ModelSources(Path cacheDir, Path huggingFaceCache, URI hubUrl, String hubToken, HubClient.Progress progress) {
    this.cacheDir = cacheDir;
    this.huggingFaceCache = huggingFaceCache;
    this.hub = new HubClient(hubUrl, cacheDir, hubToken == null || hubToken.isEmpty() ? null : hubToken, progress);
  }

  /** From the configuration, showing downloads with {@code progress}. */
  public static ModelSources of(ModelFilesConfig files, HubClient.Progress progress) {
    return new ModelSources(Path.of(files.cacheDir()), Path.of(files.huggingFaceCache()), URI.create(files.hubUrl()),
        files.hubToken(), progress);
  }

  /** Loads the pair the names denote onto the device; {@code centering} null means as the release and files say. */
  public Opened open(String model, String saes, Boolean centering, Device device) {
    if (model.startsWith(SYNTHETIC) || saes.startsWith(SYNTHETIC)) {
      if (!model.equals(saes)) {
        throw ResgraphException.badRequest("a synthetic model comes with its own SAEs: name both " + model);
      }
      return new Opened(SyntheticModel.build(synthetic(model), device), "(in memory)", "(in memory)", Optional.empty());
    }
    Located files = locate(model, saes);
    Setting release = files.release().filter(r -> r.release().centered() != null)
        .map(r -> new Setting("centering", r.release().centered() ? "on" : "off", "release " + r.describe()))
        .orElse(null);
    SaeModel m = SaeModel.load(files.model(), files.saes(), centering, release, device);
    return new Opened(m, files.model().toString(), files.saes().toString(), files.release());
  }

  /** "synthetic:demo", "synthetic:tiny", "synthetic:gpt2-small", "synthetic:gpt2-small:7" (the seed). */
  static SyntheticModel.Spec synthetic(String name) {
    String[] parts = name.substring(SYNTHETIC.length()).split(":", -1);
    SyntheticModel.Spec spec;
    try {
      spec = SyntheticModel.Spec.named(parts[0]);
    } catch (IllegalArgumentException e) {
      throw new ResgraphException(ResgraphException.Kind.NOT_FOUND, "no synthetic shape " + parts[0]
          + ": use synthetic:demo, synthetic:tiny or synthetic:gpt2-small, optionally with :SEED");
    }
    if (parts.length == 1) return spec;
    try {
      return spec.toBuilder().seed(Long.parseLong(parts[1])).build();
    } catch (NumberFormatException e) {
      throw ResgraphException.badRequest("the seed in " + name + " is not a whole number");
    }
  }

  /** Finds (downloading what is missing) the files of a pair, and the release its SAEs are. */
  public Located locate(String model, String saes) {
    if (model.isBlank()) throw ResgraphException.badRequest("no model named: give a folder, a hub repository id, gpt2 or \"demo\"");
    if (saes.isBlank()) throw ResgraphException.badRequest("no SAEs named: give a folder, a release, a hub repository id or \"demo\"");
    Path modelDir = model.equals(DEMO) ? demo().resolve("model") : modelFolder(model);
    if (saes.equals(DEMO)) return new Located(modelDir, demo().resolve("saes"), Optional.empty());
    Optional<Release> named = SaeReleases.named(saes);
    if (named.isPresent()) {
      return new Located(modelDir, releaseFolder(named.get()), Optional.of(new Recognised(named.get(), "by name")));
    }
    Optional<Path> local = localFolder(saes);
    if (local.isPresent()) return new Located(modelDir, local.get(), recognise(local.get()));
    if (!HUB_REPO.matcher(saes).matches()) throw notFound("SAEs", saes);
    Optional<Release> ofRepo = SaeReleases.ofRepo(saes);
    if (ofRepo.isPresent()) {
      return new Located(modelDir, releaseFolder(ofRepo.get()), Optional.of(new Recognised(ofRepo.get(), "by its repository")));
    }
    return new Located(modelDir, hubSaes(saes), Optional.empty());
  }

  private Path modelFolder(String name) {
    Optional<Path> local = localFolder(name);
    if (local.isPresent()) return local.get();
    String repo = MODEL_ALIASES.getOrDefault(name, name);
    if (!HUB_REPO.matcher(repo).matches()) throw notFound("model", name);
    List<String> files = List.of("config.json", "model.safetensors");
    Optional<Path> cached = huggingFaceSnapshot(repo, files);
    if (cached.isPresent()) return cached.get();
    for (String f : files) hub.fetch(repo, f);
    return hub.fetch(repo, files.get(0)).getParent();
  }

  /** A release's folder: a complete Hugging Face cache snapshot of it, or its members downloaded once. */
  private Path releaseFolder(Release r) {
    List<String> files = new ArrayList<>();
    for (SaeReleases.Member m : r.members()) {
      files.add(m.folder() + "/cfg.json");
      files.add(m.folder() + "/sae_weights.safetensors");
    }
    Optional<Path> cached = huggingFaceSnapshot(r.repo(), files);
    if (cached.isPresent()) return cached.get();
    for (String f : files) hub.fetch(r.repo(), f);
    return recordOrigin(r.repo());
  }

  /** An SAE repository that is no known release: every folder of it holding cfg.json and sae_weights.safetensors. */
  private Path hubSaes(String repo) {
    Path done = hub.folder(repo).resolve(ORIGIN); // written once every SAE of the repository is in the cache
    if (Files.isRegularFile(done)) return done.getParent();
    TreeSet<String> files = new TreeSet<>(hub.files(repo));
    List<String> folders = new ArrayList<>();
    for (String f : files) {
      if (!f.endsWith("/cfg.json")) continue;
      String folder = f.substring(0, f.length() - "/cfg.json".length());
      if (files.contains(folder + "/sae_weights.safetensors") && !folder.contains("/")) folders.add(folder);
    }
    if (folders.isEmpty()) {
      throw new ResgraphException(ResgraphException.Kind.NOT_FOUND, "hub repository " + repo
          + " has no SAE folders (a folder with cfg.json and sae_weights.safetensors)");
    }
    for (String folder : folders) {
      hub.fetch(repo, folder + "/cfg.json");
      hub.fetch(repo, folder + "/sae_weights.safetensors");
    }
    return recordOrigin(repo);
  }

  /** Writes where a downloaded folder came from into it, so a later load by path still knows its release. */
  private Path recordOrigin(String repo) {
    Path dir = hub.folder(repo);
    Path origin = dir.resolve(ORIGIN);
    if (!Files.isRegularFile(origin)) {
      try {
        Files.writeString(origin, JSON.writeValueAsString(Map.of("repo", repo)));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot write " + origin, e);
      }
    }
    return dir;
  }

  /**
   * The release a local folder of SAEs holds: by the origin recorded in it, by a Hugging Face
   * cache path, by its name, or by its cfg.json files.
   */
  static Optional<Recognised> recognise(Path saes) {
    Path origin = saes.resolve(ORIGIN);
    if (Files.isRegularFile(origin)) {
      try {
        String repo = JSON.readTree(origin.toFile()).path("repo").asText();
        Optional<Release> r = SaeReleases.ofRepo(repo);
        if (r.isPresent()) return Optional.of(new Recognised(r.get(), "downloaded from " + repo));
      } catch (IOException e) {
        LOG.warn("cannot read {}: {}", origin, e.getMessage());
      }
    }
    Matcher m = HF_SNAPSHOT.matcher(saes.toString());
    if (m.matches()) {
      Optional<Release> r = SaeReleases.ofRepo(m.group(1) + "/" + m.group(2));
      if (r.isPresent()) return Optional.of(new Recognised(r.get(), "a Hugging Face cache of " + r.get().repo()));
    }
    Optional<Release> byName = SaeReleases.ofFolderName(saes.getFileName().toString());
    if (byName.isPresent()) return Optional.of(new Recognised(byName.get(), "by the folder's name"));
    return SaeReleases.fingerprint(SaeModel.configs(saes)).map(r -> new Recognised(r, "by its cfg.json files"));
  }

  /** The newest snapshot of a repository in the Hugging Face cache that holds every one of {@code files}. */
  private Optional<Path> huggingFaceSnapshot(String repo, List<String> files) {
    Path dir = huggingFaceCache.resolve("models--" + repo.replace("/", "--"));
    List<Path> snapshots = new ArrayList<>();
    try {
      Path ref = dir.resolve("refs").resolve("main");
      if (Files.isRegularFile(ref)) snapshots.add(dir.resolve("snapshots").resolve(Files.readString(ref).strip()));
      if (Files.isDirectory(dir.resolve("snapshots"))) {
        try (Stream<Path> all = Files.list(dir.resolve("snapshots"))) {
          all.sorted(Comparator.comparing(ModelSources::modified).reversed()).forEach(snapshots::add);
        }
      }
    } catch (IOException e) {
      LOG.warn("cannot read the Hugging Face cache at {}: {}", dir, e.getMessage());
      return Optional.empty();
    }
    for (Path snapshot : snapshots) {
      if (files.stream().allMatch(f -> Files.isRegularFile(snapshot.resolve(f)))) {
        LOG.info("using {} from the Hugging Face cache at {}", repo, snapshot);
        return Optional.of(snapshot);
      }
    }
    return Optional.empty();
  }

  private static long modified(Path p) {
    try {
      return Files.getLastModifiedTime(p).toMillis();
    } catch (IOException e) {
      return 0;
    }
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

  private static ResgraphException notFound(String what, String name) {
    String known = SaeReleases.ALL.stream().map(Release::name).toList().toString();
    return new ResgraphException(ResgraphException.Kind.NOT_FOUND, "no " + what + " folder at " + name
        + ", and it is not a hub repository id (owner/name)" + (what.equals("SAEs") ? " or a known release " + known
        : " or gpt2"));
  }

  /** The demo model, generated into the cache on first use; deterministic, so every machine gets the same one. */
  private synchronized Path demo() {
    Path dir = cacheDir.resolve("demo-" + SyntheticModel.Spec.demo().seed());
    if (Files.isDirectory(dir.resolve("saes"))) return dir;
    LOG.info("generating the demo model into {} (once)", dir);
    try {
      Files.createDirectories(cacheDir);
      Path tmp = Files.createTempDirectory(cacheDir, "demo-");
      SyntheticModel.write(SyntheticModel.Spec.demo(), tmp, SyntheticModel.Format.PLAIN);
      try {
        Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException | java.nio.file.FileAlreadyExistsException e) {
        Folders.delete(tmp); // another process made it first
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the demo model into " + cacheDir, e);
    }
  }
}
