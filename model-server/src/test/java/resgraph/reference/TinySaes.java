package resgraph.reference;

import static resgraph.reference.TinyModels.D;
import static resgraph.reference.TinyModels.JSON;
import static resgraph.reference.TinyModels.f32;
import static resgraph.reference.TinyModels.flatten;
import static resgraph.reference.TinyModels.writeSafetensors;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import resgraph.reference.TinyModels.Entry;

/** Handmade SAE folders for the tiny models: an identity-encoder SAE and a linear readout. */
final class TinySaes {

  /** d_sae of the identity-encoder SAEs: latent i reads coordinate i. */
  static final int S = 4;

  /** Decoder rows of the identity-encoder SAEs. */
  static final double[][] W_DEC = {
    {0.5, -0.25, 0.125, 0.75},
    {-0.5, 1.0, 0.25, 0.0},
    {0.25, 0.25, -0.75, 0.5},
    {1.0, 0.0, 0.5, -0.25},
  };
  /** The readout SAE's encoder: [d, 3]. */
  static final double[][] W_ENC_READOUT = {
    {0.5, -0.25, 1.0},
    {0.25, 0.75, -0.5},
    {-1.0, 0.5, 0.25},
    {0.125, 0.0, 0.5},
  };

  /** A legacy flat cfg.json with SAELens's defaults spelled out. */
  static ObjectNode legacy(String hook, String architecture) {
    ObjectNode c = JSON.createObjectNode();
    c.put("architecture", architecture);
    c.put("d_in", D);
    c.put("d_sae", S);
    c.put("hook_name", hook);
    c.put("normalize_activations", "none");
    c.put("apply_b_dec_to_input", true);
    c.put("prepend_bos", true);
    return c;
  }

  /** W_enc = I (latent i reads coordinate i), b_enc = b_dec = 0, W_dec = {@link #W_DEC}. */
  static Map<String, Entry> identityEncoder() {
    double[][] eye = new double[D][S];
    for (int k = 0; k < D; k++) {
      eye[k][k] = 1.0;
    }
    Map<String, Entry> t = new LinkedHashMap<>();
    t.put("W_enc", new Entry("F32", new int[] {D, S}, f32(flatten(eye))));
    t.put("b_enc", vector(0, 0, 0, 0));
    t.put("W_dec", new Entry("F32", new int[] {S, D}, f32(flatten(W_DEC))));
    t.put("b_dec", vector(0, 0, 0, 0));
    return t;
  }

  /** An always-on (b_enc = 100) standard SAE whose latents read W_ENC_READOUT: e is linear. */
  static void writeReadout(Path dir, String hook) throws IOException {
    ObjectNode cfg = legacy(hook, "standard");
    cfg.put("d_sae", 3);
    Map<String, Entry> t = new LinkedHashMap<>();
    t.put("W_enc", new Entry("F32", new int[] {D, 3}, f32(flatten(W_ENC_READOUT))));
    t.put("b_enc", vector(100, 100, 100));
    t.put("W_dec", new Entry("F32", new int[] {3, D}, new byte[3 * D * 4]));
    t.put("b_dec", vector(0.5, -0.25, 0, 1));
    writeSae(dir, cfg, t);
  }

  static Entry vector(double... v) {
    return new Entry("F32", new int[] {v.length}, f32(v));
  }

  static void writeSae(Path dir, ObjectNode cfg, Map<String, Entry> tensors)
      throws IOException {
    Files.createDirectories(dir);
    JSON.writeValue(dir.resolve("cfg.json").toFile(), cfg);
    writeSafetensors(dir.resolve("sae_weights.safetensors"), tensors);
  }

  private TinySaes() {}
}
