package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The network policies allow exactly the flows of docs/ARCHITECTURE.md: every pair of endpoints
 * (resgraph's pods, Kafka's, Neo4j, peers outside the namespace, a stranger pod inside it), on
 * every port the destination serves, is allowed if and only if it is one of {@link #expected}.
 * Calls go where the callers' configured addresses lead through the Services, so selectors,
 * named ports and Services are checked together. Kubelet probes come from the node, which
 * policies never block.
 */
class NetworkPoliciesTest {

  static List<String> overlays() {
    return Manifests.overlays();
  }

  private static String flow(ClusterModel.Endpoint from, ClusterModel.Endpoint to, ClusterModel.Port port) {
    return from.name() + " -> " + to.name() + ":" + port.number() + "/" + port.protocol();
  }

  static Set<String> allowed(ClusterModel cluster) {
    PolicyEvaluator policies = new PolicyEvaluator(cluster.policies);
    Set<String> allowed = new TreeSet<>();
    for (ClusterModel.Endpoint from : cluster.endpoints) {
      for (ClusterModel.Endpoint to : cluster.endpoints) {
        if (!from.inNamespace() && !to.inNamespace()) continue;
        for (ClusterModel.Port port : to.ports()) if (policies.allows(from, to, port)) allowed.add(flow(from, to, port));
      }
    }
    return allowed;
  }

  static Set<String> expected(ClusterModel cluster) {
    Manifests m = cluster.manifests;
    Set<String> expected = new TreeSet<>();
    // one component's calls on another, where its configured address leads
    for (Manifests.ServiceContainer sc : m.serviceContainers()) {
      ClusterModel.Endpoint caller = cluster.endpoint(sc.workload().name());
      for (Calls.Call call : Calls.CALLS) {
        if (call.caller() != sc.service()) continue;
        for (String address : sc.env().value(call.variable()).orElseThrow().split(",")) {
          ClusterModel.Target t = cluster.resolve(address).orElseThrow();
          expected.add(flow(caller, t.endpoint(), t.port()));
        }
      }
      // users, from anywhere outside the namespace
      for (Calls.UserPort u : Calls.USER_PORTS) {
        if (u.service() != sc.service()) continue;
        int number = Integer.parseInt(sc.property(u.property()));
        ClusterModel.Port port = caller.ports().stream().filter(p -> p.number() == number).findFirst().orElseThrow();
        cluster.endpoints.stream().filter(e -> !e.inNamespace()).forEach(user -> expected.add(flow(user, caller, port)));
      }
      // models and SAEs not yet in the cache, from the Hugging Face hub
      if (sc.service() == Services.MODEL_SERVER) expected.add(flow(caller, ClusterModel.HUB, ClusterModel.HUB.port("https").orElseThrow()));
    }
    // every pod of the namespace resolves names
    cluster.endpoints.stream().filter(ClusterModel.Endpoint::inNamespace)
        .forEach(e -> ClusterModel.DNS.ports().forEach(p -> expected.add(flow(e, ClusterModel.DNS, p))));
    for (Strimzi.Kafka kafka : m.all(Strimzi.Kafka.class)) {
      String n = kafka.metadata().getName();
      ClusterModel.Endpoint brokers = cluster.endpoint(n + "-kafka");
      ClusterModel.Endpoint operator = cluster.endpoint(n + "-entity-operator");
      ClusterModel.Endpoint exporter = cluster.endpoint(n + "-kafka-exporter");
      ClusterModel.Port raft = brokers.port("tcp-ctrlplane").orElseThrow();
      ClusterModel.Port replication = brokers.port("tcp-replication").orElseThrow();
      // KRaft and replication between the brokers; the topic operator and the exporter read them
      expected.addAll(List.of(flow(brokers, brokers, raft), flow(brokers, brokers, replication), flow(operator, brokers, replication),
          flow(exporter, brokers, replication)));
      // the topic operator watches KafkaTopics
      ClusterModel.API.ports().forEach(p -> expected.add(flow(operator, ClusterModel.API, p)));
      // KEDA's operator reads the workers' lag (the Kafka of overlays/gpu, which gpu-hpa shares)
      for (Strimzi.Listener l : kafka.spec().kafka().listeners()) expected.add(flow(ClusterModel.KEDA, brokers, brokers.port("tcp-" + l.name()).orElseThrow()));
      // Prometheus scrapes the exporter for the HPA's metric
      if (!m.all(HorizontalPodAutoscaler.class).isEmpty()) expected.add(flow(ClusterModel.PROMETHEUS, exporter, exporter.port("tcp-prometheus").orElseThrow()));
    }
    return expected;
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void theArchitecturesFlowsAndNoOthers(String overlay) {
    ClusterModel cluster = new ClusterModel(Manifests.of(overlay));
    Set<String> allowed = allowed(cluster);
    Set<String> expected = expected(cluster);
    Set<String> missing = new TreeSet<>(expected);
    missing.removeAll(allowed);
    Set<String> extra = new TreeSet<>(allowed);
    extra.removeAll(expected);
    assertEquals("", (missing.isEmpty() ? "" : "blocked: " + missing + "\n") + (extra.isEmpty() ? "" : "allowed beyond the architecture: " + extra), overlay);
  }

  /** Policies isolate only the pods they select: with none, a stranger pod reaches the model server; with the overlay's, not. */
  @Test
  void policiesIsolateWhatTheySelect() {
    ClusterModel cluster = new ClusterModel(Manifests.of("dev"));
    ClusterModel.Endpoint model = cluster.endpoint("model-server");
    ClusterModel.Port grpc = model.port("grpc").orElseThrow();
    assertTrue(new PolicyEvaluator(List.of()).allows(ClusterModel.STRANGER, model, grpc));
    assertFalse(new PolicyEvaluator(cluster.policies).allows(ClusterModel.STRANGER, model, grpc));
    assertTrue(new PolicyEvaluator(cluster.policies).allows(cluster.endpoint("ablation-worker"), model, grpc));
  }
}
