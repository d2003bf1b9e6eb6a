package resgraph.cli;

import com.fasterxml.jackson.databind.JsonNode;
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
    s.append(f("          %.1f MFLOP per ablation; %.1f GFLOP/s of a %.1f GFLOP/s GEMM peak (%.2f)%n",
        b.get("flops_per_ablation").asDouble() / 1e6, b.get("ablation_gflops").asDouble(), b.get("gemm_gflops").asDouble(),
        b.get("fraction_of_gemm_peak").asDouble()));
    if (b.has("end_to_end_s")) {
      JsonNode st = b.get("stages_s");
      s.append(f("pipeline  %.1f s end to end (the model loaded beforehand, in %.1f s); %,d raw edges; Neo4j %,d edges/s%n",
          b.get("end_to_end_s").asDouble(), b.get("model_load_s").asDouble(), b.get("raw_edges").asLong(),
          b.get("neo4j_edges_per_s").asLong()));
      s.append(f("          planning %.1f s, ablation %.1f s (summed over workers), Neo4j writes %.1f s (summed over the graph "
          + "service's writers), finalization %.1f s, "
          + "transport and waiting %.1f s%n", st.get("planning").asDouble(), st.get("ablation").asDouble(),
          st.get("neo4j_writes").asDouble(), st.get("finalization").asDouble(), st.get("transport_and_waiting").asDouble()));
      StringBuilder rss = new StringBuilder();
      b.get("peak_rss_mb").fields().forEachRemaining(e -> rss.append(f("%s %,d MB  ", e.getKey(), e.getValue().asLong())));
      s.append("memory    ").append(rss.toString().strip()).append('\n');
    }
    if (b.has("sweep")) {
      s.append("sweep     prompt tokens x SAE width: ablations/s (ms per layer)\n");
      for (JsonNode r : b.get("sweep")) {
        s.append(f("          %4d tokens, %6d latents: %,8.0f /s  (%,.0f ms for %,d candidates)%n", r.get("prompt_tokens").asInt(),
            r.get("d_sae").asInt(), r.get("ablations_per_s").asDouble(), r.get("ms_per_layer").asDouble(),
            r.get("candidates_per_layer").asInt()));
      }
    }
    s.append(f("targets   speedup >= 50: %s; fraction of GEMM peak >= 0.4: %s%s%n",
        mark(b.get("speedup_vs_naive").asDouble() >= 50), mark(b.get("fraction_of_gemm_peak").asDouble() >= 0.4),
        b.has("end_to_end_s") ? "; end to end <= 60 s: " + mark(b.get("end_to_end_s").asDouble() <= 60) : ""));
    return s.toString();
  }

  private static String mark(boolean met) {
    return met ? "met" : "MISSED";
  }

  private static String f(String format, Object... args) {
    return String.format(Locale.ROOT, format, args);
  }
}
