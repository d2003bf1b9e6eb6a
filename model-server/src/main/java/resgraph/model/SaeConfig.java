package resgraph.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import resgraph.platform.ResgraphException;

/**
 * What an SAELens {@code cfg.json} says about one SAE, read from either layout SAELens writes:
 * settings at the top level (releases before SAELens 6), or under {@code metadata} (SAELens 6,
 * which keeps only the encoder's own settings at the top level). Every setting that changes the
 * numbers is either understood or refused naming the file and field, and each one read is
 * recorded with where it came from ({@link #settings}), so a reader of a graph can check it.
 *
 * @param k the number of latents a TopK SAE keeps; 0 for other architectures
 * @param centerWritingWeights what {@code model_from_pretrained_kwargs.center_writing_weights}
 *     says, or null when the file does not say
 * @param finetuningScalingFactor whether a {@code scaling_factor} tensor multiplies the latents
 *     before the decoder
 * @param rescaleActsByDecoderNorm a TopK option of SAELens 6: latents are chosen and decoded in
 *     units of their decoder row's norm
 * @param fields the file's settings with {@code metadata} merged into the top level, to recognise
 *     a release by them
 */
public record SaeConfig(
    Path file, Site site, int d_in, int d_sae, Architecture architecture, int k, Normalization normalization,
    boolean applyBDecToInput, boolean prependBos, Boolean centerWritingWeights, boolean finetuningScalingFactor,
    boolean rescaleActsByDecoderNorm, JsonNode fields, List<Setting> settings) {

  public enum Architecture {
    STANDARD, JUMPRELU, TOPK, GATED;

    public String word() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** {@code normalize_activations}: what the SAE does to its input before encoding. */
  public enum Normalization {
    NONE("none"), LAYER_NORM("layer_norm"), CONSTANT_NORM_RESCALE("constant_norm_rescale");

    public final String word;

    Normalization(String word) {
      this.word = word;
    }
  }

  /** One decision about an SAE and where it came from, e.g. (centering, on, release gpt2-small-res-jb). */
  public record Setting(String name, String value, String source) {}

  public SaeConfig {
    settings = List.copyOf(settings);
  }

  /** Reads and checks a cfg.json; {@code ResgraphException} naming the file and field for anything it cannot run. */
  public static SaeConfig read(Path file) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(Files.readString(file));
    } catch (IOException e) {
      throw ResgraphException.unusable(file, "cannot read as JSON: " + e.getMessage());
    }
    if (root == null || !root.isObject()) throw ResgraphException.unusable(file, "is not a JSON object");
    return of(root, file);
  }

  /** Checks a cfg.json's contents as {@link #read} does; {@code file} names where they come from. */
  public static SaeConfig of(JsonNode root, Path file) {
    return new Reader(file, root).read();
  }

  /** A copy with one more recorded decision (made where the cfg alone cannot decide, such as centring). */
  public SaeConfig with(Setting setting) {
    List<Setting> all = new ArrayList<>(settings);
    all.add(setting);
    return new SaeConfig(file, site, d_in, d_sae, architecture, k, normalization, applyBDecToInput, prependBos,
        centerWritingWeights, finetuningScalingFactor, rescaleActsByDecoderNorm, fields, all);
  }

  /** Reads one file, keeping track of where each value was found. */
  private static final class Reader {
    private final Path file;
    private final JsonNode top, metadata, fields;
    private final List<Setting> settings = new ArrayList<>();

    Reader(Path file, JsonNode root) {
      this.file = file;
      this.top = root;
      this.metadata = root.path("metadata").isObject() ? root.get("metadata") : null;
      ObjectNode merged = root.deepCopy();
      merged.remove("metadata");
      if (metadata != null) metadata.properties().forEach(e -> merged.putIfAbsent(e.getKey(), e.getValue()));
      this.fields = merged;
    }

    SaeConfig read() {
      String layout = metadata != null ? "SAELens 6 (settings under metadata)" : "SAELens before 6 (flat)";
      settings.add(new Setting("cfg.json layout", layout, "cfg.json"));
      Site site = site();
      if (has("hook_head_index") || has("hook_point_head_index")) {
        throw refusal(field("hook_head_index"), "must be null: resgraph reads the whole residual stream, not one head");
      }
      String reshape = text("reshape_activations", "none");
      if (!reshape.equals("none")) throw refusal(field("reshape_activations"), "is " + reshape + "; only none applies to the residual stream");
      int dIn = positive("d_in"), dSae = positive("d_sae");

      String activation = has("activation_fn_str") ? text("activation_fn_str", "relu") : text("activation_fn", "relu");
      String activationField = has("activation_fn_str") ? "activation_fn_str" : "activation_fn";
      String archName = text("architecture", "standard");
      Architecture arch;
      int k = 0;
      String archSource = has("architecture") ? source("architecture") : "default (cfg.json has no architecture)";
      switch (archName) {
        case "standard" -> {
          if (activation.equals("topk")) {
            // How SAELens before 6 stored TopK SAEs (OpenAI's GPT-2 SAEs among them); SAELens 6 reads them as topk.
            arch = Architecture.TOPK;
            k = positiveIn(fields.path("activation_fn_kwargs"), "activation_fn_kwargs.k", "k");
            archSource = source(activationField) + " topk, " + source("activation_fn_kwargs") + ".k";
          } else {
            requireRelu(activation, activationField);
            arch = Architecture.STANDARD;
          }
        }
        case "topk" -> {
          arch = Architecture.TOPK;
          k = has("k") ? positive("k") : positiveIn(fields.path("activation_fn_kwargs"), "activation_fn_kwargs.k", "k");
          JsonNode other = fields.path("activation_fn_kwargs").path("k");
          if (has("k") && other.canConvertToInt() && other.asInt() != k) {
            throw refusal(field("k"), "is " + k + " but activation_fn_kwargs.k is " + other.asInt() + "; they must agree");
          }
        }
        case "jumprelu" -> {
          requireRelu(activation, activationField);
          arch = Architecture.JUMPRELU;
        }
        case "gated" -> {
          requireRelu(activation, activationField);
          arch = Architecture.GATED;
        }
        case "batchtopk" -> throw refusal(field("architecture"), "is batchtopk, a training form: SAELens saves such SAEs "
            + "for inference as jumprelu; convert it with SAELens first");
        default -> throw refusal(field("architecture"), "is " + archName
            + "; resgraph runs standard, jumprelu, topk and gated SAEs");
      }
      settings.add(new Setting("architecture", arch.word() + (arch == Architecture.TOPK ? " (k=" + k + ")" : ""), archSource));

      Normalization norm = normalization();
      boolean applyBDec = bool("apply_b_dec_to_input", true);
      boolean prependBos = bool("prepend_bos", true);
      record("apply_b_dec_to_input", applyBDec);
      record("prepend_bos", prependBos);
      boolean scaling = bool("finetuning_scaling_factor", bool("uses_scaling_factor", false)); // the older name
      boolean rescale = bool("rescale_acts_by_decoder_norm", false);
      if (rescale && arch != Architecture.TOPK) {
        throw refusal(field("rescale_acts_by_decoder_norm"), "is true, which SAELens defines for topk SAEs only");
      }
      if (arch == Architecture.TOPK) record("rescale_acts_by_decoder_norm", rescale);
      JsonNode center = fields.path("model_from_pretrained_kwargs").path("center_writing_weights");
      return new SaeConfig(file, site, dIn, dSae, arch, k, norm, applyBDec, prependBos,
          center.isBoolean() ? center.asBoolean() : null, scaling, rescale, fields, settings);
    }

    private Site site() {
      String key = has("hook_name") ? "hook_name" : has("hook_point") ? "hook_point" : null;
      if (key == null) {
        throw refusal("hook_name", "is missing (and so is hook_point, its name in old releases): it names the site the SAE reads");
      }
      String hook = fields.get(key).asText();
      Site site = Site.ofHook(hook).orElseThrow(() -> refusal(field(key), "is " + hook
          + ": resgraph reads SAEs on the residual stream, blocks.{layer}.hook_resid_pre, hook_resid_mid or hook_resid_post"));
      settings.add(new Setting("hook", hook, source(key)));
      return site;
    }

    private Normalization normalization() {
      JsonNode v = fields.get("normalize_activations");
      // SAELens's oldest form is a boolean: true meant what is now expected_average_only_in
      String word = v == null || v.isNull() ? "none" : v.isBoolean() ? (v.asBoolean() ? "expected_average_only_in" : "none")
          : v.asText().equals("false") ? "none" : v.asText();
      if (word.equals("expected_average_only_in")) {
        // SAELens scales such an SAE's input by a factor its release table holds (norm_scaling_factor), not the folder
        throw refusal(field("normalize_activations"), "is " + v + " (expected_average_only_in): the input scale it needs is "
            + "SAELens's per-release norm_scaling_factor, which the folder does not hold; resgraph will not guess it");
      }
      for (Normalization n : Normalization.values()) {
        if (n.word.equals(word)) {
          settings.add(new Setting("normalize_activations", n.word,
              v == null ? "default (cfg.json does not say)" : source("normalize_activations")));
          return n;
        }
      }
      throw refusal(field("normalize_activations"), "is " + word + "; resgraph runs none, layer_norm and constant_norm_rescale");
    }

    private void requireRelu(String activation, String field) {
      if (!activation.equals("relu")) {
        throw refusal(field(field), "is " + activation + "; resgraph runs relu, and topk as the activation of a standard SAE");
      }
    }

    private boolean has(String name) {
      return fields.has(name) && !fields.get(name).isNull();
    }

    private String text(String name, String fallback) {
      return has(name) ? fields.get(name).asText() : fallback;
    }

    private boolean bool(String name, boolean fallback) {
      if (!has(name)) return fallback;
      JsonNode v = fields.get(name);
      if (!v.isBoolean()) throw refusal(field(name), "is " + v + ", not true or false");
      return v.asBoolean();
    }

    private void record(String name, boolean value) {
      settings.add(new Setting(name, Boolean.toString(value), has(name) ? source(name) : "default (cfg.json does not say)"));
    }

    private int positive(String name) {
      return positiveIn(fields, name, name);
    }

    private int positiveIn(JsonNode node, String described, String name) {
      JsonNode v = node.get(name);
      if (v == null || !v.canConvertToInt() || v.asInt() < 1) {
        throw refusal(described, "is missing or not a positive integer");
      }
      return v.asInt();
    }

    /** The field as the file holds it: "x", or "metadata.x" in the SAELens 6 layout. */
    private String field(String name) {
      return metadata != null && !top.has(name) && metadata.has(name) ? "metadata." + name : name;
    }

    /** Where a setting came from, as the job records it. */
    private String source(String name) {
      return "cfg.json " + field(name);
    }

    private ResgraphException refusal(String field, String problem) {
      return ResgraphException.unusable(file, field + " " + problem);
    }
  }
}
