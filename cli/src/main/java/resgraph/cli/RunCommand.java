package resgraph.cli;

import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import resgraph.cluster.LocalCluster;
import resgraph.platform.Folders;
import resgraph.platform.grpc.ClientCredentials;
import resgraph.platform.grpc.GrpcChannels;
import resgraph.platform.job.JobRules;
import resgraph.v1.ChainSite;
import resgraph.v1.Circuit;
import resgraph.v1.ExportFormat;
import resgraph.v1.ExportRequest;
import resgraph.v1.ExportResponse;
import resgraph.v1.GetCircuitRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.GraphServiceGrpc;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc;
import resgraph.v1.JobSpec;
import resgraph.v1.Phase;
import resgraph.v1.Pruning;
import resgraph.v1.SaeSetting;
import resgraph.v1.StoreEdges;

/**
 * {@code resgraph run}: one circuit, start to finish. Uses the cluster named by --cluster, else
 * the one {@code up} left running, else starts a local cluster for this run and stops it after.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
    description = "Compute a circuit: submit a job, show its progress, write graph.json, raw_edges.parquet, graph.dot, graph.svg, "
        + "graph.html and neuronpedia.json, print the circuit. With --prompts, the same for each prompt of a corpus, and the "
        + "circuit they share.")
final class RunCommand implements Callable<Integer> {

  /** The corpus circuit's edges, and its table of nodes, at most. */
  private static final int CORPUS_TOP = 50;

  static final String DEFAULT_PROMPT = "When Mary and John went to the store, John gave a drink to";

  @Mixin ModelOptions model;
  @Mixin ClusterDir dir;

  @Option(names = "--prompt", defaultValue = DEFAULT_PROMPT, paramLabel = "TEXT",
      description = "The prompt (default: \"${DEFAULT-VALUE}\").")
  String prompt;

  @Option(names = "--prompts", paramLabel = "FILE",
      description = "A corpus instead: one prompt a line, or JSON lines {\"prompt\": ..., \"target\": ...}. Each prompt's files go "
          + "to a folder of its own under --out, with corpus.json, corpus_edges.parquet, corpus.svg and corpus.html beside them.")
  Path prompts;

  @Option(names = "--min-share", paramLabel = "S", defaultValue = "0.5",
      description = "With --prompts: the corpus circuit's edges are nonzero in at least this share of the prompts (default: ${DEFAULT-VALUE}).")
  double minShare;

  @Option(names = "--layers", paramLabel = "a:b",
      description = "SAEs of one kind of site at layers a..b-1: latents of a..b-2 are ablated, effects measured at a+1..b-1 "
          + "(default: every SAE).")
  String layers;

  @Option(names = "--sites", split = ",", paramLabel = "S,S,...",
      description = "The chain by name instead: 3 (resid_pre of block 3), 3m (resid_mid), 3p (resid_post), e.g. 3m,3p,4m,4p.")
  List<String> sites;

  @Option(names = "--target", paramLabel = "T", description = "Target position (default: the last token).")
  Integer target;

  static final class PruningOptions {
    @Option(names = "--top-k", paramLabel = "K",
        description = "Keep the K largest |effect| edges per layer pair (default: " + JobRules.DEFAULT_TOP_K + ").")
    Integer topK;

    @Option(names = "--threshold", paramLabel = "X", description = "Keep every edge with |effect| >= X instead.")
    Double threshold;
  }

  @ArgGroup(exclusive = true)
  PruningOptions pruning;

  @Option(names = "--batch", paramLabel = "N", defaultValue = "" + JobRules.DEFAULT_TASK_BATCH_SIZE,
      description = "Latents per ablation task (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--store-edges", paramLabel = "candidates|all", defaultValue = "candidates",
      description = "Which raw edges Neo4j holds as EFFECT relationships: the candidates (default), or all, for small jobs "
          + "queried edge by edge in Cypher. Every raw edge is in the Parquet edge files either way.")
  String storeEdges;

  @Mixin MethodOptions method;

  @Option(names = "--workers", defaultValue = "2", description = "Workers of a cluster started for this run (default: ${DEFAULT-VALUE}).")
  int workers;

  @Option(names = "--out", paramLabel = "DIR", defaultValue = "out", description = "Where the files go (default: ${DEFAULT-VALUE}).")
  Path out;

  @Option(names = "--cluster", paramLabel = "HOST:PORT", description = "A remote orchestrator instead of a local cluster.")
  String cluster;

  @Option(names = "--graph", paramLabel = "HOST:PORT",
      description = "The remote graph service (default: the --cluster host, port 50053).")
  String graph;

  @Override
  public Integer call() throws Exception {
    JobSpec spec = spec();
    List<CorpusRun.Prompt> corpus = prompts == null ? null : CorpusRun.read(prompts);
    if (corpus != null && !(minShare > 0 && minShare <= 1)) throw new IllegalArgumentException("--min-share must be in (0, 1], not " + minShare);
    LocalCluster temporary = null;
    String orchestrator, graphService, viewer = null;
    ClientCredentials credentials;
    if (cluster != null) {
      credentials = dir.credentials();
      orchestrator = cluster;
      graphService = graph != null ? graph : cluster.substring(0, cluster.lastIndexOf(':') + 1) + "50053";
    } else {
      LocalCluster running = LocalCluster.find(dir.path()).filter(LocalCluster::healthy).orElse(null);
      if (running == null) {
        Downloads.prefetch(model);
        System.err.println("resgraph: starting a local cluster for this run (./resgraph up keeps one running)");
        Path tmp = Files.createTempDirectory("resgraph-run-");
        LocalCluster c = LocalCluster.start(tmp, model.cluster(workers), msg -> System.err.println("resgraph: " + msg));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> remove(c)));
        running = temporary = c;
      } else {
        // the running cluster's model server reads its own cache: fetch into that one
        LocalCluster.Options o = running.options();
        Downloads.prefetch(model.model, model.saes, o.cacheDir(), o.hubUrl() != null ? o.hubUrl() : model.hubUrl);
      }
      credentials = ClusterDir.credentials(running);
      orchestrator = running.endpoints().orchestrator();
      graphService = running.endpoints().graphService();
      if (temporary == null) viewer = running.endpoints().viewer();
    }
    ManagedChannel jobs = GrpcChannels.open(orchestrator, credentials), graphs = GrpcChannels.open(graphService, credentials);
    try {
      if (corpus != null) {
        return CorpusRun.run(JobServiceGrpc.newBlockingStub(jobs), GraphServiceGrpc.newBlockingStub(graphs), spec, corpus, out, minShare,
            CORPUS_TOP);
      }
      Job job = JobServiceGrpc.newBlockingStub(jobs).submit(spec);
      System.err.println("resgraph: job " + job.getId() + " (" + method.name + "): " + job.getProgress().getCandidates() + " latents to ablate in "
          + job.getProgress().getTasksTotal() + " tasks over sites " + job.getChainList().stream().map(ChainSite::getSite)
          .collect(Collectors.joining(", ")));
      if (!job.getRelease().isEmpty()) System.err.println("resgraph: SAEs: release " + job.getRelease());
      for (SaeSetting s : job.getSaesSettingsList()) {
        System.err.println("resgraph:   " + s.getName() + ": " + s.getValue() + "  (" + s.getSource()
            + (s.getHooksCount() == 0 ? "" : "; " + String.join(", ", s.getHooksList())) + ")");
      }
      job = watch(JobServiceGrpc.newBlockingStub(jobs), job.getId());
      if (job.getPhase() != Phase.PHASE_DONE) {
        System.err.println("resgraph: job " + job.getId() + " " + phaseName(job.getPhase())
            + (job.getError().isEmpty() ? "" : ": " + job.getError()));
        return 1;
      }
      GraphServiceGrpc.GraphServiceBlockingStub g = GraphServiceGrpc.newBlockingStub(graphs);
      List<String> written = writeJobFiles(g, job.getId(), out);
      String id = job.getId();
      Circuit circuit = new Outage("graph service", graphs).call(() -> g.getCircuit(GetCircuitRequest.newBuilder().setJobId(id).build()));
      System.out.print(CircuitReport.text(circuit));
      System.err.println("resgraph: wrote " + String.join(", ", written) + " to " + out.toAbsolutePath());
      System.err.println("resgraph: open " + out.toAbsolutePath().resolve("graph.html") + " in a browser"
          + (viewer == null ? "" : ", or " + viewer + "/jobs/" + job.getId()));
      return 0;
    } finally {
      GrpcChannels.close(jobs);
      GrpcChannels.close(graphs);
      if (temporary != null) remove(temporary);
    }
  }

  /** Writes every export of the finished job, and graph.svg when Graphviz is there, into {@code dir}; the files' names. */
  static List<String> writeJobFiles(GraphServiceGrpc.GraphServiceBlockingStub g, String jobId, Path dir)
      throws IOException, InterruptedException {
    Files.createDirectories(dir);
    Outage graphService = new Outage("graph service", g.getChannel());
    List<String> written = new ArrayList<>();
    for (ExportFormat f : new ExportFormat[] {ExportFormat.EXPORT_FORMAT_JSON, ExportFormat.EXPORT_FORMAT_PARQUET,
        ExportFormat.EXPORT_FORMAT_DOT, ExportFormat.EXPORT_FORMAT_HTML, ExportFormat.EXPORT_FORMAT_NEURONPEDIA}) {
      ExportResponse r = graphService.call(() -> g.export(ExportRequest.newBuilder().setJobId(jobId).setFormat(f).build()));
      Files.write(dir.resolve(r.getFilename()), r.getContent().toByteArray());
      written.add(r.getFilename());
    }
    if (GraphvizSvg.draw(dir.resolve("graph.dot"), dir.resolve("graph.svg"))) written.add(3, "graph.svg");
    return written;
  }

  /** Stops a cluster started for this run, and removes its folder: its logs and data served only this run. */
  private static void remove(LocalCluster c) {
    c.stop();
    if (!Files.exists(c.dir())) return; // removed already (this runs again at exit)
    try {
      Folders.delete(c.dir());
    } catch (IOException e) {
      System.err.println("resgraph: could not remove " + c.dir() + ": " + e.getMessage());
    }
  }

  private JobSpec spec() {
    JobSpec.Builder s = JobSpec.newBuilder().setRef(model.ref()).setPrompt(prompt).setTaskBatchSize(batch)
        .setMethod(method.method()).setIgSteps(method.igSteps());
    if (layers != null) {
      String[] ab = layers.split(":", -1);
      if (ab.length != 2) throw new IllegalArgumentException("--layers must look like a:b, e.g. 0:6, not " + layers);
      try {
        s.setLayerStart(Integer.parseInt(ab[0].strip())).setLayerEnd(Integer.parseInt(ab[1].strip()));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("--layers must be two whole numbers a:b, not " + layers);
      }
    }
    if (target != null) s.setTarget(target);
    if (sites != null) s.addAllSites(sites);
    s.setStoreEdges(switch (storeEdges) {
      case "candidates" -> StoreEdges.STORE_EDGES_CANDIDATES;
      case "all" -> StoreEdges.STORE_EDGES_ALL;
      default -> throw new IllegalArgumentException("--store-edges must be candidates or all, not " + storeEdges);
    });
    // no rule given: the orchestrator writes in its default
    if (pruning != null && pruning.threshold != null) s.setPruning(Pruning.newBuilder().setThreshold(pruning.threshold));
    else if (pruning != null && pruning.topK != null) s.setPruning(Pruning.newBuilder().setTopK(pruning.topK));
    return s.build();
  }

  /** Follows the job to its end, drawing progress on stderr, through an orchestrator that goes away and comes back. */
  private static Job watch(JobServiceGrpc.JobServiceBlockingStub jobs, String id) {
    ProgressBar bar = new ProgressBar(System.err);
    Outage outage = new Outage("orchestrator", jobs.getChannel());
    GetJobRequest req = GetJobRequest.newBuilder().setId(id).build();
    AtomicReference<Job> last = new AtomicReference<>();
    outage.follow(() -> jobs.watch(req), job -> {
      last.set(job);
      bar.show(job);
    });
    bar.done();
    return last.get() != null ? last.get() : outage.call(() -> jobs.get(req));
  }

  static String phaseName(Phase p) {
    return p.name().substring("PHASE_".length()).toLowerCase(java.util.Locale.ROOT);
  }
}
