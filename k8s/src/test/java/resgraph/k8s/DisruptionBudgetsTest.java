package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Disruption budgets: every workload that can run more than one replica (its replicas, or an
 * autoscaler's maximum) has one budget that selects its pods, and no budget forbids every
 * eviction. A single replica has none: a budget would either block every drain of its node or
 * allow it anyway (the orchestrator, the graph service, Neo4j, dev's Kafka).
 */
class DisruptionBudgetsTest {

  static List<String> overlays() {
    return Manifests.overlays();
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyWorkloadThatCanHaveReplicasHasOneBudgetThatAllowsDrains(String overlay) {
    Manifests m = Manifests.of(overlay);
    List<PodDisruptionBudget> budgets = m.all(PodDisruptionBudget.class);
    for (Manifests.Workload w : m.workloads()) {
      Map<String, String> labels = w.template().getMetadata().getLabels();
      List<PodDisruptionBudget> its = budgets.stream().filter(b -> selects(b.getSpec().getSelector(), labels)).toList();
      int most = mostReplicas(m, w);
      if (most > 1) assertEquals(1, its.size(), overlay + ": " + w.name() + " (up to " + most + " replicas) has budgets " + its.size());
      for (PodDisruptionBudget b : its) {
        IntOrString maxUnavailable = b.getSpec().getMaxUnavailable();
        assertTrue(b.getSpec().getMinAvailable() == null && maxUnavailable != null && !"0".equals(maxUnavailable.getValue().toString())
            && !"0%".equals(maxUnavailable.getValue().toString()), overlay + ": " + b.getMetadata().getName() + " can forbid every eviction");
      }
    }
    for (PodDisruptionBudget b : budgets) {
      assertTrue(m.workloads().stream().anyMatch(w -> selects(b.getSpec().getSelector(), w.template().getMetadata().getLabels())),
          overlay + ": budget " + b.getMetadata().getName() + " selects no workload's pods");
    }
  }

  /** The most replicas a workload can have: an autoscaler's maximum, else its replicas (1 when unset). */
  private static int mostReplicas(Manifests m, Manifests.Workload w) {
    int autoscaled = Math.max(
        m.all(Keda.ScaledObject.class).stream().filter(s -> s.spec().scaleTargetRef().name().equals(w.name()))
            .mapToInt(s -> s.spec().maxReplicaCount()).max().orElse(0),
        m.all(HorizontalPodAutoscaler.class).stream().filter(h -> h.getSpec().getScaleTargetRef().getName().equals(w.name()))
            .mapToInt(h -> h.getSpec().getMaxReplicas()).max().orElse(0));
    return Math.max(autoscaled, w.replicas() == null ? 1 : w.replicas());
  }

  /** matchLabels only: the manifests select pods by label alone. */
  static boolean selects(LabelSelector selector, Map<String, String> labels) {
    assertTrue(selector.getMatchExpressions().isEmpty(), "a selector with expressions: " + selector);
    return labels.entrySet().containsAll(selector.getMatchLabels().entrySet());
  }
}
