package resgraph.model;

import java.util.Collection;
import java.util.Comparator;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A place on GPT-2's residual stream where an SAE can sit, named as TransformerLens names it:
 * {@code blocks.{layer}.hook_resid_pre} (entering block l), {@code hook_resid_mid} (after its
 * attention, before its MLP) or {@code hook_resid_post} (leaving it).
 *
 * <p>The residual streams of a forward pass are numbered 0..2L: stream {@code 2l} enters block l,
 * {@code 2l + 1} sits between its attention and its MLP, and {@code 2l + 2} leaves it (so
 * {@code resid_post} of l and {@code resid_pre} of l + 1 are the same stream). Going from stream r
 * to r + 1 is one sub-block: an attention when r is even, an MLP when r is odd.
 */
public record Site(int layer, Kind kind) implements Comparable<Site> {

  public enum Kind {
    PRE("pre", ""), MID("mid", "m"), POST("post", "p");

    /** The word in the hook name, and the suffix of node ids in chains that mix kinds. */
    public final String word, suffix;

    Kind(String word, String suffix) {
      this.word = word;
      this.suffix = suffix;
    }
  }

  private static final Pattern HOOK = Pattern.compile("blocks\\.(\\d+)\\.hook_resid_(pre|mid|post)");
  private static final Pattern SHORT = Pattern.compile("(\\d+)([mp]?)");

  public Site {
    if (layer < 0) throw new IllegalArgumentException("layer " + layer + " is negative");
  }

  public static Site pre(int layer) {
    return new Site(layer, Kind.PRE);
  }

  public String hookName() {
    return "blocks." + layer + ".hook_resid_" + kind.word;
  }

  /** The residual stream this site reads: 2l, 2l + 1 or 2l + 2. */
  public int stream() {
    return 2 * layer + kind.ordinal();
  }

  /** "3" (resid_pre), "3m" (resid_mid), "3p" (resid_post): how node ids and {@code --sites} name a site. */
  public String shortName() {
    return layer + kind.suffix;
  }

  /** The site a TransformerLens hook name denotes, or empty when it is not a residual-stream hook. */
  public static Optional<Site> ofHook(String hookName) {
    Matcher m = HOOK.matcher(hookName);
    if (!m.matches()) return Optional.empty();
    return Optional.of(new Site(Integer.parseInt(m.group(1)), kind(m.group(2))));
  }

  /** A site from a hook name or a short name ("3", "3m", "3p"); IllegalArgumentException naming the forms. */
  public static Site parse(String name) {
    String s = name.strip().toLowerCase(Locale.ROOT);
    Optional<Site> hook = ofHook(s);
    if (hook.isPresent()) return hook.get();
    Matcher m = SHORT.matcher(s);
    if (!m.matches()) {
      throw new IllegalArgumentException("\"" + name + "\" is not a site: use 3 (resid_pre of block 3), 3m (resid_mid), "
          + "3p (resid_post) or a hook name such as blocks.3.hook_resid_mid");
    }
    Kind kind = switch (m.group(2)) {
      case "m" -> Kind.MID;
      case "p" -> Kind.POST;
      default -> Kind.PRE;
    };
    return new Site(Integer.parseInt(m.group(1)), kind);
  }

  private static Kind kind(String word) {
    for (Kind k : Kind.values()) if (k.word.equals(word)) return k;
    throw new IllegalArgumentException(word);
  }

  /**
   * What node ids of this site start with (METHOD.md): "5" in "5.10603" when every site of the
   * chain is of one kind, "5m" or "5p" when they mix.
   */
  public String nodePrefix(boolean mixedKinds) {
    return mixedKinds ? shortName() : Integer.toString(layer);
  }

  /** Whether sites of more than one kind are among these. */
  public static boolean mixesKinds(Collection<Site> sites) {
    return sites.stream().map(Site::kind).distinct().count() > 1;
  }

  /** Forward-pass order: by stream, then by kind (resid_post of l before resid_pre of l + 1). */
  @Override
  public int compareTo(Site o) {
    return Comparator.comparingInt(Site::stream).thenComparing(Site::kind, Comparator.reverseOrder()).compare(this, o);
  }

  @Override
  public String toString() {
    return hookName();
  }
}
