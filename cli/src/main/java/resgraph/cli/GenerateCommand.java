package resgraph.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import resgraph.model.SafeTensors.DType;
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

  @Option(names = "--dtype", defaultValue = "F32", paramLabel = "F32|BF16") DType dtype;

  @Option(names = "--transformer-prefix", description = "Name model tensors transformer.h.0... as GPT2LMHeadModel saves them.")
  boolean transformerPrefix;

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
    SyntheticModel.write(spec.build(), out, new SyntheticModel.Format(transformerPrefix, dtype));
    System.out.println("model: " + out.resolve("model").toAbsolutePath());
    System.out.println("saes:  " + out.resolve("saes").toAbsolutePath());
    return 0;
  }
}
