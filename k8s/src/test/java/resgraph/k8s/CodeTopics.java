package resgraph.k8s;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.MockAdminClient;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.config.ConfigResource;
import resgraph.platform.kafka.Topics;

/** The topics exactly as the services create them ({@link Topics#ensure}), taken from Kafka's own mock admin client. */
final class CodeTopics {

  /** A topic: its partitions, replicas and the configs it is created with. */
  record Topic(String name, int partitions, int replicas, Map<String, String> configs) {}

  private CodeTopics() {}

  static Map<String, Topic> created(int replicationFactor) {
    try (MockAdminClient admin = MockAdminClient.create().numBrokers(replicationFactor).build()) {
      Topics.ensure(admin, replicationFactor);
      Set<String> names = admin.listTopics().names().get();
      Map<String, TopicDescription> described = admin.describeTopics(names).allTopicNames().get();
      List<ConfigResource> resources = names.stream().map(n -> new ConfigResource(ConfigResource.Type.TOPIC, n)).toList();
      Map<ConfigResource, Config> configs = admin.describeConfigs(resources).all().get();
      return described.values().stream().map(d -> new Topic(d.name(), d.partitions().size(), d.partitions().get(0).replicas().size(),
          configs.get(new ConfigResource(ConfigResource.Type.TOPIC, d.name())).entries().stream()
              .collect(Collectors.toMap(ConfigEntry::name, ConfigEntry::value))))
          .collect(Collectors.toMap(Topic::name, t -> t));
    } catch (ExecutionException e) {
      throw new IllegalStateException("the mock admin client refused " + e.getCause(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
