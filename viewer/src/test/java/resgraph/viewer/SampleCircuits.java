package resgraph.viewer;

import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.Edge;
import resgraph.v1.Job;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.Node;
import resgraph.v1.Pruning;
import resgraph.v1.SaeSetting;
import resgraph.v1.TokenValue;

/** A small circuit made by hand, with awkward token strings, for tests of the drawings. */
public final class SampleCircuits {

  private SampleCircuits() {}

  public static Circuit small() {
    String[] tokens = {"<|endoftext|>", "When", " Mary", " &", " <John>", "\n", " gave", " \"a\"", " drink", " to"};
    Job.Builder job = Job.newBuilder().setId("j-test").setTarget(tokens.length - 1).setLayerStart(0).setLayerEnd(3)
        .setSpec(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel("demo").setSaes("gpt2-small-res-jb"))
            .setPrompt("When Mary & <John>\n gave \"a\" drink to").setPruning(Pruning.newBuilder().setTopK(10)));
    for (int i = 0; i < tokens.length; i++) job.addTokens(i).addTokenStrings(tokens[i]);
    for (int l = 0; l < 3; l++) {
      job.addChain(ChainSite.newBuilder().setHookName(hook(l)).setSite("" + l).setLayer(l).setNodePrefix("" + l)
          .setNeuronpedia("gpt2-small/" + l + "-res-jb"));
    }
    job.setRelease("gpt2-small-res-jb (by name)")
        .addSaesSettings(SaeSetting.newBuilder().setName("centering").setValue("on").setSource("release gpt2-small-res-jb (by name)"))
        .addSaesSettings(SaeSetting.newBuilder().setName("architecture").setValue("standard").setSource("cfg.json architecture"));
    Circuit.Builder c = Circuit.newBuilder().setJob(job).setRawEdgeCount(7).setEffectShown(0.42)
        .addPredictions(TokenValue.newBuilder().setId(1).setToken(" Mary").setValue(0.31f))
        .addPredictions(TokenValue.newBuilder().setId(2).setToken(" John").setValue(0.12f));
    String[] ids = {"0.17", "0.3", "1.42", "1.7", "2.5", "2.900"};
    for (String id : ids) {
      int layer = Integer.parseInt(id.substring(0, 1));
      Node.Builder n = Node.newBuilder().setId(id).setLayer(layer).setHookName(hook(layer)).setLatent(Integer.parseInt(id.substring(2)))
          .setNeuronpedia("https://www.neuronpedia.org/gpt2-small/" + layer + "-res-jb/" + id.substring(2));
      for (int p = 0; p < tokens.length; p++) n.addActivations(p == 0 ? 0 : (p * 7 + layer) % 5 * 0.5f);
      n.addPromotes(TokenValue.newBuilder().setId(3).setToken(" <b>").setValue(0.8f))
          .addPromotes(TokenValue.newBuilder().setId(4).setToken(" her").setValue(0.5f))
          .addSuppresses(TokenValue.newBuilder().setId(5).setToken(" him").setValue(-0.6f));
      c.addNodes(n);
    }
    edge(c, "0.17", "1.42", -1.5f);
    edge(c, "0.3", "1.42", 0.4f);
    edge(c, "0.3", "1.7", -0.2f);
    edge(c, "1.42", "2.5", -0.9f);
    edge(c, "1.7", "2.900", 0.3f);
    c.addRawEdges(Edge.newBuilder().setSource("0.17").setTarget("1.99").setWeight(0.01f));
    return c.build();
  }

  /**
   * The small circuit over a prompt of {@code length} tokens named t0, t1, ... (t0 the BOS), its
   * target the last: node 0.17 fires most early on, 1.42 just before the target, 2.5 nowhere; and
   * 1.42 has {@code extraInto} more raw edges into it, from latents outside the circuit, of
   * weights 0.001, 0.002, ...
   */
  public static Circuit longPrompt(int length, int extraInto) {
    Circuit small = small();
    Job.Builder job = small.getJob().toBuilder().clearTokens().clearTokenStrings().setTarget(length - 1);
    for (int p = 0; p < length; p++) job.addTokens(p).addTokenStrings(p == 0 ? "<|endoftext|>" : "t" + p);
    Circuit.Builder c = small.toBuilder().setJob(job).clearNodes();
    for (Node n : small.getNodesList()) {
      int peak = switch (n.getId()) {
        case "0.17" -> 20;
        case "1.42" -> length - 3;
        case "2.5" -> -1;
        default -> length / 2;
      };
      Node.Builder b = n.toBuilder().clearActivations();
      for (int p = 0; p < length; p++) b.addActivations(p == peak ? 3f : peak >= 0 && p % 9 == 4 ? 0.5f : 0f);
      c.addNodes(b);
    }
    for (int i = 1; i <= extraInto; i++) {
      c.addRawEdges(Edge.newBuilder().setSource("0." + (1000 + i)).setTarget("1.42").setWeight((i % 2 == 0 ? 1 : -1) * 0.001f * i));
    }
    return c.setRawEdgeCount(c.getRawEdgesCount()).build();
  }

  private static String hook(int layer) {
    return "blocks." + layer + ".hook_resid_pre";
  }

  private static void edge(Circuit.Builder c, String from, String to, float w) {
    Edge e = Edge.newBuilder().setSource(from).setTarget(to).setWeight(w).build();
    c.addEdges(e).addRawEdges(e);
  }
}
