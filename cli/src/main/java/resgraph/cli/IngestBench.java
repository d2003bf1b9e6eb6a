package resgraph.cli;

import com.google.protobuf.InvalidProtocolBufferException;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import resgraph.cluster.LocalCluster;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.kafka.KafkaClients;
import resgraph.platform.kafka.Topics;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobEvent;
import resgraph.v1.JobRecord;
import resgraph.v1.Phase;
import resgraph.v1.RegisterJobRequest;
import resgraph.v1.TaskEffects;

/**
 * The graph service's ingest rate alone: a finished job's effects, as the workers published them,
 * replayed into the warm cluster as copies of the job under new ids: once to warm the graph
 * service's code, then timed from the first publish to the last {@code stored} event. This
 * harness does what the orchestrator would for those copies (registers them, records them running
 * on resgraph.jobs); no model server or worker takes part.
 */
final class IngestBench {

  /**
   * Copies stored at once and how many edges they had, in how long, and each component's CPU
   * seconds meanwhile; and the bytes of one copy's effects on Kafka (uncompressed).
   */
  record Result(int copies, long edges, double seconds, Map<String, Double> cpuSeconds, long effectsBytesPerJob) {
    double edgesPerSecond() {
      return edges / seconds;
    }
  }

  private static final Duration DEADLINE = Duration.ofMinutes(10);

  private IngestBench() {}

  static Result replay(LocalCluster cluster, Job job, int copies, Consumer<String> say) throws InterruptedException {
    String kafka = cluster.endpoints().kafka();
    List<TaskEffects> tasks = read(kafka, Topics.EFFECTS, TaskEffects::parseFrom, t -> t.getJobId().equals(job.getId()));
    long edges = 0;
    for (TaskEffects t : tasks) for (var e : t.getEffectsList()) for (float d : e.getDeltaList()) if (d != 0) edges++;
    ManagedChannel channel = GrpcChannels.open(cluster.endpoints().graphService(), ClusterDir.credentials(cluster));
    try (KafkaProducer<String, com.google.protobuf.MessageLite> producer = KafkaClients.producer(kafka, "resgraph-bench-ingest")) {
      GraphServiceGrpc.GraphServiceBlockingStub graph = GraphServiceGrpc.newBlockingStub(channel);
      // a first round untimed: two jobs are not enough for the JIT compilers to be done with the storing code
      say.accept("replaying " + tasks.size() * copies + " tasks' effects (" + edges * copies + " raw edges) into the graph service, to warm it");
      round(cluster, graph, producer, job, tasks, copies, "warmup");
      say.accept("replaying them again, timed");
      Timed timed = round(cluster, graph, producer, job, tasks, copies, "ingest");
      return new Result(copies, edges * copies, timed.seconds(), timed.cpuSeconds(),
          tasks.stream().mapToLong(TaskEffects::getSerializedSize).sum());
    } finally {
      GrpcChannels.close(channel);
    }
  }

  private record Timed(double seconds, Map<String, Double> cpuSeconds) {}

  /**
   * One replay: the tasks as copies of the job named {@code <job>-<tag>-<i>}, registered and
   * recorded running as the orchestrator would, then published (built beforehand, so that the
   * clock and the CPU counts see the graph service more than this client), timed from the
   * first publish to the last {@code stored} event.
   */
  private static Timed round(LocalCluster cluster, GraphServiceGrpc.GraphServiceBlockingStub graph,
      KafkaProducer<String, com.google.protobuf.MessageLite> producer, Job job, List<TaskEffects> tasks, int copies, String tag)
      throws InterruptedException {
    List<ProducerRecord<String, com.google.protobuf.MessageLite>> records = new ArrayList<>();
    Set<String> ids = new HashSet<>();
    for (int i = 0; i < copies; i++) {
      Job copy = job.toBuilder().setId(job.getId() + "-" + tag + "-" + i).setPhase(Phase.PHASE_RUNNING).clearError().build();
      graph.registerJob(RegisterJobRequest.newBuilder().setJob(copy).build());
      producer.send(new ProducerRecord<>(Topics.JOBS, copy.getId(), JobRecord.newBuilder().setJob(copy).build()));
      ids.add(copy.getId());
      for (TaskEffects t : tasks) records.add(new ProducerRecord<>(Topics.EFFECTS, copy.getId(), t.toBuilder().setJobId(copy.getId()).build()));
    }
    producer.flush();
    // the graph service stores a task only for a job it has seen recorded
    for (String id : ids) awaitRecorded(graph, id);
    Map<String, Long> ticks = PipelineBench.cpuTicks(cluster);
    long start = System.nanoTime();
    for (ProducerRecord<String, com.google.protobuf.MessageLite> r : records) producer.send(r);
    producer.flush();
    List<JobEvent> stored = read(cluster.endpoints().kafka(), Topics.JOB_EVENTS, JobEvent::parseFrom,
        e -> ids.contains(e.getJobId()) && e.hasStored(), records.size());
    double seconds = (System.nanoTime() - start) / 1e9;
    Map<String, Double> cpu = PipelineBench.cpuSince(cluster, ticks);
    if (stored.size() < records.size()) throw new IllegalStateException("only " + stored.size() + " of " + records.size() + " replayed tasks were stored");
    return new Timed(seconds, cpu);
  }

  private static void awaitRecorded(GraphServiceGrpc.GraphServiceBlockingStub graph, String id) throws InterruptedException {
    long deadline = System.nanoTime() + DEADLINE.toNanos();
    while (true) {
      try {
        graph.getCircuit(GetCircuitRequest.newBuilder().setJobId(id).build());
        return;
      } catch (StatusRuntimeException e) {
        if (System.nanoTime() > deadline) throw e;
        Thread.sleep(50);
      }
    }
  }

  interface Parser<V> {
    V parse(byte[] bytes) throws InvalidProtocolBufferException;
  }

  interface Filter<V> {
    boolean test(V value);
  }

  /** Every record of the topic now that passes the filter, read from the start. */
  private static <V> List<V> read(String kafka, String topic, Parser<V> parser, Filter<V> keep) {
    return read(kafka, topic, parser, keep, -1);
  }

  /** Records of the topic that pass the filter, from the start: every one there is now, or (count >= 0) until there are count. */
  private static <V> List<V> read(String kafka, String topic, Parser<V> parser, Filter<V> keep, int count) {
    List<V> out = new ArrayList<>();
    try (KafkaConsumer<String, byte[]> consumer = KafkaClients.consumer(kafka, null, new ByteArrayDeserializer(), Map.of())) {
      List<TopicPartition> partitions = consumer.partitionsFor(topic).stream().map(p -> new TopicPartition(topic, p.partition())).toList();
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      long deadline = System.nanoTime() + DEADLINE.toNanos();
      while (System.nanoTime() < deadline) {
        for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(200))) {
          try {
            V v = parser.parse(r.value());
            if (keep.test(v)) out.add(v);
          } catch (InvalidProtocolBufferException e) {
            // not a message of this topic's type: nothing a benchmark counts
          }
        }
        if (count >= 0 ? out.size() >= count : partitions.stream().allMatch(p -> consumer.position(p) >= ends.get(p))) return out;
      }
      return out;
    }
  }
}
