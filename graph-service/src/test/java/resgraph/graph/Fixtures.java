package resgraph.graph;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import resgraph.v1.ChainSite;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.LatentEffects;
import resgraph.v1.LayerActivations;
import resgraph.v1.ModelRef;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.SparseActivations;
import resgraph.v1.TaskEffects;

/** Hand-made jobs and effects, for tests that do not need a model behind their numbers. */
final class Fixtures {

  private Fixtures() {}

  /** A fresh job id: the graph persists across test classes. */
  static String jobId(String what) {
    return "t-" + what + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  /** The chain of resid_pre sites of layers a..b-1, named as the model server names a chain of one kind of site. */
  static List<ChainSite> residPre(int a, int b) {
    List<ChainSite> chain = new ArrayList<>();
    for (int l = a; l < b; l++) {
      chain.add(ChainSite.newBuilder().setHookName(hook(l)).setSite("" + l).setLayer(l).setNodePrefix("" + l).build());
    }
    return chain;
  }

  /** The chain of {@link #job}. */
  static final SiteChain CHAIN = SiteChain.of(Job.newBuilder().addAllChain(residPre(0, 3)).build());

  static String hook(int layer) {
    return "blocks." + layer + ".hook_resid_pre";
  }

  /** Four tokens, layers 0:3, pruning top 3; latents 1 and 2 of layer 0 active at positions 1 and 3. */
  static RegisterJobRequest job(String id) {
    int n = 4;
    Job.Builder job = Job.newBuilder().setId(id)
        .setSpec(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel("test-model").setSaes("test-saes"))
            .setPrompt("a \"quoted\" \\ prompt").setPruning(Pruning.newBuilder().setTopK(3)))
        .setTarget(n - 1).setLayerStart(0).setLayerEnd(3).addAllChain(residPre(0, 3));
    for (int i = 0; i < n; i++) job.addTokens(100 + i).addTokenStrings("t" + i);
    LayerActivations.Builder layer0 = LayerActivations.newBuilder().setLayer(0).setHookName(hook(0));
    for (int p = 0; p < n; p++) {
      SparseActivations.Builder at = SparseActivations.newBuilder();
      if (p == 1) at.addLatents(1).addValues(0.5f).addLatents(2).addValues(1.25f);
      if (p == 3) at.addLatents(2).addValues(2f);
      layer0.addPositions(at);
    }
    return RegisterJobRequest.newBuilder().setJob(job).addActivations(layer0).build();
  }

  /** One task's message: the given edges, all from one resid_pre layer, grouped by source latent in order. */
  static TaskEffects effects(String jobId, int task, int layer, List<RawEdge> edges) {
    TaskEffects.Builder t = TaskEffects.newBuilder().setJobId(jobId).setTask(task).setLayer(layer).setTarget(3)
        .setHookName(hook(layer)).setMeasureHookName(hook(layer + 1));
    LatentEffects.Builder current = null;
    for (RawEdge e : edges) {
      if (e.site() != layer) throw new IllegalArgumentException(e + " is not at layer " + layer);
      if (current == null || current.getLatent() != e.source()) {
        if (current != null) t.addEffects(current);
        current = LatentEffects.newBuilder().setLatent(e.source());
      }
      current.addDownstream(e.target()).addDelta(e.weight());
    }
    if (current != null) t.addEffects(current);
    return t.build();
  }
}
