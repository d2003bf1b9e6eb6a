package resgraph.cli;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import resgraph.cluster.LocalCluster;
import resgraph.v1.DescribeRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;

/**
 * One whole job through a fresh local cluster (Kafka, workers, Neo4j, finalization), timed from
 * Submit to the finished circuit, with each component's peak memory.
 */
final class PipelineBench {

  /** What the run found; the job's time leaves out loading the model, which the server does once. */
  record Result(Job job, double seconds, double modelLoadSeconds, Map<String, Long> peakRssMb) {}

  private PipelineBench() {}

  static Result run(String model, String prompt, int workers, int batch, Consumer<String> say) throws Exception {
    Path dir = Files.createTempDirectory("resgraph-bench-");
    LocalCluster cluster = LocalCluster.start(dir, new LocalCluster.Options(workers, model, model), say);
    ManagedChannel channel = RunCommand.channel(cluster.endpoints().orchestrator());
    ManagedChannel modelChannel = RunCommand.channel(cluster.endpoints().modelServer());
    try {
      // the model server loads its model after it starts listening; a job should not wait for that
      say.accept("waiting for the model server to load the model");
      long loading = System.nanoTime();
      ModelServiceGrpc.newBlockingStub(modelChannel).describe(DescribeRequest.newBuilder()
          .setRef(ModelRef.newBuilder().setModel(model).setSaes(model)).build());
      double loadSeconds = (System.nanoTime() - loading) / 1e9;
      JobServiceGrpc.JobServiceBlockingStub jobs = JobServiceGrpc.newBlockingStub(channel);
      say.accept("running the job");
      long start = System.nanoTime();
      Job job = jobs.submit(JobSpec.newBuilder().setRef(ModelRef.newBuilder().setModel(model).setSaes(model))
          .setPrompt(prompt).setPruning(Pruning.newBuilder().setTopK(10)).setTaskBatchSize(batch).build());
      for (Iterator<Job> it = jobs.watch(GetJobRequest.newBuilder().setId(job.getId()).build()); it.hasNext(); ) job = it.next();
      double seconds = (System.nanoTime() - start) / 1e9;
      if (job.getPhase() != Phase.PHASE_DONE) throw new IllegalStateException("the benchmark job ended " + job.getPhase() + ": " + job.getError());
      Map<String, Long> rss = new LinkedHashMap<>();
      for (LocalCluster.Proc p : cluster.processes()) rss.put(p.name(), peakRssMb(p.pid()));
      return new Result(job, seconds, loadSeconds, rss);
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      modelChannel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      cluster.stop();
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
