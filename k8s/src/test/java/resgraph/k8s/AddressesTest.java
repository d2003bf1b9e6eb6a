package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.IntOrString;
import io.micronaut.grpc.server.GrpcServerConfiguration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Ports and addresses agree end to end: each service listens on the container ports its
 * configuration makes it listen on; each address a service is given leads, through a Service, to
 * the pods ARCHITECTURE.md says it calls, on a port they serve; every Service reaches its pods.
 */
class AddressesTest {

  static List<String> overlays() {
    return Manifests.overlays();
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void servicesListenOnTheirNamedPorts(String overlay) {
    for (Manifests.ServiceContainer sc : Manifests.of(overlay).serviceContainers()) {
      Map<String, String> listens = new HashMap<>();
      if (sc.service().servesGrpc()) listens.put("grpc", sc.property(GrpcServerConfiguration.PORT));
      if (sc.service() == Services.GRAPH_SERVICE) listens.put("http", sc.property("resgraph.http.port"));
      listens.put("health", sc.property("resgraph.health.port"));
      listens.forEach((name, port) -> assertTrue(
          sc.container().getPorts().stream().anyMatch(p -> name.equals(p.getName()) && p.getContainerPort() == Integer.parseInt(port)),
          sc.where() + ": listens on " + port + " but has no container port '" + name + "' " + port));
      assertEquals(listens.size(), sc.container().getPorts().size(), sc.where() + ": container ports nothing listens on");
    }
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyCallReachesItsCallee(String overlay) {
    Manifests m = Manifests.of(overlay);
    ClusterModel cluster = new ClusterModel(m);
    for (Manifests.ServiceContainer sc : m.serviceContainers()) {
      for (Calls.Call call : Calls.CALLS) {
        if (call.caller() != sc.service()) continue;
        String address = sc.env().value(call.variable()).orElseThrow(() -> new AssertionError(sc.where() + ": no " + call.variable()));
        for (String one : address.split(",")) {
          Optional<ClusterModel.Target> target = cluster.resolve(one);
          assertTrue(target.isPresent(), overlay + ": " + sc.where() + ": " + call.variable() + "=" + one + " leads to no pod's port");
          assertEquals(call.callee(), target.get().endpoint().labels().get("app.kubernetes.io/name"), sc.where() + ": " + one);
        }
      }
    }
  }

  /** The workers spread their calls over every model server: a dns:/// target of a headless Service (one address per pod). */
  @ParameterizedTest
  @MethodSource("overlays")
  void workersSeeEveryModelServer(String overlay) {
    Manifests m = Manifests.of(overlay);
    ClusterModel cluster = new ClusterModel(m);
    for (Manifests.ServiceContainer sc : m.serviceContainers()) {
      if (sc.service() != Services.ABLATION_WORKER) continue;
      String address = sc.env().value("RESGRAPH_MODEL_SERVER_ADDRESS").orElseThrow();
      assertTrue(address.startsWith("dns:///"), sc.where() + ": " + address + " is not a dns:/// target");
      String service = address.substring("dns:///".length()).split("\\.")[0];
      assertTrue(cluster.services.stream().anyMatch(s -> s.name().equals(service) && s.headless()), overlay + ": Service " + service + " is not headless");
    }
  }

  @ParameterizedTest
  @MethodSource("overlays")
  void everyServiceReachesThePodsOfOneWorkloadOnPortsTheyServe(String overlay) {
    Manifests m = Manifests.of(overlay);
    ClusterModel cluster = new ClusterModel(m);
    for (ClusterModel.Svc s : cluster.services) {
      List<ClusterModel.Endpoint> pods = cluster.selected(s);
      assertEquals(1, pods.size(), overlay + ": Service " + s.name() + " selects " + pods.stream().map(ClusterModel.Endpoint::name).toList());
      for (IntOrString target : s.ports().values()) {
        boolean served = target.getIntVal() != null ? pods.get(0).ports().stream().anyMatch(p -> p.number() == target.getIntVal())
            : pods.get(0).port(target.getStrVal()).isPresent();
        assertTrue(served, overlay + ": Service " + s.name() + " targets " + target + ", which " + pods.get(0).name() + " does not serve");
      }
      assertFalse(s.ports().isEmpty(), overlay + ": Service " + s.name() + " has no port");
    }
  }
}
