package resgraph.k8s;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.apps.StatefulSet;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * What an overlay runs, as the network sees it: a pod for each workload (its labels, its named
 * ports), the pods, bootstrap Service and ingress policies that Strimzi's operator makes from a
 * Kafka resource (as its documentation describes them: not in the manifests, so made here), and
 * the peers outside the namespace that flows go to or come from. Resolves a service's configured
 * address (host:port, dns:///host:port, bolt://host:port) through the Services to a pod and port.
 */
final class ClusterModel {

  /**
   * A pod, or a peer outside the cluster ({@code namespace} null, an {@code ip}); {@code ports}
   * are its named ports and the numbered ones it serves (name null).
   */
  record Endpoint(String name, String namespace, Map<String, String> labels, String ip, List<Port> ports) {
    boolean inNamespace() {
      return Manifests.NAMESPACE.equals(namespace);
    }

    Map<String, String> namespaceLabels() {
      return namespace == null ? Map.of() : Map.of("kubernetes.io/metadata.name", namespace);
    }

    Optional<Port> port(String name) {
      return ports.stream().filter(p -> name.equals(p.name())).findFirst();
    }
  }

  record Port(String name, int number, String protocol) {}

  /** Where an address leads: a pod and the port it serves there. */
  record Target(Endpoint endpoint, Port port) {}

  /** A Service: its name, the pods it selects, its ports (port -> target, a number or a pod's port name). */
  record Svc(String name, Map<String, String> selector, boolean headless, Map<Integer, IntOrString> ports) {}

  /** Peers outside the namespace: the cluster's DNS, KEDA's operator, Prometheus, a user, the Hugging Face hub, the Kubernetes API. */
  static final Endpoint DNS = new Endpoint("kube-dns", "kube-system", Map.of("k8s-app", "kube-dns"), null,
      List.of(new Port("dns", 53, "UDP"), new Port("dns-tcp", 53, "TCP")));
  static final Endpoint KEDA = new Endpoint("keda-operator", "keda", Map.of("app", "keda-operator"), null, List.of());
  static final Endpoint PROMETHEUS = new Endpoint("prometheus", "monitoring", Map.of("app.kubernetes.io/name", "prometheus"), null, List.of());
  static final Endpoint OTHER_NAMESPACE = new Endpoint("a pod elsewhere", "elsewhere", Map.of("app", "other"), null, List.of());
  static final Endpoint USER = new Endpoint("a user", null, Map.of(), "203.0.113.10", List.of());
  static final Endpoint HUB = new Endpoint("huggingface.co", null, Map.of(), "198.51.100.20", List.of(new Port("https", 443, "TCP")));
  static final Endpoint API = new Endpoint("the Kubernetes API", null, Map.of(), "172.18.0.2",
      List.of(new Port("https", 443, "TCP"), new Port("apiserver", 6443, "TCP")));
  /** A pod of the namespace that is none of resgraph's: a debugging shell, say. */
  static final Endpoint STRANGER = new Endpoint("a stranger pod", Manifests.NAMESPACE, Map.of("app.kubernetes.io/name", "debug"), null, List.of());

  final Manifests manifests;
  final List<Endpoint> endpoints = new ArrayList<>();
  final List<Svc> services = new ArrayList<>();
  final List<NetworkPolicy> policies = new ArrayList<>();

  ClusterModel(Manifests m) {
    this.manifests = m;
    for (Manifests.Workload w : m.workloads()) {
      List<Port> ports = new ArrayList<>();
      for (Container c : w.template().getSpec().getContainers()) {
        c.getPorts().forEach(p -> ports.add(new Port(p.getName(), p.getContainerPort(), p.getProtocol() == null ? "TCP" : p.getProtocol())));
      }
      endpoints.add(new Endpoint(w.name(), Manifests.NAMESPACE, w.template().getMetadata().getLabels(), null, ports));
    }
    for (Service s : m.all(Service.class)) {
      Map<Integer, IntOrString> ports = new LinkedHashMap<>();
      for (ServicePort p : s.getSpec().getPorts()) ports.put(p.getPort(), p.getTargetPort() == null ? new IntOrString(p.getPort()) : p.getTargetPort());
      services.add(new Svc(s.getMetadata().getName(), s.getSpec().getSelector(), "None".equals(s.getSpec().getClusterIP()), ports));
    }
    policies.addAll(m.all(NetworkPolicy.class));
    m.all(Strimzi.Kafka.class).forEach(this::addStrimzi);
    endpoints.addAll(List.of(DNS, KEDA, PROMETHEUS, OTHER_NAMESPACE, USER, HUB, API, STRANGER));
  }

  /**
   * Strimzi's pods of a Kafka named N (brokers, entity operator, exporter; labelled as its
   * operator labels them), the bootstrap Service N-kafka-bootstrap, and the ingress policy it
   * makes for the brokers: KRaft's 9090 from the brokers, replication's 9091 from its own pods,
   * each listener's port from the listener's networkPolicyPeers (everyone when there are none).
   */
  private void addStrimzi(Strimzi.Kafka kafka) {
    String n = kafka.metadata().getName();
    Map<String, String> brokers = Map.of("strimzi.io/cluster", n, "strimzi.io/kind", "Kafka", "strimzi.io/name", n + "-kafka",
        "app.kubernetes.io/name", "kafka", "app.kubernetes.io/instance", n);
    List<Port> brokerPorts = new ArrayList<>(List.of(new Port("tcp-ctrlplane", 9090, "TCP"), new Port("tcp-replication", 9091, "TCP")));
    kafka.spec().kafka().listeners().forEach(l -> brokerPorts.add(new Port("tcp-" + l.name(), l.port(), "TCP")));
    endpoints.add(new Endpoint(n + "-kafka", Manifests.NAMESPACE, brokers, null, brokerPorts));
    endpoints.add(new Endpoint(n + "-entity-operator", Manifests.NAMESPACE, Map.of("strimzi.io/cluster", n, "strimzi.io/kind", "Kafka",
        "strimzi.io/name", n + "-entity-operator", "app.kubernetes.io/name", "entity-operator", "app.kubernetes.io/instance", n), null, List.of()));
    if (kafka.spec().kafkaExporter() != null) {
      endpoints.add(new Endpoint(n + "-kafka-exporter", Manifests.NAMESPACE, Map.of("strimzi.io/cluster", n, "strimzi.io/kind", "Kafka",
          "strimzi.io/name", n + "-kafka-exporter", "app.kubernetes.io/name", "kafka-exporter", "app.kubernetes.io/instance", n), null,
          List.of(new Port("tcp-prometheus", 9404, "TCP"))));
    }
    Map<Integer, IntOrString> listenerPorts = new LinkedHashMap<>();
    kafka.spec().kafka().listeners().forEach(l -> listenerPorts.put(l.port(), new IntOrString(l.port())));
    services.add(new Svc(Strimzi.bootstrapService(kafka), Map.of("strimzi.io/cluster", n, "strimzi.io/name", n + "-kafka"), false, listenerPorts));

    NetworkPolicyBuilder policy = new NetworkPolicyBuilder().withNewMetadata().withName(n + "-network-policy-kafka").endMetadata()
        .withNewSpec().withNewPodSelector().addToMatchLabels("strimzi.io/name", n + "-kafka").endPodSelector().withPolicyTypes("Ingress")
        .addNewIngress().addNewFrom().withNewPodSelector().addToMatchLabels("strimzi.io/name", n + "-kafka").endPodSelector().endFrom()
        .addNewPort().withPort(new IntOrString(9090)).endPort().endIngress()
        .addNewIngress().addNewFrom().withNewPodSelector().addToMatchLabels("strimzi.io/cluster", n).endPodSelector().endFrom()
        .addNewPort().withPort(new IntOrString(9091)).endPort().endIngress()
        .endSpec();
    for (Strimzi.Listener l : kafka.spec().kafka().listeners()) {
      List<NetworkPolicyPeer> peers = l.networkPolicyPeers() == null ? List.of() : l.networkPolicyPeers();
      policy.editSpec().addNewIngress().withFrom(peers).addNewPort().withPort(new IntOrString(l.port())).endPort().endIngress().endSpec();
    }
    policies.add(policy.build());
  }

  /** Where an address leads; empty when no Service of the overlay is its host, or no pod serves its port. */
  Optional<Target> resolve(String address) {
    String hostPort = address.replaceFirst("^[a-z]+://(/)?", "");
    int colon = hostPort.lastIndexOf(':');
    String host = hostPort.substring(0, colon).replaceFirst("\\.svc(\\.cluster\\.local)?$", "");
    int port = Integer.parseInt(hostPort.substring(colon + 1));
    String[] parts = host.split("\\.");
    if (parts.length < 2 || !parts[parts.length - 1].equals(Manifests.NAMESPACE)) return Optional.empty();
    String serviceName = parts[parts.length - 2];
    Optional<Svc> service = services.stream().filter(s -> s.name().equals(serviceName)).findFirst();
    if (service.isEmpty() || !service.get().ports().containsKey(port)) return Optional.empty();
    if (parts.length == 3 && !podOfStatefulSet(parts[0], service.get())) return Optional.empty();
    IntOrString target = service.get().ports().get(port);
    for (Endpoint e : selected(service.get())) {
      Optional<Port> p = target.getIntVal() != null
          ? e.ports().stream().filter(q -> q.number() == target.getIntVal()).findFirst()
          : e.port(target.getStrVal());
      if (p.isPresent()) return Optional.of(new Target(e, p.get()));
    }
    return Optional.empty();
  }

  /** POD.SERVICE.NS.svc names a pod of a StatefulSet whose governing Service is SERVICE, a headless one. */
  private boolean podOfStatefulSet(String pod, Svc service) {
    return service.headless() && manifests.all(StatefulSet.class).stream().anyMatch(s -> service.name().equals(s.getSpec().getServiceName())
        && pod.matches(Pattern.quote(s.getMetadata().getName()) + "-\\d+"));
  }

  List<Endpoint> selected(Svc service) {
    return endpoints.stream().filter(e -> e.inNamespace() && e.labels().entrySet().containsAll(service.selector().entrySet())).toList();
  }

  Endpoint endpoint(String name) {
    return endpoints.stream().filter(e -> e.name().equals(name)).findFirst().orElseThrow(() -> new AssertionError("no pod " + name));
  }

  static boolean matches(LabelSelector selector, Map<String, String> labels) {
    if (selector == null) return true;
    if (!labels.entrySet().containsAll(selector.getMatchLabels().entrySet())) return false;
    Map<String, String> l = new HashMap<>(labels);
    return selector.getMatchExpressions().stream().allMatch(x -> switch (x.getOperator()) {
      case "In" -> x.getValues().contains(l.get(x.getKey()));
      case "NotIn" -> !x.getValues().contains(l.get(x.getKey()));
      case "Exists" -> l.containsKey(x.getKey());
      case "DoesNotExist" -> !l.containsKey(x.getKey());
      default -> throw new AssertionError("selector operator " + x.getOperator());
    });
  }

  /** Whether a policy's peer (in the policy's namespace, ours) is this endpoint. */
  static boolean matches(NetworkPolicyPeer peer, Endpoint e) {
    if (peer.getIpBlock() != null) {
      // an ipBlock is for addresses outside the cluster; whether it also matches pods differs by network plugin
      return e.ip() != null && Cidr.contains(peer.getIpBlock().getCidr(), e.ip())
          && peer.getIpBlock().getExcept().stream().noneMatch(x -> Cidr.contains(x, e.ip()));
    }
    if (e.namespace() == null) return false;
    boolean namespaceMatches = peer.getNamespaceSelector() == null ? e.inNamespace() : matches(peer.getNamespaceSelector(), e.namespaceLabels());
    return namespaceMatches && matches(peer.getPodSelector(), e.labels());
  }

  /** IPv4 CIDR arithmetic, for ipBlocks. */
  static final class Cidr {
    private Cidr() {}

    static boolean contains(String cidr, String ip) {
      String[] c = cidr.split("/");
      int bits = Integer.parseInt(c[1]);
      long mask = bits == 0 ? 0 : (0xFFFFFFFFL << (32 - bits)) & 0xFFFFFFFFL;
      return (address(c[0]) & mask) == (address(ip) & mask);
    }

    private static long address(String ip) {
      long a = 0;
      for (String octet : ip.split("\\.")) a = (a << 8) | Integer.parseInt(octet);
      return a;
    }
  }
}
