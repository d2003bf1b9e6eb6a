package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.ResourceRequirements;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import resgraph.platform.kafka.Topics;
import resgraph.worker.kafka.TaskListener;

/**
 * Kafka as the code uses it: Strimzi's topics are the ones the services create, partitions and
 * configs alike; the worker autoscaler reads the lag of the workers' own group on resgraph.tasks,
 * from the brokers the services use, and never adds workers that would idle for want of a partition.
 */
class KafkaTest {

  static List<String> overlays() {
    return Manifests.overlays();
  }

  /** The replication factor the services are given (all alike), with which they create missing topics. */
  private static int replicationFactor(Manifests m) {
    Set<String> given = m.serviceContainers().stream().filter(sc -> sc.env().settings().containsKey("KAFKA_BOOTSTRAP_SERVERS"))
        .map(sc -> sc.env().value("RESGRAPH_KAFKA_REPLICATION_FACTOR").orElse("1")).collect(Collectors.toSet());
    assertEquals(1, given.size(), m.overlay() + ": services given different replication factors " + given);
    return Integer.parseInt(given.iterator().next());
  }

  private static String bootstrap(Manifests m) {
    return m.serviceContainers().stream().filter(sc -> sc.service() == Services.ABLATION_WORKER).findFirst()
        .flatMap(sc -> sc.env().value("KAFKA_BOOTSTRAP_SERVERS")).orElseThrow(() -> new AssertionError(m.overlay() + ": workers without Kafka"));
  }

  private static String workerDeployment(Manifests m) {
    return m.serviceContainers().stream().filter(sc -> sc.service() == Services.ABLATION_WORKER).findFirst().orElseThrow().workload().name();
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void strimzisTopicsAreTheOnesTheServicesCreate(String overlay) {
    Manifests m = Manifests.of(overlay);
    List<Strimzi.KafkaTopic> topics = m.all(Strimzi.KafkaTopic.class);
    if (m.all(Strimzi.Kafka.class).isEmpty()) {
      assertEquals(List.of(), topics, overlay + ": topics without a Strimzi Kafka");
      return;
    }
    int rf = replicationFactor(m);
    Map<String, CodeTopics.Topic> manifests = new TreeMap<>();
    for (Strimzi.KafkaTopic t : topics) {
      Map<String, String> configs = t.spec().config() == null ? Map.of()
          : t.spec().config().entrySet().stream().collect(Collectors.toMap(Map.Entry::getKey, e -> String.valueOf(e.getValue())));
      manifests.put(t.metadata().getName(), new CodeTopics.Topic(t.metadata().getName(), t.spec().partitions(), t.spec().replicas(), configs));
    }
    assertEquals(new TreeMap<>(CodeTopics.created(rf)), manifests, overlay);
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void strimzisKafkaHoldsWhatTheTopicsAsk(String overlay) {
    Manifests m = Manifests.of(overlay);
    for (Strimzi.Kafka kafka : m.all(Strimzi.Kafka.class)) {
      int brokers = m.all(Strimzi.KafkaNodePool.class).stream().filter(p -> p.spec().roles().contains("broker"))
          .mapToInt(p -> p.spec().replicas()).sum();
      int rf = replicationFactor(m);
      int minIsr = Integer.parseInt(String.valueOf(kafka.spec().kafka().config().get("min.insync.replicas")));
      assertTrue(rf <= brokers && minIsr < rf, overlay + ": " + brokers + " brokers, replication " + rf + ", min ISR " + minIsr);
      String host = Strimzi.bootstrapService(kafka) + "." + Manifests.NAMESPACE + ".svc:";
      assertTrue(kafka.spec().kafka().listeners().stream().anyMatch(l -> bootstrap(m).equals(host + l.port()) && !l.tls()),
          overlay + ": the services' " + bootstrap(m) + " is no plaintext listener of " + kafka.metadata().getName());
      Strimzi.Exporter exporter = kafka.spec().kafkaExporter();
      assertTrue(TaskListener.GROUP.matches(exporter.groupRegex()) && Topics.TASKS.matches(exporter.topicRegex()),
          overlay + ": the exporter leaves out the workers' lag");
      List<ResourceRequirements> sized = List.of(exporter.resources(), kafka.spec().entityOperator().topicOperator().resources());
      m.all(Strimzi.KafkaNodePool.class).forEach(p -> assertBounded(overlay + " " + p.metadata().getName(), p.spec().resources()));
      sized.forEach(r -> assertBounded(overlay + " " + kafka.metadata().getName(), r));
    }
  }

  private static void assertBounded(String what, ResourceRequirements r) {
    for (String resource : List.of("cpu", "memory")) {
      assertTrue(r != null && r.getRequests().containsKey(resource) && r.getLimits().containsKey(resource), what + ": no " + resource + " request and limit");
    }
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void kedaScalesTheWorkersOnTheirGroupsLag(String overlay) {
    Manifests m = Manifests.of(overlay);
    int partitions = CodeTopics.created(1).get(Topics.TASKS).partitions();
    for (Keda.ScaledObject s : m.all(Keda.ScaledObject.class)) {
      assertEquals(workerDeployment(m), s.spec().scaleTargetRef().name(), overlay);
      assertTrue(s.spec().maxReplicaCount() <= partitions, overlay + ": more workers than " + Topics.TASKS + " has partitions");
      assertEquals(1, s.spec().triggers().size(), overlay);
      Keda.Trigger t = s.spec().triggers().get(0);
      assertEquals("kafka", t.type(), overlay);
      assertEquals(List.of(Topics.TASKS, TaskListener.GROUP, bootstrap(m), "false"),
          List.of(t.metadata().topic(), t.metadata().consumerGroup(), t.metadata().bootstrapServers(), t.metadata().allowIdleConsumers()), overlay);
    }
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void theHpaScalesTheWorkersOnTheirGroupsLag(String overlay) {
    Manifests m = Manifests.of(overlay);
    int partitions = CodeTopics.created(1).get(Topics.TASKS).partitions();
    for (HorizontalPodAutoscaler h : m.all(HorizontalPodAutoscaler.class)) {
      assertEquals(workerDeployment(m), h.getSpec().getScaleTargetRef().getName(), overlay);
      assertTrue(h.getSpec().getMaxReplicas() <= partitions, overlay + ": more workers than " + Topics.TASKS + " has partitions");
      assertEquals(1, h.getSpec().getMetrics().size(), overlay);
      MetricSpec metric = h.getSpec().getMetrics().get(0);
      assertEquals("kafka_consumergroup_lag", metric.getExternal().getMetric().getName(), overlay);
      assertEquals(Map.of("consumergroup", TaskListener.GROUP, "topic", Topics.TASKS),
          metric.getExternal().getMetric().getSelector().getMatchLabels(), overlay);
    }
  }

  /** KEDA makes an autoscaler of its own: two on one Deployment would fight. */
  @ParameterizedTest
  @MethodSource("overlays")
  void atMostOneAutoscalerPerOverlay(String overlay) {
    Manifests m = Manifests.of(overlay);
    assertTrue(m.all(Keda.ScaledObject.class).size() + m.all(HorizontalPodAutoscaler.class).size() <= 1, overlay);
  }
}
