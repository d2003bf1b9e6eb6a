package resgraph.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import resgraph.platform.ResgraphException;

/** The shape of a GPT-2, as its Hugging Face {@code config.json} gives it. */
public record Gpt2Config(
    int n_layer, int n_embd, int n_head, int n_positions, int vocab_size, int n_inner, double layer_norm_epsilon) {

  public Gpt2Config {
    if (n_layer < 1 || n_embd < 1 || n_head < 1 || n_positions < 1 || vocab_size < 1 || n_inner < 1) {
      throw new IllegalArgumentException("every size must be positive: " + this);
    }
    if (n_embd % n_head != 0) {
      throw new IllegalArgumentException("n_embd " + n_embd + " is not a multiple of n_head " + n_head);
    }
    if (!(layer_norm_epsilon > 0)) throw new IllegalArgumentException("layer_norm_epsilon must be positive");
  }

  public int headSize() {
    return n_embd / n_head;
  }

  /** Reads {@code config.json}, refusing the GPT-2 variants whose forward pass differs from ours. */
  public static Gpt2Config read(Path file) {
    JsonNode c;
    try {
      c = new ObjectMapper().readTree(Files.readString(file));
    } catch (IOException e) {
      throw ResgraphException.unusable(file, "cannot read as JSON: " + e.getMessage());
    }
    if (c == null || !c.isObject()) throw ResgraphException.unusable(file, "is not a JSON object");
    String act = c.path("activation_function").asText("gelu_new");
    // gelu_pytorch_tanh is the same tanh approximation under another name.
    if (!act.equals("gelu_new") && !act.equals("gelu_pytorch_tanh")) {
      throw ResgraphException.unusable(file, "activation_function is " + act + "; only gelu_new (GPT-2's tanh GELU) is supported");
    }
    if (!c.path("scale_attn_weights").asBoolean(true) || c.path("scale_attn_by_inverse_layer_idx").asBoolean(false)) {
      throw ResgraphException.unusable(file, "only GPT-2's attention scale 1/sqrt(head size) is supported");
    }
    int nEmbd = intField(c, file, "n_embd");
    int nPositions = c.has("n_positions") ? intField(c, file, "n_positions") : intField(c, file, "n_ctx");
    int nInner = c.path("n_inner").isNumber() ? intField(c, file, "n_inner") : 4 * nEmbd;
    try {
      return new Gpt2Config(intField(c, file, "n_layer"), nEmbd, intField(c, file, "n_head"), nPositions,
          intField(c, file, "vocab_size"), nInner, c.path("layer_norm_epsilon").asDouble(1e-5));
    } catch (IllegalArgumentException e) {
      throw ResgraphException.unusable(file, e.getMessage());
    }
  }

  private static int intField(JsonNode c, Path file, String name) {
    JsonNode v = c.get(name);
    if (v == null || !v.canConvertToInt()) throw ResgraphException.unusable(file, "field " + name + " is missing or not an integer");
    return v.asInt();
  }
}
