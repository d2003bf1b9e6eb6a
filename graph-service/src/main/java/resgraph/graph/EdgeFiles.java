package resgraph.graph;

import jakarta.annotation.PreDestroy;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.duckdb.DuckDBAppender;
import org.duckdb.DuckDBConnection;

/**
 * The columnar store of raw edges (METHOD.md step 6): one Parquet file per stored task, under
 * {@code <resgraph.graph.edges-dir>/<job>/task-<n>.parquet}, which pandas, polars, DuckDB and Spark
 * read as they are. Neo4j holds what people traverse (candidate and circuit edges); the bulk,
 * hundreds of thousands of edges a prompt, comes here at DuckDB's speed, some fifty times Neo4j's
 * cost of a relationship per edge.
 *
 * <p>A task's file appears whole or not at all (written beside it, then renamed), and a task always
 * has the same edges, so a redelivered task finds its file and writes nothing. Every file has the
 * columns {@code weight}, then each end's {@code _layer}, {@code _latent} and {@code _hook}; a
 * job's export adds graph.json's node ids ({@link #COLUMNS}), which as a string per edge would
 * make a task's file take a third longer to write.
 */
@Singleton
public final class EdgeFiles {

  /** The columns of a job's raw_edges.parquet, in order: a task file's, after graph.json's node ids. */
  public static final List<String> COLUMNS = List.of("source", "target", "weight", "source_layer", "source_latent",
      "target_layer", "target_latent", "source_hook", "target_hook");

  private final Path root;
  /** One in-memory DuckDB for every statement: each call takes a connection of its own to it (starting a database per task cost 10-50 ms). */
  private final DuckDBConnection db;

  EdgeFiles(GraphConfig config) throws SQLException {
    this.root = Path.of(config.edgesDir()).toAbsolutePath();
    this.db = (DuckDBConnection) DriverManager.getConnection("jdbc:duckdb:");
  }

  @PreDestroy
  void close() throws SQLException {
    db.close();
  }

  /** The folder of every job's files. */
  Path root() {
    return root;
  }

  /** Where the job's task files are. */
  public Path jobDir(String jobId) {
    // job ids are the orchestrator's ("j-20261126-153012-4f2a"), but a name from anywhere must stay one folder
    return root.resolve(URLEncoder.encode(jobId, StandardCharsets.UTF_8).replace("*", "%2A").replace(".", "%2E"));
  }

  /** Whether the task's edges are stored. */
  public boolean has(String jobId, int task) {
    return Files.exists(taskFile(jobId, task));
  }

