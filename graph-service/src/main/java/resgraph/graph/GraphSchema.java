package resgraph.graph;

import io.micronaut.context.annotation.Context;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Session;
import org.neo4j.driver.exceptions.ServiceUnavailableException;
import org.neo4j.driver.exceptions.SessionExpiredException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.Backoff;
import resgraph.platform.job.JobRules;

/**
 * The Neo4j data model of resgraph, which other services and users' Cypher depend on, and the
 * constraints that hold it together (created at startup, each {@code IF NOT EXISTS}).
 *
 * <pre>
 * (:Feature {model, saes, hook, layer, latent})
 *     One SAE latent of one (model, SAEs) pair; model and saes are the job's ModelRef strings, hook
 *     its site (blocks.5.hook_resid_pre), layer that site's layer. Unique on (model, saes, hook,
 *     latent), and shared by every job, so Cypher can ask which prompts use a feature.
 *
 * (:Job {id, prompt, model, saes, centering, method, ig_steps, tokens, token_strings, target,
 *        layer_start, layer_end, chain, release, saes_settings, task_batch_size, created,
 *        prediction_ids, prediction_tokens, prediction_values, finalized, raw_edges, circuit_edges,
 *        circuit_nodes, effect_shown})
 *     Unique on id. tokens are ids (BOS first when the SAEs prepend it), token_strings their text,
 *     target the measured position; chain the hooks of the job's sites in forward order, and
 *     layer_start..layer_end the layers they span; release the SAELens release the SAEs were
 *     recognised as; saes_settings each decision about the SAEs and its source, as text. centering is
 *     the ModelRef's Centering name. method is how the edges were found: "ablation", "attribution"
 *     or "integrated-gradients" (JobRules.methodName), and ig_steps integrated gradients' steps (absent
 *     otherwise). created is a datetime when the orchestrator gave one.
 *     prediction_* are the model's likeliest next tokens at the target (parallel lists). The job's
 *     spec and phase are the orchestrator's record (resgraph.jobs), not repeated here.
 *     finalized is false until Annotate; Annotate sets raw_edges and circuit_edges (counts),
 *     circuit_nodes, and effect_shown = sum |weight| over circuit edges / sum over all raw edges.
 *
 * (:Job)-[:ACTIVE {positions, values, promotes, promotes_ids, promotes_values,
 *                  suppresses, suppresses_ids, suppresses_values}]->(:Feature)
 *     For every latent active at some position of the job's prompt: positions are the prompt
 *     positions where it is nonzero, ascending, and values its activations there (it is 0
 *     elsewhere); positions[0] is where it first fires. Annotate adds, for the circuit's nodes, the tokens it
 *     promotes and suppresses (METHOD.md step 8, the 10 most extreme each, most extreme first):
 *     token strings, ids and log-probability differences as parallel lists.
 *
 * (:Feature)-[:EFFECT {job, weight, candidate, circuit}]->(:Feature)
 *     One candidate edge of one job (every raw edge for a job stored with STORE_EDGES_ALL; every
 *     raw edge is in the EdgeFiles either way), from latent i of one site of its chain to latent j
 *     of the next (METHOD.md step 6): weight = e[i,j] in SAE activation units (negative: ablating
 *     i lowers j, so i excites j). candidate = true on the edges that pass the job's pruning rule
 *     among their task's edges (see CircuitPruner.strongest), absent otherwise. circuit = true on
 *     the edges of the pruned circuit once the job is annotated; absent otherwise. Indexed on job,
 *     and on (job, candidate).
 *
 * (:Schema {id: 'resgraph', version})
 *     One node: how many of GraphSchema's migrations the store has had.
 *
 * (:Task {job, task, edges, abs_sum})
 *     Marks a task whose effects are stored: edges = how many raw edges it added, abs_sum the sum
 *     of their |weight|. Unique on (job, task): the task's Neo4j edges and this node are written in
 *     one transaction, after its edge file, so its presence is what makes storing a task idempotent.
 * </pre>
 */
@Context
final class GraphSchema {

  private static final Logger LOG = LoggerFactory.getLogger(GraphSchema.class);

