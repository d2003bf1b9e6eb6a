package resgraph.cli;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import resgraph.cluster.LocalCluster;
import resgraph.platform.Folders;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.v1.DescribeRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;

/**
 * Two whole jobs through a fresh local cluster (Kafka, workers, Neo4j, finalization), each timed
 * from Submit to the finished circuit: the first on JVMs that have run nothing yet, the second, on
 * another prompt of the same length, once they are warm; then the graph service's ingest alone,
 * and a corpus of prompts. A long-lived cluster runs like the
 * second; the first pays for compiling each service's hot code, mostly inside Neo4j.
 */
final class PipelineBench {

  /**
   * One job: its final state, its time and the CPU time each component spent while it ran (on a
   * machine with fewer cores than components, that says where the cores went).
   */
  record JobRun(Job job, double seconds, Map<String, Double> cpuSeconds) {}

  /**
   * Both jobs, how long the model took to load (before either job), each component's peak memory,
   * the graph service's ingest rate alone, and the stores' size: the measured job's edge files, and
   * Neo4j's whole store after everything above.
   */
  record Result(JobRun cold, JobRun warm, double modelLoadSeconds, Map<String, Long> peakRssMb, IngestBench.Result ingest,
      long edgeFileBytesPerPrompt, long neo4jStoreBytes, Corpus corpus) {}

  /** The corpus run (null when there was none), and what its prompts added to each store, per prompt. */
  record Corpus(CorpusBench.Run run, long neo4jBytesPerPrompt, long edgeFileBytesPerPrompt) {}

  /**
   * Copies of the measured job replayed at once to time ingest: enough that the rate is the steady
   * one, not the 0.7 s it takes this client to publish the first poll's worth (4 copies took 2.3 s).
   */
  private static final int INGEST_COPIES = 8;

  /** Clock ticks per second of /proc/PID/stat's CPU times (USER_HZ, 100 on Linux). */
  private static final double TICKS_PER_S = 100;

  private PipelineBench() {}

  static Result run(ModelRef ref, String coldPrompt, String prompt, List<String> corpusPrompts, int workers, int taskSize,
      Consumer<String> say) throws Exception {
    Path dir = Files.createTempDirectory("resgraph-bench-");
    LocalCluster cluster = LocalCluster.start(dir, new LocalCluster.Options(workers, ref.getModel(), ref.getSaes()), say);
    ManagedChannel channel = GrpcChannels.open(cluster.endpoints().orchestrator(), ClusterDir.credentials(cluster));
    ManagedChannel modelChannel = GrpcChannels.open(cluster.endpoints().modelServer(), ClusterDir.credentials(cluster));
    boolean measured = false;
    try {
      // the model server loads its model after it starts listening; a job should not wait for that
      say.accept("waiting for the model server to load the model");
      long loading = System.nanoTime();
      ModelServiceGrpc.newBlockingStub(modelChannel).describe(DescribeRequest.newBuilder()
          .setRef(ref).build());
      double loadSeconds = (System.nanoTime() - loading) / 1e9;
      JobServiceGrpc.JobServiceBlockingStub jobs = JobServiceGrpc.newBlockingStub(channel);
      say.accept("running a first job on the cold cluster");
      JobRun cold = job(jobs, cluster, ref, coldPrompt, taskSize);
      say.accept("running the job again, on another prompt, with the cluster warm");
      JobRun warm = job(jobs, cluster, ref, prompt, taskSize);
      long edgeFiles = bytes(dir.resolve("edges").resolve(warm.job().getId()));
      IngestBench.Result ingest = IngestBench.replay(cluster, warm.job(), INGEST_COPIES, say);
      Corpus corpus = null;
      if (!corpusPrompts.isEmpty()) {
        say.accept("running a corpus of " + corpusPrompts.size() + " prompts");
        long neo4jBefore = bytes(dir.resolve("neo4j")), filesBefore = bytes(dir.resolve("edges"));
        CorpusBench.Run run = CorpusBench.run(cluster, ref, corpusPrompts, taskSize, say);
        corpus = new Corpus(run, (bytes(dir.resolve("neo4j")) - neo4jBefore) / run.prompts(),
            (bytes(dir.resolve("edges")) - filesBefore) / run.prompts());
      }
      Map<String, Long> rss = new LinkedHashMap<>();
      for (LocalCluster.Proc p : cluster.processes()) rss.put(p.name(), peakRssMb(p.pid()));
      Result result = new Result(cold, warm, loadSeconds, rss, ingest, edgeFiles, bytes(dir.resolve("neo4j")), corpus);
      measured = true;
      return result;
    } finally {
      GrpcChannels.close(channel);
      GrpcChannels.close(modelChannel);
      cluster.stop();
      discard(dir, measured, say);
    }
  }

  /**
   * A bench's cluster folder (Neo4j's store, Kafka's log, the edge files: over 100 MB a run) goes
   * once its figures are taken; after a failure its logs are what explains it, so it stays.
   */
  static void discard(Path dir, boolean measured, Consumer<String> say) {
    if (!measured) {
      say.accept("the cluster's files and logs stay in " + dir);
      return;
    }
    try {
      Folders.delete(dir);
    } catch (IOException e) {
      say.accept("could not remove " + dir + ": " + e.getMessage());
    }
  }

  private static JobRun job(JobServiceGrpc.JobServiceBlockingStub jobs, LocalCluster cluster, ModelRef ref, String prompt,
      int taskSize) {
    Map<String, Long> ticksBefore = cpuTicks(cluster);
    long start = System.nanoTime();
    Job job = jobs.submit(JobSpec.newBuilder().setRef(ref)
        .setPrompt(prompt).setTaskBatchSize(taskSize).build());
    for (Iterator<Job> it = jobs.watch(GetJobRequest.newBuilder().setId(job.getId()).build()); it.hasNext(); ) job = it.next();
    double seconds = (System.nanoTime() - start) / 1e9;
    if (job.getPhase() != Phase.PHASE_DONE) throw new IllegalStateException("the benchmark job ended " + job.getPhase() + ": " + job.getError());
    return new JobRun(job, seconds, cpuSince(cluster, ticksBefore));
  }

  /** Each component's CPU seconds since it had {@code ticksBefore}. */
  static Map<String, Double> cpuSince(LocalCluster cluster, Map<String, Long> ticksBefore) {
    Map<String, Double> cpu = new LinkedHashMap<>();
    cpuTicks(cluster).forEach((name, ticks) -> cpu.put(name, (ticks - ticksBefore.get(name)) / TICKS_PER_S));
    return cpu;
  }

  /** Each component's CPU time so far (user and system), in clock ticks; 0 where /proc does not say. */
  static Map<String, Long> cpuTicks(LocalCluster cluster) {
    Map<String, Long> ticks = new LinkedHashMap<>();
    for (LocalCluster.Proc p : cluster.processes()) ticks.put(p.name(), cpuTicks(p.pid()));
    ticks.put("bench", cpuTicks(ProcessHandle.current().pid())); // this process: the client, and the ingest replay's producer
    return ticks;
  }

  private static long cpuTicks(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      // fields after the parenthesized command name: state is field 3, utime 14 and stime 15
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  /** The bytes of every file under the folder. */
  private static long bytes(Path folder) throws IOException {
    try (Stream<Path> files = Files.walk(folder)) {
      return files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
  }

  /** The process's peak resident set (VmHWM) in MB, or -1 where /proc does not say. */
  static long peakRssMb(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
      }
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
    return -1;
  }
}
