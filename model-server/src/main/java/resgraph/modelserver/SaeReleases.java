package resgraph.modelserver;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.IntFunction;
import java.util.function.Predicate;
import resgraph.model.SaeConfig;
import resgraph.model.Site;

/**
 * The SAELens releases of residual-stream SAEs for GPT-2 small, as SAELens's own release table
 * ({@code pretrained_saes.yaml}) lists them: where each lives on the Hugging Face hub, the folder
 * of each SAE, whether its SAEs read a centred residual, and Neuronpedia's id of each.
 *
 * <p>Centring is the one setting these releases do not write in their cfg.json: SAELens supplies
 * it from its table ({@code model_from_pretrained_kwargs} among the release's config overrides),
 * so a copy of a release must be recognised as one, by name, by where it was downloaded from, by
 * its folder's name, or by the fields of its cfg.json ({@link #fingerprint}).
 */
public final class SaeReleases {

  /** The GPT-2 every release here was trained on, on the hub. */
  public static final String GPT2 = "openai-community/gpt2";

  /** One SAE of a release: its site, its folder in the hub repository, its Neuronpedia id. */
  public record Member(Site site, String folder, String neuronpedia) {}

  /**
   * @param centered whether the SAEs read the residual minus its mean (TransformerLens's
   *     center_writing_weights), or null when the release table does not say
   * @param fingerprint what a cfg.json of this release holds beyond its hook name and width
   */
  public record Release(String name, String repo, List<Member> members, Boolean centered, Predicate<SaeConfig> fingerprint) {

    public Optional<Member> member(Site site) {
      return members.stream().filter(m -> m.site().equals(site)).findFirst();
    }

    /** Whether a cfg.json could be one of this release's: its site, width, GPT-2 small's width and the release's own fields. */
    boolean matches(SaeConfig cfg) {
      return member(cfg.site()).isPresent() && cfg.d_in() == 768 && fingerprint.test(cfg);
    }
  }

  public static final List<Release> ALL = List.of(
      // Joseph Bloom's SAEs, trained on TransformerLens's GPT-2 with its default processing (centred
      // writing weights); their cfg.json is an old training-run dump that does not say so.
      new Release("gpt2-small-res-jb", "jbloom/GPT2-Small-SAEs-Reformatted", jbMembers(), true,
          cfg -> cfg.d_sae() == 24576 && text(cfg, "model_name").equals("gpt2-small")
              && text(cfg, "dataset_path").equals("Skylion007/openwebtext") && cfg.fields().path("context_size").asInt() == 128),
      // OpenAI's TopK SAEs (k = 32, layer-normed inputs): resid_post is OpenAI's resid_post_mlp, resid_mid its
      // resid_post_attn. Their layer_norm removes the mean, so centring changes nothing; OpenAI read plain GPT-2.
      oai("gpt2-small-resid-post-v5-32k", "jbloom/GPT2-Small-OAI-v5-32k-resid-post-SAEs", Site.Kind.POST, 32768,
          l -> "v5_32k_layer_" + l + ".pt", "res_post_32k-oai"),
      oai("gpt2-small-resid-post-v5-128k", "jbloom/GPT2-Small-OAI-v5-128k-resid-post-SAEs", Site.Kind.POST, 131072,
          l -> "v5_128k_layer_" + l, "res_post_128k-oai"),
      oai("gpt2-small-resid-mid-v5-32k", "jbloom/GPT2-Small-OAI-v5-32k-resid-mid-SAEs", Site.Kind.MID, 32768,
          l -> "v5_32k_layer_" + l, "res_mid_32k-oai"),
      oai("gpt2-small-resid-mid-v5-128k", "jbloom/GPT2-Small-OAI-v5-128k-resid-mid-SAEs", Site.Kind.MID, 131072,
          l -> "v5_128k_layer_" + l, "res_mid_128k-oai"),
      // Neuronpedia's SAEs at layers 2, 6 and 10; the release table says nothing of centring, so cfg.json must.
      ajt("sll"), ajt("slefr"), ajt("scl"), ajt("sle"), ajt("sce"), ajt("scefr"));

  private SaeReleases() {}

  public static Optional<Release> named(String name) {
    return ALL.stream().filter(r -> r.name().equals(name)).findFirst();
  }

  /** The release whose hub repository this is ("jbloom/GPT2-Small-SAEs-Reformatted"). */
  public static Optional<Release> ofRepo(String repo) {
    return ALL.stream().filter(r -> r.repo().equalsIgnoreCase(repo)).findFirst();
  }

  /** The release a folder name stands for: the release's name, or its repository's name. */
  public static Optional<Release> ofFolderName(String folder) {
    return ALL.stream().filter(r -> folder.equalsIgnoreCase(r.name())
        || folder.equalsIgnoreCase(r.repo().substring(r.repo().indexOf('/') + 1))).findFirst();
  }

  /** The one release every cfg.json matches, if exactly one does. */
  public static Optional<Release> fingerprint(List<SaeConfig> cfgs) {
    List<Release> matching = new ArrayList<>();
    for (Release r : ALL) if (cfgs.stream().allMatch(r::matches)) matching.add(r);
    return matching.size() == 1 ? Optional.of(matching.get(0)) : Optional.empty();
  }

  private static List<Member> jbMembers() {
    List<Member> m = new ArrayList<>();
    for (int l = 0; l < 12; l++) m.add(new Member(Site.pre(l), Site.pre(l).hookName(), "gpt2-small/" + l + "-res-jb"));
    Site post = new Site(11, Site.Kind.POST); // the residual after the last block, which Neuronpedia calls layer 12
    m.add(new Member(post, post.hookName(), "gpt2-small/12-res-jb"));
    return m;
  }

  private static Release oai(String name, String repo, Site.Kind kind, int width, IntFunction<String> folder, String set) {
    List<Member> m = new ArrayList<>();
    for (int l = 0; l < 12; l++) m.add(new Member(new Site(l, kind), folder.apply(l), "gpt2-small/" + l + "-" + set));
    return new Release(name, repo, m, false, cfg -> cfg.d_sae() == width && cfg.architecture() == SaeConfig.Architecture.TOPK
        && cfg.k() == 32 && cfg.normalization() == SaeConfig.Normalization.LAYER_NORM);
  }

  private static Release ajt(String variant) {
    String set = "res_" + variant + "-ajt";
    List<Member> m = new ArrayList<>();
    for (int l : new int[] {2, 6, 10}) m.add(new Member(Site.pre(l), l + "-" + set, "gpt2-small/" + l + "-" + set));
    // nothing in their cfg.json is known to tell the six apart: they are recognised by name and origin only
    return new Release("gpt2-small-" + set, "neuronpedia/gpt2-small__" + set, m, null, cfg -> false);
  }

  private static String text(SaeConfig cfg, String field) {
    return cfg.fields().path(field).asText("");
  }
}
