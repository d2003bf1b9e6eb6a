package resgraph.k8s;

import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPort;
import java.util.List;

/**
 * Kubernetes' NetworkPolicy semantics, for the namespace's policies: a pod that some policy selects
 * for a direction is isolated in it, and then a flow is allowed only when a rule of such a policy
 * admits its peer and port; a flow needs its source's egress and its destination's ingress. A peer
 * outside the namespace is not held by these policies on its own side.
 */
final class PolicyEvaluator {

  private final List<NetworkPolicy> policies;

  PolicyEvaluator(List<NetworkPolicy> policies) {
    this.policies = policies;
  }

  boolean allows(ClusterModel.Endpoint from, ClusterModel.Endpoint to, ClusterModel.Port port) {
    return (!from.inNamespace() || direction(from, to, port, true)) && (!to.inNamespace() || direction(to, from, port, false));
  }

  /** Whether {@code pod}'s egress (to {@code peer}) or ingress (from {@code peer}) on {@code port} is allowed. */
  private boolean direction(ClusterModel.Endpoint pod, ClusterModel.Endpoint peer, ClusterModel.Port port, boolean egress) {
    String type = egress ? "Egress" : "Ingress";
    List<NetworkPolicy> isolating = policies.stream()
        .filter(p -> ClusterModel.matches(p.getSpec().getPodSelector(), pod.labels()) && types(p).contains(type)).toList();
    if (isolating.isEmpty()) return true;
    // the port is the destination's: a named port is resolved on the pod the flow goes to
    ClusterModel.Endpoint destination = egress ? peer : pod;
    for (NetworkPolicy p : isolating) {
      if (egress) {
        for (var rule : p.getSpec().getEgress()) if (admits(rule.getTo(), rule.getPorts(), peer, destination, port)) return true;
      } else {
        for (var rule : p.getSpec().getIngress()) if (admits(rule.getFrom(), rule.getPorts(), peer, destination, port)) return true;
      }
    }
    return false;
  }

  /** policyTypes, or what Kubernetes takes when it is left out: Ingress, and Egress when there are egress rules. */
  private static List<String> types(NetworkPolicy p) {
    if (!p.getSpec().getPolicyTypes().isEmpty()) return p.getSpec().getPolicyTypes();
    return p.getSpec().getEgress().isEmpty() ? List.of("Ingress") : List.of("Ingress", "Egress");
  }

  private static boolean admits(List<NetworkPolicyPeer> peers, List<NetworkPolicyPort> ports, ClusterModel.Endpoint peer,
      ClusterModel.Endpoint destination, ClusterModel.Port port) {
    boolean peerOk = peers.isEmpty() || peers.stream().anyMatch(x -> ClusterModel.matches(x, peer));
    boolean portOk = ports.isEmpty() || ports.stream().anyMatch(x -> admits(x, destination, port));
    return peerOk && portOk;
  }

  private static boolean admits(NetworkPolicyPort rule, ClusterModel.Endpoint destination, ClusterModel.Port port) {
    String protocol = rule.getProtocol() == null ? "TCP" : rule.getProtocol();
    if (!protocol.equals(port.protocol())) return false;
    if (rule.getPort() == null) return true;
    if (rule.getPort().getIntVal() != null) {
      int low = rule.getPort().getIntVal();
      int high = rule.getEndPort() == null ? low : rule.getEndPort();
      return port.number() >= low && port.number() <= high;
    }
    return destination.port(rule.getPort().getStrVal()).filter(p -> p.number() == port.number() && p.protocol().equals(port.protocol())).isPresent();
  }
}
