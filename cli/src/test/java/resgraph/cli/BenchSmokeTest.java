package resgraph.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * resgraph bench on a tiny shape, so the command cannot rot: it times nothing and holds no figure
 * to a target (benchmarks are not tests), but every figure must be there and make sense.
 */
class BenchSmokeTest {

  @Test
  void benchReportsEveryFigureAndTheClusterFindsTheSameEdgesAsTheModelServer() throws Exception {
    Cli.Run r = Cli.resgraph("bench", "--shape", "tiny", "--prompt-tokens", "8", "--workers", "1", "--corpus-prompts", "2",
        "--query-prompts", "3", "--json");
    assertEquals(0, r.code(), r.err());
    JsonNode b = new ObjectMapper().readTree(r.out());
    for (String positive : List.of("candidates", "ablations_per_s", "cold_ablations_per_s", "naive_ablations_per_s", "speedup_vs_naive", "gemm_gflops",
        "flops_per_ablation", "ablation_gflops", "effective_gemm_fraction", "end_to_end_s", "raw_edges", "store_edges_per_s", "ingest_edges_per_s",
        "edge_file_bytes_per_prompt", "neo4j_store_bytes", "corpus_s", "corpus_prompts_per_min", "corpus_compute_s",
        "corpus_edge_file_bytes_per_prompt", "weights_mb")) {
      assertTrue(b.has(positive) && b.get(positive).asDouble() > 0, positive + " in " + b);
    }
    assertEquals(b.get("ablation_raw_edges").asLong(), b.get("raw_edges").asLong(),
        "the job through Kafka, workers and Neo4j stores exactly the edges the in-process ablations found");
    Set<String> components = new HashSet<>();
    b.get("peak_rss_mb").fieldNames().forEachRemaining(components::add);
    assertTrue(components.containsAll(List.of("kafka", "neo4j", "model-server", "graph-service", "orchestrator", "worker-1")),
        components.toString());
    for (JsonNode job : List.of(b, b.get("cold_job"))) {
      assertTrue(job.get("end_to_end_s").asDouble() > 0 && job.get("raw_edges").asLong() > 0, job.toString());
      for (String stage : List.of("planning", "ablation", "store_writes", "finalization", "transport_and_waiting")) {
        assertTrue(job.get("stages_s").has(stage), stage);
      }
      double cpu = 0;
      for (String c : components) cpu += job.get("cpu_s").get(c).asDouble();
      assertTrue(cpu > 0, "the job used some component's CPU: " + job.get("cpu_s"));
    }
    assertEquals(2, b.get("corpus_prompts").asInt());
    assertTrue(b.has("corpus_overhead") && b.has("corpus_neo4j_bytes_per_prompt"), b.toString());
    assertEquals(3, b.get("corpus_query_prompts").asInt());
    for (String recipe : List.of("most_active_latents", "strongest_upstream", "recurring_paths")) {
      assertTrue(b.get("corpus_query_p95_ms").get(recipe).asDouble() > 0, recipe + " in " + b.get("corpus_query_p95_ms"));
    }
    double ingestCpu = 0;
    for (JsonNode seconds : b.get("ingest_cpu_s")) ingestCpu += seconds.asDouble();
    assertTrue(ingestCpu > 0, "the replay used some CPU: " + b.get("ingest_cpu_s"));
    assertEquals(4, b.get("sweep").size(), "prompts of 8 and 32 tokens (tiny has no room for 128) at two SAE widths");
  }
}
