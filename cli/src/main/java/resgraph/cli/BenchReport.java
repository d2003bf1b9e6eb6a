package resgraph.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Locale;

/** The benchmark's figures for people, with the targets they are held to. */
final class BenchReport {

  private BenchReport() {}

  static String text(JsonNode b) {
    StringBuilder s = new StringBuilder();
    s.append(f("resgraph bench: %s shape (%d layers, d_model %d, %d heads, vocab %d, SAEs of %d latents), %d-token prompt%n",
        b.get("shape").asText(), b.get("n_layer").asInt(), b.get("d_model").asInt(), b.get("n_head").asInt(),
        b.get("vocab_size").asInt(), b.get("d_sae").asInt(), b.get("prompt_tokens").asInt()));
    s.append(f("compute   %,d candidates (L0 %.1f at layer 0); %,.0f ablations/s exact, %.2f/s naive: %,.0fx faster%n",
        b.get("candidates").asInt(), b.get("l0_layer0").asDouble(), b.get("ablations_per_s").asDouble(),
        b.get("naive_ablations_per_s").asDouble(), b.get("speedup_vs_naive").asDouble()));
    s.append(f("          (%,.0f ablations/s on the first prompt the process ablated)%n", b.get("cold_ablations_per_s").asDouble()));
    s.append(f("          %.1f MFLOP per ablation, dense; %.1f GFLOP/s of them against a %.1f GFLOP/s GEMM peak: %.2f of it%n",
        b.get("flops_per_ablation").asDouble() / 1e6, b.get("ablation_gflops").asDouble(), b.get("gemm_gflops").asDouble(),
        b.get("effective_gemm_fraction").asDouble()));
    if (b.has("methods")) {
      s.append("methods   per layer pair, every candidate: wall time, raw edges found, and rates\n");
      b.get("methods").fields().forEachRemaining(e -> s.append(f("          %-34s %8.2f s  %,10d edges  %,12d edges/s  %,10.0f latents/s%n",
          e.getKey() + (e.getValue().has("steps") ? " (" + e.getValue().get("steps").asInt() + " steps)" : ""),
          e.getValue().get("s_per_layer_pair").asDouble(), e.getValue().get("raw_edges").asLong() / Math.max(1, b.get("n_layer").asInt() - 1),
          e.getValue().get("edges_per_s").asLong(), e.getValue().get("latents_per_s").asDouble())));
    }
    if (b.has("end_to_end_s")) {
      s.append(f("pipeline  %s%n", job(b.get("cold_job"), "a first job, on a cold cluster and another prompt")));
      s.append(f("          %s%n", job(b, "the measured job, on the warm cluster")));
      s.append(f("          (workers: %d; graph-service writers: %d; the model loaded beforehand, in %.1f s)%n", b.get("workers").asInt(),
          b.get("graph_writers").asInt(), b.get("model_load_s").asDouble()));
      s.append(f("ingest    %,d raw edges/s: %,d edges of replayed effects stored in %.1f s by the graph service alone%n",
          b.get("ingest_edges_per_s").asLong(), b.get("ingest_edges").asLong(), b.get("ingest_s").asDouble()));
      StringBuilder ingestCpu = new StringBuilder();
      b.get("ingest_cpu_s").fields().forEachRemaining(e -> {
        if (e.getValue().asDouble() >= 0.05) ingestCpu.append(f("%s %.1f s, ", e.getKey(), e.getValue().asDouble()));
      });
      s.append(f("          CPU meanwhile: %s%n", ingestCpu.toString().replaceAll(", $", "")));
      s.append(f("store     %.2f MB of effects on Kafka a prompt; %.2f MB of edge files a prompt; Neo4j %.0f MB in all after these jobs%n",
          b.get("effects_bytes_per_prompt").asDouble() / 1e6, b.get("edge_file_bytes_per_prompt").asDouble() / 1e6,
          b.get("neo4j_store_bytes").asDouble() / 1e6));
      if (b.has("corpus_prompts")) {
        s.append(f("corpus    %d prompts in %.0f s: %.1f prompts/min; their ablations alone, in process: %.0f s; overhead %.2f%n",
            b.get("corpus_prompts").asInt(), b.get("corpus_s").asDouble(), b.get("corpus_prompts_per_min").asDouble(),
            b.get("corpus_compute_s").asDouble(), b.get("corpus_overhead").asDouble()));
        s.append(f("          stored a prompt: Neo4j %.2f MB, edge files %.2f MB%n", b.get("corpus_neo4j_bytes_per_prompt").asDouble() / 1e6,
            b.get("corpus_edge_file_bytes_per_prompt").asDouble() / 1e6));
      }
      StringBuilder rss = new StringBuilder();
      b.get("peak_rss_mb").fields().forEachRemaining(e -> rss.append(f("%s %,d MB  ", e.getKey(), e.getValue().asLong())));
      s.append("memory    ").append(rss.toString().strip()).append('\n');
      if (b.has("weights_mb") && b.get("peak_rss_mb").has("model-server")) {
        s.append(f("          model server %.2fx its float32 weights (%,d MB)%n",
            b.get("peak_rss_mb").get("model-server").asDouble() / b.get("weights_mb").asDouble(), b.get("weights_mb").asLong()));
      }
    }
    if (b.has("sweep")) {
      s.append("sweep     prompt tokens x SAE width: ablations/s (ms per layer)\n");
      for (JsonNode r : b.get("sweep")) {
        s.append(f("          %4d tokens, %6d latents: %,8.0f /s  (%,.0f ms for %,d candidates)%n", r.get("prompt_tokens").asInt(),
            r.get("d_sae").asInt(), r.get("ablations_per_s").asDouble(), r.get("ms_per_layer").asDouble(),
            r.get("candidates_per_layer").asInt()));
      }
    }
    if (b.has("corpus_query_p95_ms")) {
      StringBuilder q = new StringBuilder();
      b.get("corpus_query_p95_ms").fields().forEachRemaining(e -> q.append(f("%s %.1f ms  ", e.getKey(), e.getValue().asDouble())));
      s.append(f("queries   95th percentile over %,d stored demo prompts: %s%n", b.get("corpus_query_prompts").asInt(), q.toString().strip()));
    }
    s.append(f("targets   speedup >= 50: %s; dense FLOPs at >= 2.0 of the GEMM peak: %s%n",
        mark(b.get("speedup_vs_naive").asDouble() >= 50), mark(b.get("effective_gemm_fraction").asDouble() >= 2.0)));
    if (b.has("end_to_end_s")) {
      int writers = b.get("graph_writers").asInt();
      s.append(jobTargets("cold", b.get("cold_job"), writers)).append(jobTargets("warm", b, writers));
      s.append(f("          ingest >= 1,000,000 raw edges/s: %s%n", mark(b.get("ingest_edges_per_s").asLong() >= 1_000_000)));
      if (b.has("corpus_overhead")) s.append(f("          corpus overhead <= 0.25: %s%n", mark(b.get("corpus_overhead").asDouble() <= 0.25)));
    }
    if (b.has("corpus_query_p95_ms")) {
      double worst = 0;
      for (JsonNode ms : b.get("corpus_query_p95_ms")) worst = Math.max(worst, ms.asDouble());
      s.append(f("          corpus queries' 95th percentile < 100 ms: %s%n", mark(worst < 100)));
    }
    return s.toString();
  }