  /** Stores one task's edges; does nothing when they are stored. */
  public void write(String jobId, int task, SiteChain chain, TaskEdges edges) {
    Path file = taskFile(jobId, task);
    if (Files.exists(file)) return;
    Path partial = file.resolveSibling(file.getFileName() + "." + UUID.randomUUID() + ".partial");
    try {
      Files.createDirectories(file.getParent());
      int site = edges.site();
      // a table of this call's own (writers share the database), of one row of three lists: an appended list is one call, a value per call cost three times as much
      String table = "task_" + UUID.randomUUID().toString().replace('-', '_');
      try (DuckDBConnection c = (DuckDBConnection) db.duplicate(); Statement s = c.createStatement()) {
        s.execute("CREATE TABLE " + table + " (source_latent INTEGER[], target_latent INTEGER[], weight FLOAT[])");
        try {
          try (DuckDBAppender a = c.createAppender(DuckDBConnection.DEFAULT_SCHEMA, table)) {
            a.beginRow().append(edges.sources()).append(edges.targets()).append(edges.weights()).endRow();
          }
          // the site's constants are columns of the file, not of every appended row
          s.execute(("COPY (SELECT weight, %d AS source_layer, source_latent, %d AS target_layer, target_latent, %s AS source_hook,"
              + " %s AS target_hook FROM (SELECT unnest(source_latent) AS source_latent, unnest(target_latent) AS target_latent,"
              + " unnest(weight) AS weight FROM %s)) TO %s (FORMAT parquet)")
              .formatted(chain.layer(site), chain.layer(site + 1), literal(chain.hook(site)), literal(chain.hook(site + 1)), table,
                  literal(partial.toString())));
        } finally {
          s.execute("DROP TABLE " + table);
        }
      }
      Files.move(partial, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (SQLException e) {
      throw new IllegalStateException("could not write " + file + ": " + e.getMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException("could not write " + file, e);
    } finally {
      deleteQuietly(partial);
    }
  }

  /** Every raw edge stored for the job, in no particular order. */
  public List<RawEdge> read(String jobId, SiteChain chain) {
    String files = glob(jobId);
    if (files == null) return List.of();
    List<RawEdge> edges = new ArrayList<>();
    run("SELECT source_hook, source_latent, target_latent, weight FROM read_parquet(" + files + ")", rows -> {
      while (rows.next()) {
        edges.add(new RawEdge(chain.position(rows.getString(1)), rows.getInt(2), rows.getInt(3), rows.getFloat(4)));
      }
    });
    return edges;
  }

  /** The job's raw edges as one Parquet file (columns {@link #COLUMNS}), in circuit order; an empty file when none are stored. */
  public byte[] parquet(String jobId, SiteChain chain) {
    String files = glob(jobId);
    Path out = root.resolve("export-" + UUID.randomUUID() + ".parquet");
    String select = files == null
        ? "SELECT NULL::VARCHAR AS source, NULL::VARCHAR AS target, NULL::FLOAT AS weight, NULL::INTEGER AS source_layer,"
            + " NULL::INTEGER AS source_latent, NULL::INTEGER AS target_layer, NULL::INTEGER AS target_latent,"
            + " NULL::VARCHAR AS source_hook, NULL::VARCHAR AS target_hook LIMIT 0"
        : "SELECT s.prefix || source_latent AS source, t.prefix || target_latent AS target, " + String.join(", ", COLUMNS.subList(2, COLUMNS.size()))
            + " FROM read_parquet(" + files + ") JOIN " + sites(chain) + " AS s(hook, prefix, position) ON source_hook = s.hook JOIN "
            + sites(chain) + " AS t(hook, prefix, position) ON target_hook = t.hook ORDER BY s.position, source_latent, target_latent";
    try {
      Files.createDirectories(root);
      run("COPY (" + select + ") TO " + literal(out.toString()) + " (FORMAT parquet)", rows -> {});
      return Files.readAllBytes(out);
    } catch (IOException e) {
      throw new UncheckedIOException("could not export the raw edges of job " + jobId, e);
    } finally {
      deleteQuietly(out);
    }
  }

  /** read_parquet's argument for every task file of the job, or null when there is none. */
  String glob(String jobId) {
    Path dir = jobDir(jobId);
    try (Stream<Path> files = Files.list(dir)) {
      if (files.noneMatch(f -> f.getFileName().toString().endsWith(".parquet"))) return null;
    } catch (java.nio.file.NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      throw new UncheckedIOException("could not list " + dir, e);
    }
    return literal(dir.resolve("task-*.parquet").toString());
  }

  private Path taskFile(String jobId, int task) {
    return jobDir(jobId).resolve("task-%06d.parquet".formatted(task));
  }

  /** Reads a statement's rows. */
  interface Rows {
    void read(ResultSet rows) throws SQLException;
  }

  /** Runs one statement, which reads and writes the files named in it; its rows, if any, go to {@code reader}. */
  void run(String sql, Rows reader) {
    try (Connection c = db.duplicate(); Statement s = c.createStatement()) {
      if (s.execute(sql)) {
        try (ResultSet rows = s.getResultSet()) {
          reader.read(rows);
        }
      }
    } catch (SQLException e) {
      throw new IllegalStateException("the edge store could not run " + sql + ": " + e.getMessage(), e);
    }
  }

  /** The chain's sites as a SQL table of (hook, node id prefix with its dot, position), to join on a hook column and alias. */
  static String sites(SiteChain chain) {
    return IntStream.range(0, chain.sites().size())
        .mapToObj(i -> "(" + literal(chain.hook(i)) + ", " + literal(chain.site(i).getNodePrefix() + ".") + ", " + i + ")")
        .collect(Collectors.joining(", ", "(VALUES ", ")"));
  }

  /** A SQL string literal. */
  static String literal(String s) {
    return "'" + s.replace("'", "''") + "'";
  }

  static void deleteQuietly(Path p) {
    try {
      Files.deleteIfExists(p);
    } catch (IOException ignored) {
      // a leftover temporary file is harmless: nothing reads *.partial, export-* or corpus-*
    }
  }
}
