package resgraph.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.Timestamp;
import java.util.ArrayList;
import java.util.List;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobSpec;
import resgraph.v1.LatentEffects;
import resgraph.v1.ModelRef;
import resgraph.v1.Pruning;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.TaskEffects;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * A job run the way the orchestrator and the workers run one, against the test cluster's model
 * server: tokenize, trace, RegisterJob, ablate each layer in two tasks, publish their effects and
 * wait for every stored event. Made once per test JVM and shared, as it takes a few seconds.
 */
record RealJob(String id, Job job, TraceResponse trace, List<RawEdge> rawEdges, int tasks) {

  static final String PROMPT = "When Mary and John went to the store, John gave a drink to";
  static final int TOP_K = 5;

  private static RealJob made;

  static synchronized RealJob get() {
    if (made == null) made = make(GraphUnderTest.get(), "real", PROMPT, GraphUnderTest.get().ref);
    return made;
  }

  /**
   * Another job on another prompt, registered as of {@code registeredAs} (the graph groups corpus
   * statistics by it) while the model server computes it with the test model.
   */
  static RealJob make(GraphUnderTest cluster, String what, String prompt, ModelRef registeredAs) {
    String id = Fixtures.jobId(what);
    TokenizeResponse tokens = cluster.model().tokenize(TokenizeRequest.newBuilder().setRef(cluster.ref).setText(prompt).build());
    TraceResponse trace = cluster.model().trace(TraceRequest.newBuilder().setRef(cluster.ref).addAllTokens(tokens.getTokensList()).build());
    Job job = Job.newBuilder().setId(id)
        .setSpec(JobSpec.newBuilder().setRef(registeredAs).setPrompt(prompt).setPruning(Pruning.newBuilder().setTopK(TOP_K)))
        .addAllTokens(tokens.getTokensList()).addAllTokenStrings(tokens.getTokenStringsList())
        .setTarget(trace.getTarget()).setLayerStart(0).setLayerEnd(3).addAllChain(trace.getChainList())
        .setCreated(Timestamp.newBuilder().setSeconds(1_790_000_000L))
        .build();
    cluster.register(RegisterJobRequest.newBuilder().setJob(job).addAllActivations(trace.getLayersList())
        .addAllPredictions(trace.getPredictionsList()).build());

    List<RawEdge> raw = new ArrayList<>();
    List<TaskEffects> tasks = new ArrayList<>();
    for (int layer = 0; layer < 2; layer++) {
      AblateResponse effects = cluster.model().ablate(AblateRequest.newBuilder().setRef(cluster.ref)
          .addAllTokens(tokens.getTokensList()).setHookName(Fixtures.hook(layer)).setMeasureHookName(Fixtures.hook(layer + 1))
          .setTarget(trace.getTarget()).build());
      List<LatentEffects> all = effects.getEffectsList();
      // two tasks per layer, as the orchestrator splits candidates into batches
      for (List<LatentEffects> half : List.of(all.subList(0, all.size() / 2), all.subList(all.size() / 2, all.size()))) {
        tasks.add(TaskEffects.newBuilder().setJobId(id).setTask(tasks.size()).setLayer(layer).setTarget(trace.getTarget())
            .setHookName(effects.getHookName()).setMeasureHookName(effects.getMeasureHookName()).addAllEffects(half).build());
      }
      for (LatentEffects e : all) {
        for (int i = 0; i < e.getDownstreamCount(); i++) {
          if (e.getDelta(i) != 0) raw.add(new RawEdge(layer, e.getLatent(), e.getDownstream(i), e.getDelta(i)));
        }
      }
    }
    cluster.publish(tasks.toArray(TaskEffects[]::new));
    List<JobEvent> events = cluster.events(id, tasks.size());
    assertEquals(tasks.size(), events.stream().filter(JobEvent::hasStored).map(e -> e.getStored().getTask()).distinct().count(),
        "stored events: " + events);
    return new RealJob(id, job, trace, List.copyOf(raw), tasks.size());
  }

  /** The latent's activation at every position, from the trace (0 where it is off). */
  float[] activations(int layer, int latent) {
    float[] out = new float[job.getTokensCount()];
    trace.getLayersList().stream().filter(l -> l.getLayer() == layer).forEach(l -> {
      for (int p = 0; p < l.getPositionsCount(); p++) {
        int i = l.getPositions(p).getLatentsList().indexOf(latent);
        if (i >= 0) out[p] = l.getPositions(p).getValues(i);
      }
    });
    return out;
  }
}
