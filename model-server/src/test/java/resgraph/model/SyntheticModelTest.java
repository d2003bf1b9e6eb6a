package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.SyntheticModel.Format;
import resgraph.model.SyntheticModel.Spec;

/** The generator writes the real formats, deterministically, with SAEs that fire sparsely. */
class SyntheticModelTest {

  private static final Spec SMALL = Spec.builder().layers(3).dModel(48).heads(4).dSae(400).l0(20).centered(true).seed(7).build();

  @Test
  void theSameSeedWritesTheSameBytesAndAnotherSeedDoesNot(@TempDir Path dir) throws IOException {
    SyntheticModel.write(SMALL, dir.resolve("a"), Format.PLAIN);
    SyntheticModel.write(SMALL, dir.resolve("b"), Format.PLAIN);
    SyntheticModel.write(SMALL.toBuilder().seed(8).build(), dir.resolve("c"), Format.PLAIN);
    for (String f : new String[] {"model/model.safetensors", "saes/blocks.2.hook_resid_pre/sae_weights.safetensors"}) {
      assertArrayEquals(Files.readAllBytes(dir.resolve("a").resolve(f)), Files.readAllBytes(dir.resolve("b").resolve(f)), f);
      assertFalse(java.util.Arrays.equals(Files.readAllBytes(dir.resolve("a").resolve(f)),
          Files.readAllBytes(dir.resolve("c").resolve(f))), f);
    }
  }

  @Test
  void filesLoadAndLatentsFireAboutL0PerPosition(@TempDir Path dir) throws IOException {
    SyntheticModel.write(SMALL, dir, Format.PLAIN);
    try (SaeModel m = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu())) {
      assertEquals(3, m.saes().size());
      assertTrue(m.saes().iterator().next().centered, "cfg.json's center_writing_weights is read");
      Trace t = m.trace(m.tokenize("Synthetic models stand in for GPT-2 where its weights cannot be downloaded."));
      for (int l = 0; l < 3; l++) {
        double total = 0;
        for (int p = 1; p < t.length(); p++) total += t.acts(Site.pre(l))[p].latents().length;
        double l0 = total / (t.length() - 1);
        assertTrue(l0 > SMALL.l0() / 2 && l0 < SMALL.l0() * 2, "layer " + l + " fires " + l0 + " latents per position");
      }
    }
  }

  @Test
  void theWeightsAMemoryFigureIsComparedWithAreTheFilesTensorsAsFloat32(@TempDir Path dir) throws IOException {
    SyntheticModel.write(SMALL, dir, Format.PLAIN);
    long fileBytes = 0;
    try (var files = Files.walk(dir)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".safetensors")).toList()) {
        fileBytes += SafeTensors.open(f).entries().values().stream().mapToLong(SafeTensors.Entry::elements).sum() * 4;
      }
    }
    try (SaeModel m = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu())) {
      long held = m.weightBytes();
      assertTrue(held >= fileBytes && held <= fileBytes * 1.01, "holds " + held + " bytes for " + fileBytes + " in the files");
    }
  }

  @Test
  void theInMemoryBuildEqualsTheFiles(@TempDir Path dir) throws IOException {
    SyntheticModel.write(SMALL, dir, Format.PLAIN);
    try (SaeModel files = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu());
        SaeModel memory = SyntheticModel.build(SMALL, Device.cpu())) {
      int[] tokens = files.tokenize("one model, two ways to make it");
      Trace a = files.trace(tokens), b = memory.trace(tokens);
      for (int l = 0; l < 3; l++) {
        assertArrayEquals(a.stream(2 * l, tokens.length), b.stream(2 * l, tokens.length), 0.0);
        assertArrayEquals(a.candidates(Site.pre(l), 1, tokens.length - 1), b.candidates(Site.pre(l), 1, tokens.length - 1));
      }
    }
  }

  @Test
  void everyArchitectureAndSiteIsWrittenInTheRealFormatsAndFires(@TempDir Path dir) throws IOException {
    for (SaeConfig.Architecture a : SaeConfig.Architecture.values()) {
      Spec spec = SMALL.toBuilder().kinds(Set.of(Site.Kind.MID, Site.Kind.POST)).architecture(a)
          .normalization(a == SaeConfig.Architecture.TOPK ? SaeConfig.Normalization.LAYER_NORM : SaeConfig.Normalization.NONE).build();
      Path out = dir.resolve(a.word());
      SyntheticModel.write(spec, out, Format.PLAIN);
      try (SaeModel m = SaeModel.load(out.resolve("model"), out.resolve("saes"), null, null, Device.cpu())) {
        assertEquals(spec.sites(), m.saes().stream().map(Sae::site).toList());
        Trace t = m.trace(m.tokenize("Synthetic models stand in for GPT-2 where its weights cannot be downloaded."));
        for (Site site : spec.sites()) {
          double total = 0;
          for (int p = 1; p < t.length(); p++) total += t.acts(site)[p].latents().length;
          double l0 = total / (t.length() - 1);
          assertTrue(l0 > SMALL.l0() / 3 && l0 <= SMALL.l0() * 3, a + " at " + site + " fires " + l0 + " latents per position");
        }
      }
    }
  }

  @Test
  void aRealisticModelHasGpt2SmallsMagnitudes() {
    Spec spec = SMALL.toBuilder().layers(4).dModel(128).heads(4).realistic(true).build();
    try (SaeModel m = SyntheticModel.build(spec, Device.cpu())) {
      int[] tokens = m.tokenize("The first position of GPT-2 carries a residual norm in the thousands.");
      Trace t = m.trace(tokens);
      int d = spec.n_embd();
      for (int r = 4; r <= 2 * spec.n_layer(); r++) { // from the output of block 1 on
        double[] x = t.stream(r, tokens.length);
        assertTrue(norm(x, 0, d) > 1000, "stream " + r + ": the BOS norm is " + norm(x, 0, d));
        for (int p = 1; p < tokens.length; p++) {
          double n = norm(x, p, d);
          assertTrue(n > 3 && n < 300, "stream " + r + " position " + p + ": norm " + n);
        }
      }
      // a few dimensions carry most of every position's magnitude, as GPT-2's outliers do
      double[] last = t.stream(2 * spec.n_layer(), tokens.length);
      double[] mean = new double[d];
      for (int p = 1; p < tokens.length; p++) for (int k = 0; k < d; k++) mean[k] += Math.abs(last[p * d + k]) / (tokens.length - 1);
      double[] sorted = mean.clone();
      Arrays.sort(sorted);
      assertTrue(sorted[d - 1] > 10 * sorted[d / 2], "the largest dimension is " + sorted[d - 1] + ", the median " + sorted[d / 2]);
    }
  }

  private static double norm(double[] x, int position, int d) {
    double s = 0;
    for (int k = 0; k < d; k++) s += x[position * d + k] * x[position * d + k];
    return Math.sqrt(s);
  }
}
