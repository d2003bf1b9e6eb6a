package resgraph.cluster;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * Keeps a local cluster up, as Kubernetes keeps its pods: {@code Supervisor DIR} watches every
 * component DIR/cluster.json records and {@link LocalCluster#restart}s one that ends (killed,
 * crashed, out of memory) on the same ports over the same data, recording the restart in
 * cluster.json. What it does goes to its standard output, which {@code up} sends to
 * {@code DIR/logs/supervisor.log}.
 *
 * <p>A component that ends again within {@link #STEADY} of being started, or fails to start, is
 * started again only after a pause that doubles each time, up to a minute ({@link #backoff}), so
 * one that crashes at start does not spin. Components are started again one at a time: the model
 * server, loading its model, holds the others back by up to two minutes.
 *
 * <p>It exits when cluster.json is gone or names another supervisor; {@code down} stops it (SIGTERM)
 * before the components, and a start under way is recorded before it exits, so {@code down} finds
 * that process too.
 */
public final class Supervisor {

  /** How often it looks at the components: a component that ends is noticed within this. */
  static final Duration POLL = Duration.ofMillis(500);
  /** A component that ends sooner than this after it was started counts as one that cannot run. */
  static final Duration STEADY = Duration.ofMinutes(1);
  private static final Duration LONGEST_PAUSE = Duration.ofMinutes(1);

  private final LocalCluster cluster;
  private final long pid = ProcessHandle.current().pid();
  private final Map<String, Restarts> restarts = new HashMap<>();

  /** One component's recent history: when it was last started here, how many short lives in a row, when to try next. */
  private static final class Restarts {
    Instant started;
    int streak;
    Instant due;
  }

  private Supervisor(LocalCluster cluster) {
    this.cluster = cluster;
  }

  public static void main(String[] args) throws InterruptedException {
    if (args.length != 1) {
      System.err.println("usage: Supervisor DIR");
      System.exit(2);
    }
    Path dir = Path.of(args[0]);
    LocalCluster cluster = LocalCluster.find(dir).orElseThrow(() -> new IllegalStateException("no cluster.json in " + dir));
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::freeze));
    new Supervisor(cluster).watch();
  }

  /**
   * How long to wait before starting a component again after {@code streak} short lives in a row:
   * at once after none, then 1 s, 2 s, 4 s, ... up to a minute.
   */
  static Duration backoff(int streak) {
    if (streak == 0) return Duration.ZERO;
    Duration pause = Duration.ofSeconds(1L << Math.min(streak - 1, 6));
    return pause.compareTo(LONGEST_PAUSE) < 0 ? pause : LONGEST_PAUSE;
  }

  private void watch() throws InterruptedException {
    cluster.supervisedBy(new LocalCluster.Proc("supervisor", pid, 0, cluster.logOf("supervisor").toString()));
    say("watching " + cluster.processes().stream().map(p -> p.name() + " (pid " + p.pid() + ")").collect(Collectors.joining(", ")));
    while (cluster.recordsSupervisor(pid)) {
      for (LocalCluster.Proc p : cluster.processes()) {
        if (!p.alive()) bringBack(p);
      }
      Thread.sleep(POLL.toMillis());
    }
    say("cluster.json is gone or names another supervisor: stopping");
  }

  /** Starts a component that ended again, now or, after short lives, once its pause is over. */
  private void bringBack(LocalCluster.Proc ended) {
    Restarts r = restarts.computeIfAbsent(ended.name(), n -> new Restarts());
    Instant now = Instant.now();
    if (r.due == null) {
      boolean shortLived = r.started != null && Duration.between(r.started, now).compareTo(STEADY) < 0;
      r.streak = shortLived ? r.streak + 1 : 0;
      r.due = now.plus(backoff(r.streak));
      say(ended.name() + " (pid " + ended.pid() + ") has ended; starting it again"
          + (r.streak == 0 ? "" : " in " + backoff(r.streak).toSeconds() + " s (" + r.streak + " short lives in a row)"));
    }
    if (now.isBefore(r.due)) return;
    r.started = now;
    r.due = null;
    try {
      LocalCluster.Proc back = cluster.restart(ended.name());
      say(ended.name() + " is back: pid " + back.pid() + (back.port() > 0 ? ", serving on port " + back.port() : "")
          + " (restart " + back.restarts() + ")");
    } catch (RuntimeException failed) {
      // whatever kept this one down, the others are still watched
      say(ended.name() + " did not start: " + failed);
    }
  }

  private static void say(String line) {
    System.out.println(Instant.now() + " " + line);
  }
}
