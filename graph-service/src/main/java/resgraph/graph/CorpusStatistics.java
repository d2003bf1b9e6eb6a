package resgraph.graph;

import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.duckdb.DuckDBAppender;
import org.duckdb.DuckDBConnection;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Session;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * METHOD.md "Across prompts": statistics over every finished job of one model and SAEs, each job
 * added exactly once. Every edge's statistics are an aggregate over the jobs' edge files, which
 * GetCorpus computes for any set of jobs ({@link CorpusCircuits}); kept up to date here, in a
 * DuckDB database beside the edge files ({@code <edges-dir>/corpus.duckdb}), are the statistics of
 * every node and of the edges that are a candidate in some job, which Neo4j carries as
 * {@code (:Feature)-[:CORPUS_EFFECT {jobs, mean, variance, min, max}]->(:Feature)} and
 * {@code (:Feature {jobs, mean_activation})}, so that its writes grow with candidates and not with
 * raw edges.
 *
 * <p>Keeping every edge's statistics here instead cost an upsert of each job's half a million edges
 * into a table of all the corpus's edges, whose every commit rewrote the parts of it the upsert
 * touched: 2 s a GPT-2-small prompt at the first, 25 s at the fiftieth. A job now updates the
 * candidates known (a join with its file) and aggregates its new candidates over every counted
 * job's file (a scan that a join to those few edges filters).
 *
 * <p>Adding a job is one DuckDB transaction that also records the job as added, so a repeated
 * AddToCorpus (a retried finalization, a restarted graph service) finds it there and adds nothing. The copy in
 * Neo4j is of values, not increments: it is written again on every call, so a service killed
 * between the two stores catches up on the next one.
 *
 * <p>Graph-service replicas share the file: DuckDB lets one process open it to write, so each
 * addition opens it only while it holds {@code corpus.lock} beside it (an operating-system lock,
 * which NFSv4 and the usual ReadWriteMany volumes honour, taken after a lock of this JVM's, since
 * the operating system's is per process), and copies into Neo4j before letting go, so that Neo4j's
 * values follow the additions in their order.
 *
 * <p>Per edge: {@code jobs}, the jobs in which it is nonzero, and over those its mean, variance
 * (Welford's update; dividing by their number), min and max. Per node: {@code jobs}, the jobs in
 * which it is a candidate (active at some position up to the target), and its mean activation at
 * the target over those.
 */
@Singleton
public final class CorpusStatistics {

  private static final Logger LOG = LoggerFactory.getLogger(CorpusStatistics.class);

  /** Rows per UNWIND statement when copying statistics into Neo4j. */
  private static final int ROWS_PER_STATEMENT = 10_000;

  private static final List<String> SCHEMA = List.of("""
      CREATE TABLE IF NOT EXISTS corpus_jobs (model VARCHAR, saes VARCHAR, job VARCHAR, PRIMARY KEY (model, saes, job))""",
      // every edge's statistics, as an earlier version kept them; the candidates' are recomputed from the files as needed
      "DROP TABLE IF EXISTS corpus_edges", """
      CREATE TABLE IF NOT EXISTS corpus_candidates (model VARCHAR, saes VARCHAR, source_hook VARCHAR, source_latent INTEGER,
        target_hook VARCHAR, target_latent INTEGER, jobs BIGINT, mean DOUBLE, m2 DOUBLE, min FLOAT, max FLOAT,
        PRIMARY KEY (model, saes, source_hook, source_latent, target_hook, target_latent))""", """
      CREATE TABLE IF NOT EXISTS corpus_nodes (model VARCHAR, saes VARCHAR, hook VARCHAR, latent INTEGER, jobs BIGINT,
        mean_activation DOUBLE, PRIMARY KEY (model, saes, hook, latent))""");

  /** This JVM's side of each file's lock: the operating system's cannot be taken twice by one process. */
  private static final Map<Path, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();

  private final Path file;
  private final Path lockFile;
  private final EdgeFiles files;
  private final JobNodes jobs;
  private final StoredCircuits circuits;
  private final Driver driver;

  CorpusStatistics(GraphConfig config, EdgeFiles files, JobNodes jobs, StoredCircuits circuits, Driver driver) throws SQLException {
    this.file = Path.of(config.edgesDir()).toAbsolutePath().resolve("corpus.duckdb");
    this.lockFile = file.resolveSibling("corpus.lock");
    try {
      Files.createDirectories(file.getParent());
    } catch (IOException e) {
      throw new UncheckedIOException("could not create " + file.getParent(), e);
    }
    this.files = files;
    this.jobs = jobs;
    this.circuits = circuits;
    this.driver = driver;
    try (Exclusive db = exclusive(); Statement s = db.connection().createStatement()) {
      for (String statement : SCHEMA) s.execute(statement);
    }
  }

  /** The database, open and this caller's alone until closed: no other thread, process or replica has it meanwhile. */
  private record Exclusive(DuckDBConnection connection, FileChannel channel, ReentrantLock local) implements AutoCloseable {
    @Override
    public void close() throws SQLException {
      try {
        connection.close();
        channel.close(); // releases the operating system's lock
      } catch (IOException e) {
        throw new SQLException("could not release the lock on the corpus statistics", e);
      } finally {
        local.unlock();
      }
    }
  }

  private Exclusive exclusive() throws SQLException {
    ReentrantLock local = IN_PROCESS.computeIfAbsent(lockFile, f -> new ReentrantLock());
    local.lock();
    FileChannel channel = null;
    try {
      channel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      channel.lock(); // waits while another replica adds a job
      return new Exclusive((DuckDBConnection) DriverManager.getConnection("jdbc:duckdb:" + file), channel, local);
    } catch (IOException | SQLException | RuntimeException e) {
      try {
        if (channel != null) channel.close();
      } catch (IOException ignored) {
        // the first failure is the one to report
      }
      local.unlock();
      if (e instanceof IOException io) throw new SQLException("could not lock " + lockFile, io);
      if (e instanceof SQLException sql) throw sql;
      throw (RuntimeException) e;
    }
  }

  /**
   * Adds the finished job to the statistics of its model and SAEs unless it is there already, then
   * copies the statistics of its candidate edges and nodes into Neo4j. Returns whether it was added now.
   */
  public boolean add(String jobId) {
    StoredJob stored = jobs.stored(jobId);
    SiteChain chain = SiteChain.of(jobs.recorded(jobId));
    List<Object[]> candidates = circuits.candidateEdges(jobId, chain).stream()
        .map(e -> new Object[] {chain.hook(e.site()), e.source(), chain.hook(e.site() + 1), e.target()}).toList();
    List<Object[]> nodes = jobs.candidates(jobId).stream().map(n -> new Object[] {n.hook(), n.latent(), n.activation()}).toList();
    String edges = files.glob(jobId);
    boolean added;
    long start = System.nanoTime(), copied;
    try (Exclusive e = exclusive()) {
      DuckDBConnection db = e.connection();
      stage(db, candidates, nodes);
      added = addOnce(db, stored, edges);
      copied = System.nanoTime();
      copyToNeo4j(db, stored, edges);
    } catch (SQLException e) {
      throw new IllegalStateException("could not add job " + jobId + " to the corpus statistics: " + e.getMessage(), e);
    }
    LOG.info("{} job {} {} the corpus statistics of {} with {} ({} candidate nodes; DuckDB {} ms, Neo4j {} ms)",
        added ? "added" : "found", jobId, added ? "to" : "already in", stored.model(), stored.saes(), nodes.size(),
        (copied - start) / 1_000_000, (System.nanoTime() - copied) / 1_000_000);
    return added;
  }

  /** The job's candidate edges and nodes as the tables job_candidates and job_nodes, which the next statements join. */
  private void stage(DuckDBConnection db, List<Object[]> candidates, List<Object[]> nodes) throws SQLException {
    try (Statement s = db.createStatement()) {
      s.execute("CREATE OR REPLACE TABLE job_candidates (source_hook VARCHAR, source_latent INTEGER, target_hook VARCHAR,"
          + " target_latent INTEGER)");
      s.execute("CREATE OR REPLACE TABLE job_nodes (hook VARCHAR, latent INTEGER, activation DOUBLE)");
    }
    append(db, "job_candidates", candidates);
    append(db, "job_nodes", nodes);
  }

  private boolean addOnce(DuckDBConnection db, StoredJob job, String edges) throws SQLException {
    db.setAutoCommit(false);
    try {
      try (PreparedStatement known = db.prepareStatement("SELECT count(*) FROM corpus_jobs WHERE model = ? AND saes = ? AND job = ?")) {
        bind(known, job.model(), job.saes(), job.id());
        try (ResultSet r = known.executeQuery()) {
          r.next();
          if (r.getLong(1) > 0) {
            db.rollback();
            return false;
          }
        }
      }
      try (PreparedStatement mark = db.prepareStatement("INSERT INTO corpus_jobs VALUES (?, ?, ?)")) {
        bind(mark, job.model(), job.saes(), job.id());
        mark.execute();
      }
      if (edges != null) {
        // Welford: with d = x - mean over n jobs, mean' = mean + d/(n+1) and m2' = m2 + d²·n/(n+1); SET reads the row before the update
        try (PreparedStatement update = db.prepareStatement("""
            UPDATE corpus_candidates c SET
              jobs = c.jobs + 1,
              mean = c.mean + (e.weight - c.mean) / (c.jobs + 1),
              m2 = c.m2 + (e.weight - c.mean) * (e.weight - c.mean) * c.jobs / (c.jobs + 1),
              min = least(c.min, e.weight),
              max = greatest(c.max, e.weight)
            FROM read_parquet(%s) e
            WHERE c.model = ? AND c.saes = ? AND c.source_hook = e.source_hook AND c.source_latent = e.source_latent
              AND c.target_hook = e.target_hook AND c.target_latent = e.target_latent""".formatted(edges))) {
          bind(update, job.model(), job.saes());
          update.execute();
        }
        // the job's candidates that no job had before: their statistics over every counted job's file, this one's too
        List<String> counted = new ArrayList<>();
        try (PreparedStatement q = db.prepareStatement("SELECT job FROM corpus_jobs WHERE model = ? AND saes = ?")) {
          bind(q, job.model(), job.saes());
          try (ResultSet r = q.executeQuery()) {
            while (r.next()) {
              String glob = files.glob(r.getString(1));
              if (glob != null) counted.add(glob);
            }
          }
        }
        try (PreparedStatement insert = db.prepareStatement("""
            INSERT INTO corpus_candidates
            SELECT ?, ?, e.source_hook, e.source_latent, e.target_hook, e.target_latent, count(*), avg(e.weight::DOUBLE),
                   var_pop(e.weight::DOUBLE) * count(*), min(e.weight), max(e.weight)
            FROM read_parquet([%s]) e
            SEMI JOIN (SELECT * FROM job_candidates n
                       ANTI JOIN (SELECT * FROM corpus_candidates WHERE model = ? AND saes = ?) c
                         ON c.source_hook = n.source_hook AND c.source_latent = n.source_latent
                        AND c.target_hook = n.target_hook AND c.target_latent = n.target_latent) n
              ON n.source_hook = e.source_hook AND n.source_latent = e.source_latent
             AND n.target_hook = e.target_hook AND n.target_latent = e.target_latent
            GROUP BY e.source_hook, e.source_latent, e.target_hook, e.target_latent""".formatted(String.join(", ", counted)))) {
          bind(insert, job.model(), job.saes(), job.model(), job.saes());
          insert.execute();
        }
      }
      try (PreparedStatement update = db.prepareStatement("""
          INSERT INTO corpus_nodes SELECT ?, ?, hook, latent, 1, activation FROM job_nodes
          ON CONFLICT DO UPDATE SET
            jobs = jobs + 1,
            mean_activation = mean_activation + (EXCLUDED.mean_activation - mean_activation) / (jobs + 1)""")) {
        bind(update, job.model(), job.saes());
        update.execute();
      }
      db.commit();
      return true;
    } catch (SQLException | RuntimeException e) {
      db.rollback();
      throw e;
    } finally {
      db.setAutoCommit(true);
    }
  }

  /** Writes the current statistics of the job's edges that are a candidate in some job, and of its candidate nodes. */
  private void copyToNeo4j(DuckDBConnection db, StoredJob job, String edges) throws SQLException {
    List<Map<String, Object>> edgeRows = new ArrayList<>();
    if (edges != null) {
      try (PreparedStatement q = db.prepareStatement("""
          SELECT s.source_hook, s.source_latent, s.target_hook, s.target_latent, s.jobs, s.mean, s.m2 / s.jobs, s.min, s.max
          FROM corpus_candidates s JOIN read_parquet(%s) e
            ON s.source_hook = e.source_hook AND s.source_latent = e.source_latent
           AND s.target_hook = e.target_hook AND s.target_latent = e.target_latent
          WHERE s.model = ? AND s.saes = ?""".formatted(edges))) {
        bind(q, job.model(), job.saes());
        try (ResultSet r = q.executeQuery()) {
          while (r.next()) {
            edgeRows.add(Map.of("source_hook", r.getString(1), "source", r.getInt(2), "target_hook", r.getString(3),
                "target", r.getInt(4), "jobs", r.getLong(5), "mean", r.getDouble(6), "variance", r.getDouble(7),
                "min", (double) r.getFloat(8), "max", (double) r.getFloat(9)));
          }
        }
      }
    }
    Map<String, List<Object>> nodeStatistics = new HashMap<>(); // "hook/latent" to [jobs, mean_activation]
    try (PreparedStatement q = db.prepareStatement("""
        SELECT s.hook, s.latent, s.jobs, s.mean_activation FROM corpus_nodes s JOIN job_nodes n ON s.hook = n.hook AND s.latent = n.latent
        WHERE s.model = ? AND s.saes = ?""")) {
      bind(q, job.model(), job.saes());
      try (ResultSet r = q.executeQuery()) {
        while (r.next()) nodeStatistics.put(r.getString(1) + "/" + r.getInt(2), List.of(r.getLong(3), r.getDouble(4)));
      }
    }
    try (Session session = driver.session()) {
      for (int from = 0; from < edgeRows.size(); from += ROWS_PER_STATEMENT) {
        List<Map<String, Object>> rows = edgeRows.subList(from, Math.min(edgeRows.size(), from + ROWS_PER_STATEMENT));
        session.executeWriteWithoutResult(tx -> tx.run("""
            UNWIND $rows AS r
            MATCH (a:Feature {model: $model, saes: $saes, hook: r.source_hook, latent: r.source})
            MATCH (b:Feature {model: $model, saes: $saes, hook: r.target_hook, latent: r.target})
            MERGE (a)-[c:CORPUS_EFFECT]->(b)
            SET c.jobs = r.jobs, c.mean = r.mean, c.variance = r.variance, c.min = r.min, c.max = r.max""",
            Map.of("model", job.model(), "saes", job.saes(), "rows", rows)).consume());
      }
      // The job's candidate nodes are Features it is ACTIVE on: walking those relationships from its node
      // took a third of the time of a seek in the four-property Feature index for each (10,000 a prompt).
      session.executeWriteWithoutResult(tx -> tx.run("""
          MATCH (:Job {id: $job})-[:ACTIVE]->(f:Feature)
          WITH f, $statistics[f.hook + '/' + toString(f.latent)] AS s
          WHERE s IS NOT NULL
          SET f.jobs = s[0], f.mean_activation = s[1]""",
          Map.of("job", job.id(), "statistics", nodeStatistics)).consume());
    }
  }

  private static void append(DuckDBConnection db, String table, List<Object[]> rows) throws SQLException {
    try (DuckDBAppender a = db.createAppender(DuckDBConnection.DEFAULT_SCHEMA, table)) {
      for (Object[] row : rows) {
        a.beginRow();
        for (Object v : row) {
          if (v instanceof String s) a.append(s);
          else if (v instanceof Integer i) a.append(i);
          else a.append((Double) v);
        }
        a.endRow();
      }
    }
  }

  private static void bind(PreparedStatement p, Object... values) throws SQLException {
    for (int i = 0; i < values.length; i++) p.setObject(i + 1, values[i]);
  }
}
