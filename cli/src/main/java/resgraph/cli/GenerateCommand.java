package resgraph.cli;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import resgraph.model.SaeConfig;
import resgraph.model.SafeTensors.DType;
import resgraph.model.Site;
import resgraph.model.SyntheticModel;
import resgraph.model.SyntheticModel.Spec;

/** {@code resgraph generate}: a random GPT-2 and SAEs in the real formats, for tests and demos. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = "Write a random GPT-2 (Hugging Face layout) and SAEs (SAELens layout) into DIR/model and DIR/saes. "
        + "The weights are random: nothing they compute means anything.")
final class GenerateCommand implements Callable<Integer> {

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Folder to write into.")
  Path out;

  @Option(names = "--shape", defaultValue = "demo", paramLabel = "demo|tiny|gpt2-small",
      description = "Start from this shape; the options below override it (default: ${DEFAULT-VALUE}).")
  String shape;

  @Option(names = "--layers") Integer layers;
  @Option(names = "--d-model") Integer dModel;
  @Option(names = "--heads") Integer heads;
  @Option(names = "--positions") Integer positions;
  @Option(names = "--vocab") Integer vocab;
  @Option(names = "--d-sae") Integer dSae;
  @Option(names = "--l0", description = "Mean active latents per position.") Double l0;
  @Option(names = "--centered", negatable = true, description = "SAEs read the mean-free residual.") Boolean centered;
  @Option(names = "--apply-b-dec", negatable = true, description = "SAEs subtract b_dec from their input.") Boolean applyBDec;
  @Option(names = "--prepend-bos", negatable = true) Boolean prependBos;
  @Option(names = "--seed") Long seed;

  @Option(names = "--architecture", paramLabel = "standard|jumprelu|topk|gated",
      description = "The SAEs' architecture; topk keeps l0 latents (default: standard).")
  String architecture;

  @Option(names = "--normalization", paramLabel = "none|layer_norm|constant_norm_rescale",
      description = "What the SAEs do to their input before encoding (default: none).")
  String normalization;

  @Option(names = "--sites", split = ",", paramLabel = "pre,mid,post",
      description = "Which sites of every layer get an SAE: resid_pre, resid_mid, resid_post (default: pre).")
  List<String> sites;

  @Option(names = "--realistic", description = "GPT-2-small-like magnitudes: a BOS norm in the thousands, outlier dimensions.")
  boolean realistic;

  @Option(names = "--dtype", defaultValue = "F32", paramLabel = "F32|BF16") DType dtype;

  @Option(names = "--transformer-prefix", description = "Name model tensors transformer.h.0... as GPT2LMHeadModel saves them.")
  boolean transformerPrefix;

  /** The constant a word names ("layer_norm" is LAYER_NORM), or a one-line refusal listing the words. */
  private static <E extends Enum<E>> E choice(Class<E> type, String option, String word) {
    for (E e : type.getEnumConstants()) if (e.name().equalsIgnoreCase(word)) return e;
    throw new IllegalArgumentException(option + " must be one of " + Arrays.stream(type.getEnumConstants())
        .map(e -> e.name().toLowerCase(Locale.ROOT)).toList() + ", not " + word);
  }

  @Override
  public Integer call() throws Exception {
    Spec.Builder spec = Spec.named(shape).toBuilder();
    if (layers != null) spec.layers(layers);
    if (dModel != null) spec.dModel(dModel);
    if (heads != null) spec.heads(heads);
    if (positions != null) spec.positions(positions);
    if (vocab != null) spec.vocab(vocab);
    if (dSae != null) spec.dSae(dSae);
    if (l0 != null) spec.l0(l0);
    if (centered != null) spec.centered(centered);
    if (applyBDec != null) spec.applyBDecToInput(applyBDec);
    if (prependBos != null) spec.prependBos(prependBos);
    if (seed != null) spec.seed(seed);
    if (architecture != null) spec.architecture(choice(SaeConfig.Architecture.class, "--architecture", architecture));
    if (normalization != null) spec.normalization(choice(SaeConfig.Normalization.class, "--normalization", normalization));
    if (sites != null) {
      Set<Site.Kind> kinds = EnumSet.noneOf(Site.Kind.class);
      for (String k : sites) kinds.add(choice(Site.Kind.class, "--sites", k));
      spec.kinds(kinds);
    }
    spec.realistic(realistic);
    SyntheticModel.write(spec.build(), out, new SyntheticModel.Format(transformerPrefix, dtype));
    System.out.println("model: " + out.resolve("model").toAbsolutePath());
    System.out.println("saes:  " + out.resolve("saes").toAbsolutePath());
    return 0;
  }
}
