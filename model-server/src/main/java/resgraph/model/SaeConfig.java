package resgraph.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * What an SAELens {@code cfg.json} says about one SAE. Fields missing from older releases take
 * SAELens's defaults (apply b_dec to the input, prepend BOS, no normalization, standard ReLU).
 *
 * @param centerWritingWeights what {@code model_from_pretrained_kwargs.center_writing_weights}
 *     says, or null when the file does not say
 */
public record SaeConfig(
    String hookName, int layer, int d_in, int d_sae, boolean applyBDecToInput, boolean prependBos,
    Boolean centerWritingWeights) {

  public static String hookName(int layer) {
    return "blocks." + layer + ".hook_resid_pre";
  }

  /** Reads the cfg.json of the SAE that should sit at {@code layer}, refusing what METHOD.md cannot run. */
  public static SaeConfig read(Path file, int layer) {
    JsonNode c;
    try {
      c = new ObjectMapper().readTree(Files.readString(file));
    } catch (IOException e) {
      throw ModelException.unusable(file, "cannot read as JSON: " + e.getMessage());
    }
    if (c == null || !c.isObject()) throw ModelException.unusable(file, "is not a JSON object");
    String expected = hookName(layer);
    String hook = c.has("hook_name") ? c.path("hook_name").asText() : c.path("hook_point").asText(expected);
    if (!hook.equals(expected)) {
      throw ModelException.unusable(file, "hook_name is " + hook + " but the folder is for " + expected);
    }
    if (c.hasNonNull("hook_head_index")) throw ModelException.unusable(file, "hook_head_index must be null");
    requireText(c, file, "architecture", "standard");
    requireText(c, file, "activation_fn_str", "relu");
    requireText(c, file, "normalize_activations", "none");
    JsonNode center = c.path("model_from_pretrained_kwargs").path("center_writing_weights");
    return new SaeConfig(expected, layer, positive(c, file, "d_in"), positive(c, file, "d_sae"),
        c.path("apply_b_dec_to_input").asBoolean(true), c.path("prepend_bos").asBoolean(true),
        center.isBoolean() ? center.asBoolean() : null);
  }

  private static void requireText(JsonNode c, Path file, String field, String allowed) {
    JsonNode v = c.get(field);
    if (v == null || v.isNull() || v.asText().equals(allowed)) return;
    throw ModelException.unusable(file, field + " is " + v.asText() + "; only " + allowed + " is supported");
  }

  private static int positive(JsonNode c, Path file, String field) {
    JsonNode v = c.get(field);
    if (v == null || !v.canConvertToInt() || v.asInt() < 1) {
      throw ModelException.unusable(file, "field " + field + " is missing or not a positive integer");
    }
    return v.asInt();
  }
}
