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
    Spec base = Spec.named(shape);
    Spec spec = new Spec(
        or(layers, base.n_layer()), or(dModel, base.n_embd()), or(heads, base.n_head()), or(positions, base.n_positions()),
        or(vocab, base.vocab_size()), or(dSae, base.d_sae()), or(l0, base.l0()), or(centered, base.centered()),
        or(applyBDec, base.applyBDecToInput()), or(prependBos, base.prependBos()), or(seed, base.seed()));
    SyntheticModel.write(spec, out, new SyntheticModel.Format(transformerPrefix, dtype));
    System.out.println("model: " + out.resolve("model").toAbsolutePath());
    System.out.println("saes:  " + out.resolve("saes").toAbsolutePath());
    return 0;
  }

  private static <T> T or(T value, T fallback) {
    return value != null ? value : fallback;
  }
}