  /** How long startup waits for Neo4j before giving up (a scheduler restarts the service), and how often it asks. */
  private static final Backoff STARTUP_WAIT = new Backoff(Duration.ofMillis(250), Duration.ofSeconds(5), Duration.ofSeconds(90));

  /**
   * Conversions of what earlier versions stored, in the order they were added; never reordered or
   * removed, only appended to. A store records how many it has had, so that each runs once: the
   * later ones scan every relationship of a type, which on a store of many prompts takes long.
   */
  private static final List<String> MIGRATIONS = List.of(
      // features stored before sites had names were all resid_pre: name them, and key features by site
      "MATCH (f:Feature) WHERE f.hook IS NULL SET f.hook = 'blocks.' + f.layer + '.hook_resid_pre'",
      "DROP CONSTRAINT feature_key IF EXISTS",
      // jobs stored before there were approximations were all exact ablations
      "MATCH (j:Job) WHERE j.method IS NULL SET j.method = 'ablation'",
      // ACTIVE held a value for every position until a long prompt's zeros filled the heap: keep the nonzero ones
      """
      MATCH ()-[a:ACTIVE]->() WHERE a.activations IS NOT NULL
      CALL (a) {
        SET a.positions = [p IN range(0, size(a.activations) - 1) WHERE a.activations[p] <> 0]
        SET a.values = [p IN a.positions | a.activations[p]]
        REMOVE a.activations
      } IN TRANSACTIONS OF 10000 ROWS""");

  /** Constraints and indexes, each made unless it exists, on every start. */
  private static final List<String> CONSTRAINTS = List.of(
      "CREATE CONSTRAINT feature_site_key IF NOT EXISTS FOR (f:Feature) REQUIRE (f.model, f.saes, f.hook, f.latent) IS UNIQUE",
      "CREATE CONSTRAINT job_id IF NOT EXISTS FOR (j:Job) REQUIRE j.id IS UNIQUE",
      "CREATE CONSTRAINT task_key IF NOT EXISTS FOR (t:Task) REQUIRE (t.job, t.task) IS UNIQUE",
      "CREATE CONSTRAINT schema_id IF NOT EXISTS FOR (s:Schema) REQUIRE s.id IS UNIQUE",
      "CREATE INDEX effect_job IF NOT EXISTS FOR ()-[e:EFFECT]-() ON (e.job)",
      // holds only candidate edges (a composite index skips relationships without every property)
      "CREATE INDEX effect_candidate IF NOT EXISTS FOR ()-[e:EFFECT]-() ON (e.job, e.candidate)");

  /** How many migrations the store has had: 0 for one older than the count (or empty). */
  private static final String VERSION = "OPTIONAL MATCH (s:Schema {id: 'resgraph'}) RETURN coalesce(s.version, 0) AS version";

  GraphSchema(Driver driver) throws InterruptedException {
    long start = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      try (Session session = driver.session()) {
        int had = session.run(VERSION).single().get("version").asInt();
        for (String migration : MIGRATIONS.subList(Math.min(had, MIGRATIONS.size()), MIGRATIONS.size())) {
          session.run(migration).consume();
        }
        for (String statement : CONSTRAINTS) session.run(statement).consume();
        if (had < MIGRATIONS.size()) {
          session.run("MERGE (s:Schema {id: 'resgraph'}) SET s.version = $version", Map.of("version", MIGRATIONS.size())).consume();
          LOG.info("the store had {} of {} migrations; it has them all now", had, MIGRATIONS.size());
        }
        return;
      } catch (ServiceUnavailableException | SessionExpiredException e) {
        Duration wait = STARTUP_WAIT.delay(attempt);
        if (!STARTUP_WAIT.allows(Duration.ofNanos(System.nanoTime() - start), wait)) {
          throw new IllegalStateException("Neo4j did not become reachable within " + STARTUP_WAIT.retryFor().toSeconds() + " s: "
              + e.getMessage(), e);
        }
        LOG.warn("Neo4j is not reachable yet ({}); retrying in {} ms", e.getMessage(), wait.toMillis());
        Thread.sleep(wait.toMillis()); // nothing to wait on: the server is another process
      }
    }
  }
}
