package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import resgraph.platform.ResgraphException;

/** Which sites a request's chain holds (METHOD.md "hook sites"), and how its nodes are named. */
class ChainTest {

  private static final Site PRE_3 = Site.pre(3), MID_3 = new Site(3, Site.Kind.MID), POST_3 = new Site(3, Site.Kind.POST);
  /** res-jb's shape: resid_pre of layers 0..11 and resid_post of 11. */
  private static final Set<Site> RES_JB = jb();

  private static Set<Site> jb() {
    Set<Site> s = new java.util.TreeSet<>();
    for (int l = 0; l < 12; l++) s.add(Site.pre(l));
    s.add(new Site(11, Site.Kind.POST));
    return s;
  }

  private static void refused(Runnable r, String... named) {
    ResgraphException e = assertThrows(ResgraphException.class, r::run);
    assertEquals(ResgraphException.Kind.BAD_REQUEST, e.kind());
    for (String n : named) assertTrue(e.getMessage().contains(n), "\"" + e.getMessage() + "\" should name " + n);
  }

  @Test
  void sitesAreReadAsTransformerLensNamesThemAndOrderedByTheForwardPass() {
    assertEquals(MID_3, Site.parse("blocks.3.hook_resid_mid"));
    assertEquals(MID_3, Site.parse("3m"));
    assertEquals(PRE_3, Site.parse("3"));
    assertEquals(POST_3, Site.parse(" 3P "));
    assertEquals(List.of(PRE_3, MID_3, POST_3, Site.pre(4)), new java.util.TreeSet<>(List.of(Site.pre(4), POST_3, MID_3, PRE_3))
        .stream().toList());
    assertEquals(8, POST_3.stream());
    assertEquals(Site.pre(4).stream(), POST_3.stream(), "resid_post of 3 is resid_pre of 4");
    assertThrows(IllegalArgumentException.class, () -> Site.parse("3x"));
    assertThrows(IllegalArgumentException.class, () -> Site.parse("blocks.3.attn.hook_z"));
  }

  @Test
  void aLayerRangeIsOneKindOfSiteAtEachLayer() {
    assertEquals(List.of(Site.pre(3), Site.pre(4), Site.pre(5)), Chain.resolve(RES_JB, 12, 3, 6, List.of()).sites());
    // every SAE when nothing is named: res-jb's chain ends at the last block's resid_post
    Chain all = Chain.resolve(RES_JB, 12, null, null, List.of());
    assertEquals(13, all.sites().size());
    assertEquals(new Site(11, Site.Kind.POST), all.next(Site.pre(11)));
    refused(() -> Chain.resolve(RES_JB, 12, -1, 3, List.of()), "layer_start -1", "negative");
    refused(() -> Chain.resolve(RES_JB, 12, 5, 2, List.of()), "must be below the end");
    refused(() -> Chain.resolve(RES_JB, 12, 2, 3, List.of()), "at least two");
    refused(() -> Chain.resolve(RES_JB, 12, 10, 13, List.of()), "layer_end can be at most 12");
    refused(() -> Chain.resolve(Set.of(Site.pre(0), Site.pre(1), Site.pre(3)), 4, 1, 4, List.of()), "layer 2 has none");
    Set<Site> mixed = Set.of(Site.pre(0), new Site(1, Site.Kind.MID), Site.pre(2));
    refused(() -> Chain.resolve(mixed, 3, 0, 3, List.of()), "no one kind of site", "0, 1m, 2");
    Set<Site> both = Set.of(PRE_3, Site.pre(4), new Site(3, Site.Kind.MID), new Site(4, Site.Kind.MID));
    refused(() -> Chain.resolve(both, 5, 3, 5, List.of()), "several kinds", "sites");
  }

  @Test
  void sitesNameAnyChainAmongTheSaesAndTwoOfOneStreamAreRefused() {
    Set<Site> have = Set.of(PRE_3, MID_3, POST_3, Site.pre(4), new Site(4, Site.Kind.MID));
    Chain c = Chain.resolve(have, 5, null, null, List.of("4m", "3m", "blocks.3.hook_resid_post"));
    assertEquals(List.of(MID_3, POST_3, new Site(4, Site.Kind.MID)), c.sites());
    assertTrue(c.mixesKinds());
    assertEquals("3m", c.nodePrefix(MID_3));
    assertEquals("3", Chain.resolve(have, 5, null, null, List.of("3", "4")).nodePrefix(PRE_3), "one kind: the layer alone");
    refused(() -> Chain.resolve(have, 5, null, null, List.of("3p", "4")), "read the same residual stream");
    refused(() -> Chain.resolve(have, 5, null, null, List.of("3", "5m")), "5m", "has no SAE");
    refused(() -> Chain.resolve(have, 5, null, null, List.of("3")), "at least two sites");
    refused(() -> c.next(new Site(4, Site.Kind.MID)), "last site");
    assertFalse(Chain.resolve(have, 5, null, null, List.of("3m", "4m")).mixesKinds());
  }
}