  /** One job's figures on a line and its stages and CPU use on the next two. */
  private static String job(JsonNode job, String label) {
    JsonNode st = job.get("stages_s");
    double e2e = job.get("end_to_end_s").asDouble();
    StringBuilder cpu = new StringBuilder();
    job.get("cpu_s").fields().forEachRemaining(e -> cpu.append(f("%s %.1f s, ", e.getKey(), e.getValue().asDouble())));
    return f("%s: %.1f s end to end; %,d raw edges; stored %,d edges/s per writer (edge files and Neo4j)%n"
        + "            planning %.1f s, ablation %.1f s (summed over workers), storing %.1f s (summed over writers), "
        + "finalization %.1f s, transport and waiting %.1f s%n"
        + "            CPU while it ran: %s (%.1f cores' worth)",
        label, e2e, job.get("raw_edges").asLong(), job.get("store_edges_per_s").asLong(), st.get("planning").asDouble(),
        st.get("ablation").asDouble(), st.get("store_writes").asDouble(), st.get("finalization").asDouble(),
        st.get("transport_and_waiting").asDouble(), cpu.toString().replaceAll(", $", ""),
        sum(job.get("cpu_s")) / e2e);
  }

  /** The job's time target and its stage rule, on a line. */
  private static String jobTargets(String label, JsonNode job, int writers) {
    Stage busiest = busiestOtherStage(job, writers);
    return f("          %s job: end to end <= 60 s: %s; no stage but ablation over half of it: %s (busiest: %s, %.0f%%)%n",
        label, mark(job.get("end_to_end_s").asDouble() <= 60), mark(busiest.share() <= 0.5), busiest.name(),
        100 * busiest.share());
  }

  /**
   * The stage other than the ablation compute with the largest share of the job's time, and that
   * share. The writers work at once, so the store writes count as one writer's part.
   */
  private static Stage busiestOtherStage(JsonNode job, int writers) {
    JsonNode st = job.get("stages_s");
    Stage busiest = new Stage("", -1);
    for (String stage : List.of("planning", "store_writes", "finalization", "transport_and_waiting")) {
      double seconds = st.get(stage).asDouble() / (stage.equals("store_writes") ? writers : 1);
      double share = seconds / job.get("end_to_end_s").asDouble();
      if (share > busiest.share()) busiest = new Stage(stage.replace('_', ' '), share);
    }
    return busiest;
  }

  private record Stage(String name, double share) {}

  private static double sum(JsonNode values) {
    double total = 0;
    for (JsonNode v : values) total += v.asDouble();
    return total;
  }

  private static String mark(boolean met) {
    return met ? "met" : "MISSED";
  }

  private static String f(String format, Object... args) {
    return String.format(Locale.ROOT, format, args);
  }
}
