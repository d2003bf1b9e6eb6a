package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import resgraph.cluster.LocalCluster;
import resgraph.model.Attribution;
import resgraph.model.Gpt2Tokenizer;
import resgraph.model.Chain;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.SyntheticModel;
import resgraph.model.SyntheticModel.Spec;
import resgraph.model.Trace;
import resgraph.platform.Folders;
import resgraph.platform.job.JobRules;
import resgraph.v1.Job;
import resgraph.v1.ModelRef;
import resgraph.v1.Timings;

/**
 * {@code resgraph bench}: how fast, on this machine, with figures. A synthetic model of the chosen
 * shape is made from a seed (GPT-2 small's shape with 24576-latent SAEs by default) and written in
 * the formats a user's model comes in, then the compute is measured in-process and whole jobs are
 * run through a fresh local cluster that loads it: a first one while its JVMs are cold, then the
 * measured one with them warm.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
    description = "Measure ablation throughput, the speedup over the seed's procedure, the share of GEMM peak, "
        + "whole jobs through the local cluster (a first one cold, then one warm), and how cost grows with prompt "
        + "length and SAE width.")
final class BenchCommand implements Callable<Integer> {

  /** The longest prompt the approximate methods are timed on. */
  private static final int METHODS_MAX_TOKENS = 256;

  /** Where in {@link #TEXT} the first, cold job's prompt starts, so that it differs from the measured job's. */
  private static final int COLD_OFFSET = 60;
  /** Where the corpus's prompts start in the text: each one token further on. */
  private static final int CORPUS_OFFSET = 3;

  /** Text whose tokens make the benchmark's prompts; any length is cut from it. */
  static final String TEXT = "When Mary and John went to the store, John gave a drink to Mary because she had carried "
      + "the heavy bags all the way from the station. The next morning the two friends walked along the river, "
      + "talking about the books they had read and the places they hoped to visit before the end of the year. "
      + "In the old town the market was already busy: fishermen sold the night's catch, bakers stacked warm bread, "
      + "and children ran between the stalls while their parents argued about prices. Later, at the museum, "
      + "a guide explained how the bridge had been rebuilt three times after floods, each time a little higher.";

  @Option(names = "--shape", defaultValue = "gpt2-small", paramLabel = "gpt2-small|demo|tiny",
      description = "The synthetic model's shape (default: ${DEFAULT-VALUE}).")
  String shape;

  @Option(names = "--prompt-tokens", defaultValue = "24", description = "Prompt length with BOS (default: ${DEFAULT-VALUE}).")
  int promptTokens;

  @Option(names = "--batch", defaultValue = "256", description = "Latents per batched pass in process (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--task-size", defaultValue = "" + JobRules.DEFAULT_TASK_BATCH_SIZE,
      description = "Latents per ablation task in the cluster, at most (default: ${DEFAULT-VALUE}).")
  int taskSize;

  @Option(names = "--workers", defaultValue = "2", description = "Workers in the end-to-end run (default: ${DEFAULT-VALUE}).")
  int workers;

  @Option(names = "--no-sweep", description = "Skip the prompt-length and SAE-width sweep.")
  boolean noSweep;

  @Option(names = "--no-cluster", description = "Skip the end-to-end run through the local cluster.")
  boolean noCluster;

  @Option(names = "--corpus-prompts", defaultValue = "50",
      description = "Prompts of the corpus run through the cluster, and ablated in process beside it; 0 skips it (default: ${DEFAULT-VALUE}).")
  int corpusPrompts;

  @Option(names = "--query-prompts", defaultValue = "1000",
      description = "Demo-shape prompts stored in a second cluster to time the corpus Cypher recipes over; 0 skips it (default: ${DEFAULT-VALUE}).")
  int queryPrompts;

  @Option(names = "--json", description = "Print one JSON object instead of text.")
  boolean json;

  @Override
  public Integer call() throws Exception {
    Spec spec = Spec.named(shape);
    if (promptTokens < 2 || promptTokens > spec.n_positions()) {
      throw new IllegalArgumentException("--prompt-tokens must be 2.." + spec.n_positions() + " for " + shape);
    }
    ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode out = mapper.createObjectNode();
    out.put("shape", shape);
    out.put("n_layer", spec.n_layer()).put("d_model", spec.n_embd()).put("n_head", spec.n_head())
        .put("vocab_size", spec.vocab_size()).put("d_sae", spec.d_sae());
    out.put("prompt_tokens", promptTokens);

    // Written in GPT-2's and SAELens's formats and loaded from there, in process and by the cluster's
    // model server, as a user's model is: the load is part of what peak_rss_mb measures.
    Path files = Files.createTempDirectory("resgraph-bench-model-");
    try {
      say("writing a synthetic " + shape + " model to " + files);
      SyntheticModel.write(spec, files, SyntheticModel.Format.PLAIN);
      measure(spec, files, out);
    } finally {
      Folders.delete(files);
    }
    System.out.println(json ? mapper.writeValueAsString(out) : BenchReport.text(out));
    return 0;
  }

  private void measure(Spec spec, Path files, ObjectNode out) throws Exception {
    ModelRef ref = ModelRef.newBuilder().setModel(files.resolve("model").toString()).setSaes(files.resolve("saes").toString()).build();
    try (SaeModel m = load(files)) {
      // what the model server's resident memory (peak_rss_mb) is measured against
      out.put("weights_mb", m.weightBytes() >> 20);
      Trace t = m.trace(prompt(promptTokens));
      Chain chain = m.chain(null, null, List.of());
      Site first = chain.sites().get(0);
      double l0 = IntStream.range(1, t.length()).mapToDouble(p -> t.acts(first)[p].latents().length).average().orElse(0);
      out.put("l0_layer0", Math.round(l0 * 10) / 10.0);
      // timed as the cluster's warm job runs: on a process that has ablated another prompt through
      // every site, so that neither the JIT's first compilations nor the allocator's first pages are in it
      say("ablating every candidate of layers 0.." + (spec.n_layer() - 2) + ", on another prompt first");
      ComputeBench.Result cold = ComputeBench.exact(m, m.trace(prompt(promptTokens, COLD_OFFSET)), chain, batch, 0);
      ComputeBench.Result r = ComputeBench.exact(m, t, chain, batch, 4);
      double gemm = ComputeBench.gemmGflops(spec.n_embd(), spec.d_sae(), batch);
      out.put("candidates", r.candidates());
      out.put("ablations_per_s", round(r.perSecond()));
      out.put("cold_ablations_per_s", round(cold.perSecond()));
      out.put("naive_ablations_per_s", round(r.naivePerSecond()));
      out.put("naive_sample", r.naiveSample());
      out.put("speedup_vs_naive", round(r.perSecond() / r.naivePerSecond()));
      out.put("flops_per_ablation", Math.round(r.flops() / r.candidates()));
      out.put("gemm_gflops", round(gemm));
      out.put("ablation_gflops", round(r.gflops()));
      out.put("effective_gemm_fraction", round(r.gflops() / gemm));
      out.put("ablation_raw_edges", r.rawEdges());
      if (promptTokens > METHODS_MAX_TOKENS) {
        say("the approximate methods are not timed beyond " + METHODS_MAX_TOKENS + " tokens: their gradients take a pass"
            + " through every position per downstream latent, far longer than the exact ablations there");
      } else {
        say("the approximate methods over the same chain");
        ObjectNode methods = out.putObject("methods");
        methodFigures(methods.putObject("ablation"), ComputeBench.cost(r, chain));
        methodFigures(methods.putObject("attribution"), ComputeBench.approximate(m, t, chain, Attribution.Method.ATTRIBUTION, 1));
        methodFigures(methods.putObject("integrated-gradients").put("steps", JobRules.DEFAULT_IG_STEPS),
            ComputeBench.approximate(m, t, chain, Attribution.Method.INTEGRATED_GRADIENTS, JobRules.DEFAULT_IG_STEPS));
      }
    }

    if (!noCluster) {
      List<int[]> corpus = IntStream.range(0, corpusPrompts).mapToObj(i -> prompt(promptTokens, CORPUS_OFFSET + i)).toList();
      PipelineBench.Result p = PipelineBench.run(ref, Gpt2Tokenizer.decodeAll(prompt(promptTokens, COLD_OFFSET), 1),
          Gpt2Tokenizer.decodeAll(prompt(promptTokens), 1), corpus.stream().map(t -> Gpt2Tokenizer.decodeAll(t, 1)).toList(), workers,
          taskSize, this::say);
      jobFigures(out, p.warm());
      out.put("model_load_s", round(p.modelLoadSeconds()));
      out.put("workers", workers);
      out.put("graph_writers", LocalCluster.GRAPH_WRITERS);
      out.put("ingest_edges_per_s", Math.round(p.ingest().edgesPerSecond()));
      out.put("ingest_edges", p.ingest().edges());
      out.put("ingest_s", round(p.ingest().seconds()));
      ObjectNode ingestCpu = out.putObject("ingest_cpu_s");
      p.ingest().cpuSeconds().forEach((name, seconds) -> ingestCpu.put(name, round(seconds)));
      out.put("effects_bytes_per_prompt", p.ingest().effectsBytesPerJob());
      out.put("edge_file_bytes_per_prompt", p.edgeFileBytesPerPrompt());
      out.put("neo4j_store_bytes", p.neo4jStoreBytes());
      ObjectNode rss = out.putObject("peak_rss_mb");
      p.peakRssMb().forEach(rss::put);
      jobFigures(out.putObject("cold_job"), p.cold());
      if (p.corpus() != null) {
        CorpusBench.Run run = p.corpus().run();
        say("ablating the corpus's " + corpus.size() + " prompts in process, the cluster stopped");
        double compute = 0;
        try (SaeModel m = load(files)) {
          Chain chain = m.chain(null, null, List.of());
          for (int[] tokens : corpus) compute += ComputeBench.exact(m, m.trace(tokens), chain, batch, 0).seconds();
        }
        out.put("corpus_prompts", run.prompts());
        out.put("corpus_s", round(run.seconds()));
        out.put("corpus_prompts_per_min", round(run.promptsPerMinute()));
        out.put("corpus_compute_s", round(compute));
        out.put("corpus_overhead", round(run.seconds() / compute - 1));
        out.put("corpus_neo4j_bytes_per_prompt", p.corpus().neo4jBytesPerPrompt());
        out.put("corpus_edge_file_bytes_per_prompt", p.corpus().edgeFileBytesPerPrompt());
      }
    }

    if (queryPrompts > 0) {
      Spec demo = Spec.named("demo");
      // lengths 8 to 15, each from a different place in the text, so that the prompts differ
      List<String> prompts = IntStream.range(0, queryPrompts)
          .mapToObj(i -> Gpt2Tokenizer.decodeAll(prompt(Math.min(demo.n_positions(), 8 + (i / 97) % 8), i % 97), 1)).toList();
      CorpusBench.Queries q = CorpusBench.queries(ModelRef.newBuilder().setModel("synthetic:demo").setSaes("synthetic:demo").build(),
          prompts, workers, this::say);
      out.put("corpus_query_prompts", q.prompts());
      ObjectNode p95 = out.putObject("corpus_query_p95_ms");
      q.millis().forEach((recipe, ms) -> p95.put(recipe, round(CorpusBench.Queries.p95(ms))));
    }

    if (!noSweep) {
      ArrayNode sweep = out.putArray("sweep");
      for (int width : new int[] {spec.d_sae() / 4, spec.d_sae()}) {
        say("sweep: SAEs of " + width + " latents");
        try (SaeModel m = SyntheticModel.build(spec.toBuilder().dSae(width).build(), SaeModel.defaultDevice())) {
          for (int n : new int[] {8, 32, 128, 512, 1024}) {
            if (n > spec.n_positions()) continue;
            Trace t = m.trace(prompt(n));
            int middle = spec.n_layer() / 2 - 1;
            ComputeBench.Result r = ComputeBench.exact(m, t, new Chain(List.of(Site.pre(middle), Site.pre(middle + 1))), batch, 0);
            sweep.addObject().put("prompt_tokens", n).put("d_sae", width).put("candidates_per_layer", r.candidates())
                .put("ablations_per_s", round(r.perSecond())).put("ms_per_layer", round(1000 * r.seconds()))
                .put("gflops", round(r.gflops()));
          }
        }
      }
    }
  }

  private static SaeModel load(Path files) {
    return SaeModel.load(files.resolve("model"), files.resolve("saes"), null, null, SaeModel.defaultDevice());
  }

  /** BOS and the first n - 1 tokens of the benchmark text, repeated if need be. */
  static int[] prompt(int n) {
    return prompt(n, 0);
  }

  /** BOS and n - 1 tokens of the benchmark text from token {@code offset} on, wrapping around. */
  static int[] prompt(int n, int offset) {
    int[] text = Gpt2Tokenizer.encode(TEXT, false);
    int[] tokens = new int[n];
    tokens[0] = Gpt2Tokenizer.END_OF_TEXT;
    for (int i = 1; i < n; i++) tokens[i] = text[(offset + i - 1) % text.length];
    return tokens;
  }

  /** One job's time, edges, stages and CPU use, as fields of {@code out}. */
  private void jobFigures(ObjectNode out, PipelineBench.JobRun run) {
    Job job = run.job();
    Timings tm = job.getTimings();
    out.put("end_to_end_s", round(run.seconds()));
    out.put("raw_edges", job.getProgress().getEdgesWritten());
    // the writers' busy times overlap, so the rate is over the time of one writer
    double writing = tm.getWriting() / LocalCluster.GRAPH_WRITERS;
    out.put("store_edges_per_s", writing > 0 ? Math.round(job.getProgress().getEdgesWritten() / writing) : 0);
    ObjectNode stages = out.putObject("stages_s");
    stages.put("planning", round(tm.getPlanning()));
    stages.put("ablation", round(tm.getAblation()));
    stages.put("store_writes", round(tm.getWriting()));
    stages.put("finalization", round(tm.getFinalization()));
    // what is left of the run phase once its busiest stage, per worker or writer, is taken out: Kafka hand-offs and waiting
    double running = tm.getWall() - tm.getPlanning() - tm.getFinalization();
    stages.put("transport_and_waiting", round(Math.max(0, running - Math.max(tm.getAblation() / workers, writing))));
    ObjectNode cpu = out.putObject("cpu_s");
    run.cpuSeconds().forEach((name, seconds) -> cpu.put(name, round(seconds)));
  }

  private void say(String message) {
    System.err.println("resgraph bench: " + message);
  }

  private static void methodFigures(ObjectNode o, ComputeBench.MethodCost c) {
    o.put("s_per_layer_pair", round(c.secondsPerPair())).put("raw_edges", c.rawEdges()).put("edges_per_s", Math.round(c.edgesPerSecond()))
        .put("latents_per_s", round(c.latentsPerSecond()));
  }

  private static double round(double v) {
    return Math.round(v * 1000) / 1000.0;
  }
}
