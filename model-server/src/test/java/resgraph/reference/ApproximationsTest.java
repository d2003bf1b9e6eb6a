package resgraph.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static resgraph.reference.TinyModels.T;
import static resgraph.reference.TinyModels.TOKENS;
import static resgraph.reference.TinyModels.identityModel;

import ai.djl.Device;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.Attribution;
import resgraph.model.ExactAblation;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.Trace;

/** METHOD.md "Approximations" where the exact answer is known without a reference to compare to. */
class ApproximationsTest {

  @TempDir
  Path tmp;

  @Test
  void attributionIsTheExactEffectThroughALinearBlockWhereNoLatentCrossesZero() throws IOException {
    // blocks of zeros: the residual at layer 1 is the one at layer 0, and a standard SAE without
    // normalisation reads it linearly, so only a latent crossing zero separates the two methods
    identityModel(2).write(tmp.resolve("model"));
    ReferenceSaes.write(tmp.resolve("model"), tmp.resolve("saes"), ReferenceSaes.Spec.builder()
        .hooks("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre").dSae(24).l0(6).seed(7)
        .prependBos(false).centering(ReferenceSaes.Centering.UNCENTERED).build());
    try (SaeModel model = SaeModel.load(tmp.resolve("model"), tmp.resolve("saes"), null, null, Device.cpu())) {
      Trace trace = model.trace(TOKENS);
      Site up = Site.pre(0), down = Site.pre(1);
      int[] candidates = trace.candidates(up, model.firstAblatable(), T);
      List<ExactAblation.Effects> exact = ExactAblation.run(model, trace, up, down, candidates, T, 64);
      List<ExactAblation.Effects> approx = Attribution.run(model, trace, up, down, candidates, T, Attribution.Method.ATTRIBUTION, 1);
      Trace.SparseRow clean = trace.acts(down)[T];
      int staying = 0, crossing = 0;
      for (int i = 0; i < candidates.length; i++) {
        for (int j = 0; j < model.sae(down).d_sae(); j++) {
          float e = weight(exact.get(i), j), a = weight(approx.get(i), j), f = clean.get(j);
          if (f > 0 && f + e > 0) {
            assertEquals(e, a, 1e-5 * Math.max(1, Math.abs(e)), candidates[i] + " -> " + j + " stays on");
            staying++;
          } else if (f == 0) {
            assertEquals(0, a, 0, candidates[i] + " -> " + j + " is off at the clean residual: no gradient");
            if (e != 0) crossing++;
          }
        }
      }
      assertTrue(staying > 0, "some edges into latents that stay on");
      assertTrue(crossing > 0, "some latents switched on, which attribution cannot see");
    }
  }

  private static float weight(ExactAblation.Effects e, int j) {
    for (int k = 0; k < e.downstream().length; k++) if (e.downstream()[k] == j) return e.delta()[k];
    return 0;
  }
}
