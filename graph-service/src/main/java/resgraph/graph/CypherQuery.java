package resgraph.graph;

import jakarta.inject.Singleton;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.neo4j.driver.AccessMode;
import org.neo4j.driver.Driver;
import org.neo4j.driver.Record;
import org.neo4j.driver.Result;
import org.neo4j.driver.Session;
import org.neo4j.driver.SessionConfig;
import org.neo4j.driver.Transaction;
import org.neo4j.driver.TransactionConfig;
import org.neo4j.driver.Value;
import org.neo4j.driver.exceptions.ClientException;
import org.neo4j.driver.exceptions.TransientException;
import resgraph.platform.ResgraphException;
import resgraph.v1.QueryRequest;
import resgraph.v1.QueryRow;

/**
 * Query: users' read-only Cypher. It runs in a transaction opened in READ access mode, so Neo4j
 * itself refuses any write (CREATE, MERGE, SET, DELETE, schema changes, writing procedures): no
 * parsing here decides what is safe. The transaction carries the timeout, so Neo4j stops a query
 * that runs too long, and it is rolled back at the end whatever happened. A request asks for at most
 * the rows and time {@link CypherConfig} allows.
 */
@Singleton
public final class CypherQuery {

  public static final int DEFAULT_LIMIT = 1000;
  static final int DEFAULT_TIMEOUT_MS = 30_000;

  private final Driver driver;
  private final CypherConfig limits;

  public CypherQuery(Driver driver, CypherConfig limits) {
    this.driver = driver;
    this.limits = limits;
  }

  /** Where the rows go. */
  public interface Sink {
    /**
     * Hands on one row, waiting until the client can take it but not past {@code deadline};
     * false if the client went away.
     */
    boolean send(QueryRow row, Instant deadline);
  }

  /**
   * Runs the query and sends first a row of column names, then up to {@code limit} rows of values.
   * The timeout covers the whole query, rows included: Neo4j ends the transaction when it runs
   * out, and rows a client does not read in time end it too.
   */
  public void run(QueryRequest req, Sink out) {
    if (req.getCypher().isBlank()) throw ResgraphException.badRequest("cypher is empty");
    if (req.getLimit() < 0) {
      throw ResgraphException.badRequest("limit must not be negative (0 means " + DEFAULT_LIMIT + "), not " + req.getLimit());
    }
    if (req.getTimeoutMs() < 0) {
      throw ResgraphException.badRequest("timeout_ms must not be negative (0 means " + DEFAULT_TIMEOUT_MS + "), not "
          + req.getTimeoutMs());
    }
    int limit = req.getLimit() == 0 ? Math.min(DEFAULT_LIMIT, limits.maxRows()) : req.getLimit();
    Duration timeout = req.getTimeoutMs() == 0 ? min(Duration.ofMillis(DEFAULT_TIMEOUT_MS), limits.maxTimeout())
        : Duration.ofMillis(req.getTimeoutMs());
    if (limit > limits.maxRows()) {
      throw ResgraphException.badRequest("limit " + limit + " is above the " + limits.maxRows() + " rows this graph service returns "
          + "at most (resgraph.cypher.max-rows)");
    }
    if (timeout.compareTo(limits.maxTimeout()) > 0) {
      throw ResgraphException.badRequest("timeout_ms " + timeout.toMillis() + " is above the " + limits.maxTimeout().toMillis()
          + " ms this graph service lets a query run (resgraph.cypher.max-timeout)");
    }
    Instant deadline = Instant.now().plus(timeout);
    Map<String, Object> params = CypherValues.parameters(req.getParameters());
    SessionConfig config = SessionConfig.builder()
        .withDefaultAccessMode(AccessMode.READ)
        .withFetchSize(Math.min(limit, DEFAULT_LIMIT))
        .build();
    try (Session session = driver.session(config);
        Transaction tx = session.beginTransaction(TransactionConfig.builder().withTimeout(timeout).build())) {
      Result result = tx.run(req.getCypher(), params);
      if (!out.send(QueryRow.newBuilder().addAllColumns(result.keys()).build(), deadline)) return;
      for (int n = 0; n < limit && result.hasNext(); n++) {
        Record record = result.next();
        QueryRow.Builder row = QueryRow.newBuilder();
        for (Value v : record.values()) row.addValues(CypherValues.toProto(v.asObject()));
        if (!out.send(row.build(), deadline)) return;
      }
    } catch (ClientException e) {
      throw refusal(e);
    } catch (TransientException e) {
      throw new ResgraphException(ResgraphException.Kind.UNAVAILABLE, "Neo4j could not run the query now, try again ("
          + e.code() + "): " + e.getMessage(), e);
    }
  }

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  /** What a client error means for the caller, with Neo4j's own message. */
  private static ResgraphException refusal(ClientException e) {
    String code = e.code() == null ? "" : e.code();
    if (code.equals("Neo.ClientError.Statement.AccessMode") || code.startsWith("Neo.ClientError.Schema.")) {
      return new ResgraphException(ResgraphException.Kind.BAD_REQUEST,
          "the query tried to write to the graph, and Query is read-only (use MATCH ... RETURN): " + e.getMessage(), e);
    }
    if (code.startsWith("Neo.ClientError.Transaction.TransactionTimedOut")) {
      return new ResgraphException(ResgraphException.Kind.TIMEOUT, "the query ran longer than its timeout: " + e.getMessage(), e);
    }
    return new ResgraphException(ResgraphException.Kind.BAD_REQUEST, "Neo4j refused the query (" + code + "): " + e.getMessage(), e);
  }
}
