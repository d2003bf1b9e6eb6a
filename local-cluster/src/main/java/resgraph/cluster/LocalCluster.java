package resgraph.cluster;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * resgraph on one machine: a real Kafka broker, a real Neo4j, the model server, the ablation
 * workers, the graph service and the orchestrator, each its own OS process, each listening on
 * 127.0.0.1 only. What is running and
 * where is written to {@code DIR/cluster.json}, so a later command (or another language) can find it.
 *
 * <p>Layout of DIR: {@code kafka/}, {@code neo4j/} and {@code edges/} (the raw-edge Parquet files)
 * hold the data, {@code logs/} one log per process, {@code cluster.json} the processes and endpoints,
 * {@code neo4j-password} the password Neo4j asks of every Bolt client (owner-only), {@code credentials/}
 * the bearer token and TLS certificate of every gRPC call (owner-only; see {@link #credentials}).
 *
 * <p>A component that ends, killed or crashed, {@link #restart}s on the same ports over the same
 * data; a {@link Supervisor} started by {@link #supervise} does that by itself. While a supervisor
 * runs it is the one process that writes cluster.json.
 */
public final class LocalCluster {

  /**
   * One component's process: what it is, its pid, the port it serves (0 for none), its log; how
   * often it was started again after it ended ({@link #restart}) and when last (ISO-8601, null for
   * never); and how many of those starts failed in a row (it ended or hung before serving), 0 once
   * one serves.
   */
  public record Proc(String name, long pid, int port, String log, int restarts, String restartedAt, int failedStarts) {
    /** A process started for the first time. */
    Proc(String name, long pid, int port, String log) {
      this(name, pid, port, log, 0, null, 0);
    }

    public boolean alive() {
      return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }
  }

  /**
   * Where the cluster answers; viewer is the graph service's circuit browser, an http:// URL.
   * kafkaController is the broker's KRaft controller listener, which only the broker itself uses:
   * kept so a restarted broker has the quorum it had.
   */
  public record Endpoints(String kafka, String bolt, String modelServer, String graphService, String orchestrator,
      String viewer, String kafkaController) {}

  /** What cluster.json holds; supervisor is null when none was started. */
  public record State(Endpoints endpoints, List<Proc> processes, Proc supervisor, String model, String saes, String centering,
      String cacheDir, String hubUrl) {}

  /**
   * What to start: the workers, and the pair the model server loads at start. {@code centering},
   * {@code cacheDir} and {@code hubUrl} null leave the model server's defaults.
   */
  public record Options(int workers, String model, String saes, String centering, String cacheDir, String hubUrl) {
    public Options {
      if (workers < 1) throw new IllegalArgumentException("--workers must be at least 1, not " + workers);
    }

    public Options(int workers, String model, String saes) {
      this(workers, model, saes, null, null, null);
    }
  }

  /** Tasks whose edge files the graph service writes at once: one a core. */
  public static final int GRAPH_WRITERS = 2;

  private static final Duration START_TIMEOUT = Duration.ofSeconds(120);
  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private final Path dir;
  private final List<Proc> processes;
  private final Endpoints endpoints;
  private final Options options;
  private Proc supervisor;
  /** Set when the cluster is being stopped: nothing starts after it. */
  private boolean frozen;

  private LocalCluster(Path dir, List<Proc> processes, Proc supervisor, Endpoints endpoints, Options options) {
    this.dir = dir;
    this.processes = new ArrayList<>(processes);
    this.supervisor = supervisor;
    this.endpoints = endpoints;
    this.options = options;
  }

  public Endpoints endpoints() {
    return endpoints;
  }

  public Path dir() {
    return dir;
  }

  public synchronized List<Proc> processes() {
    return List.copyOf(processes);
  }

  /** The supervisor that restarts components that end, if one was started. */
  public synchronized Optional<Proc> supervisor() {
    return Optional.ofNullable(supervisor);
  }

  /** Starts every component and waits until each serves; stops what started if one fails. */
  public static LocalCluster start(Path dir, Options options, Consumer<String> say) {
    LocalCluster c = infrastructure(dir, options, say);
    try {
      say.accept("starting the model server, graph service, orchestrator and " + options.workers() + " workers");
      List<Started> services = new ArrayList<>();
      for (String name : List.of("model-server", "graph-service", "orchestrator")) services.add(c.first(name));
      for (int i = 1; i <= options.workers(); i++) c.first("worker-" + i);
      c.await(services);
      c.save();
      return c;
    } catch (RuntimeException ex) {
      c.stop();
      throw ex;
    }
  }

  /**
   * Kafka and Neo4j alone, for tests of one service and as the first step of {@link #start}; the
   * other endpoints are reserved ports nothing serves yet.
   */
  public static LocalCluster infrastructure(Path dir, Options options, Consumer<String> say) {
    dir = dir.toAbsolutePath();
    Endpoints e = new Endpoints("127.0.0.1:" + Launcher.freePort(), "bolt://127.0.0.1:" + Launcher.freePort(),
        "127.0.0.1:" + Launcher.freePort(), "127.0.0.1:" + Launcher.freePort(), "127.0.0.1:" + Launcher.freePort(),
        "http://127.0.0.1:" + Launcher.freePort(), "127.0.0.1:" + Launcher.freePort());
    LocalCluster c = new LocalCluster(dir, List.of(), null, e, options);
    try {
      c.keepNeo4jPassword();
      Credentials.keep(c.credentials());
      say.accept("starting Kafka and Neo4j");
      c.await(List.of(c.first("kafka"), c.first("neo4j")));
      c.save();
      return c;
    } catch (RuntimeException ex) {
      c.stop();
      throw ex;
    }
  }

  /** The file holding Neo4j's password for user neo4j: generated with the cluster, readable by its owner alone. */
  public Path neo4jPasswordFile() {
    return dir.resolve("neo4j-password");
  }

  /** Neo4j's password, for the user who owns the cluster. */
  public String neo4jPassword() {
    try {
      return Files.readString(neo4jPasswordFile()).strip();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + neo4jPasswordFile(), e);
    }
  }

  /**
   * The folder of the cluster's gRPC credentials, laid out as the Kubernetes Secret that holds them
   * is mounted: {@code token}, {@code tls.crt}, {@code tls.key}, {@code ca.crt}.
   */
  public Path credentials() {
    return dir.resolve("credentials");
  }

  /** The settings with which a service calls the others ({@code serves}: and serves gRPC itself) over TLS with the token. */
  private List<String> security(boolean serves) {
    Path c = credentials();
    List<String> flags = new ArrayList<>(List.of("-Dresgraph.security.token-file=" + c.resolve("token"),
        "-Dresgraph.security.ca-file=" + c.resolve("ca.crt")));
    if (serves) {
      flags.add("-Dresgraph.security.cert-file=" + c.resolve("tls.crt"));
      flags.add("-Dresgraph.security.key-file=" + c.resolve("tls.key"));
    }
    return flags;
  }

  /** Generates the password the first time; a cluster started again over the same data keeps it. */
  private void keepNeo4jPassword() {
    Path file = neo4jPasswordFile();
    if (Files.exists(file)) return;
    byte[] random = new byte[18];
    new SecureRandom().nextBytes(random);
    try {
      Files.createDirectories(dir);
      Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      Files.writeString(file, Base64.getUrlEncoder().withoutPadding().encodeToString(random) + "\n");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  /** Adds an ablation worker (it joins the consumer group and takes a share of the tasks). */
  public synchronized Proc startWorker() {
    int n = processes.stream().filter(p -> p.name().startsWith("worker-"))
        .mapToInt(p -> Integer.parseInt(p.name().substring("worker-".length()))).max().orElse(0);
    Proc w = first("worker-" + (n + 1)).proc();
    save();
    return w;
  }

  /** The cluster recorded in DIR, whether or not its processes still run (see {@link #healthy}). */
  public static Optional<LocalCluster> find(Path dir) {
    return read(dir.toAbsolutePath()).map(s -> {
      long workers = s.processes().stream().filter(p -> p.name().startsWith("worker-")).count();
      return new LocalCluster(dir.toAbsolutePath(), s.processes(), s.supervisor(), s.endpoints(),
          new Options((int) Math.max(1, workers), s.model(), s.saes(), s.centering(), s.cacheDir(), s.hubUrl()));
    });
  }

  private static Optional<State> read(Path dir) {
    Path file = dir.resolve("cluster.json");
    if (!Files.isRegularFile(file)) return Optional.empty();
    try {
      return Optional.of(JSON.readValue(file.toFile(), State.class));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  /**
   * Whether the cluster serves, or will again by itself: every component runs, or has ended and a
   * running supervisor is starting it again. Not while a component's last start failed: a
   * component that cannot start does not come back by waiting.
   */
  public synchronized boolean healthy() {
    boolean supervised = supervised();
    return processes.stream().allMatch(p -> p.failedStarts() == 0 && (p.alive() || supervised));
  }

  /** Whether a supervisor is running for this cluster: components that end come back by themselves. */
  public synchronized boolean supervised() {
    return supervisor != null && supervisor.alive();
  }

  public Options options() {
    return options;
  }

  /** Stops one process for good (it leaves the cluster): gracefully (SIGTERM, then SIGKILL after 20 s), or at once when {@code kill}. */
  public synchronized void stop(String name, boolean kill) {
    Proc p = recorded(name);
    terminate(p, kill);
    processes.remove(p);
    save();
  }

  /** SIGKILLs a component, as a crash ends it, and waits until it is gone; it stays in the cluster, to be {@link #restart}ed. */
  public void kill(String name) {
    terminate(recorded(name), true);
  }

  /**
   * Starts a component that ended again, on the same ports over the same data, and waits until it
   * serves; recorded in cluster.json as it starts and as it serves. A start that ends or hangs
   * before serving is counted as failed (a hung one is killed) and thrown as IllegalStateException.
   */
  public Proc restart(String name) {
    Started s;
    synchronized (this) {
      Proc ended = recorded(name);
      if (ended.alive()) throw new IllegalStateException(name + " is running (pid " + ended.pid() + ")");
      if (frozen) throw new IllegalStateException("the cluster is stopping");
      s = launch(name);
      replace(ended, new Proc(name, s.proc().pid(), s.proc().port(), s.proc().log(), ended.restarts(), ended.restartedAt(),
          ended.failedStarts()));
      save();
    }
    try {
      await(List.of(s));
    } catch (IllegalStateException failed) {
      s.process().destroyForcibly();
      synchronized (this) {
        Proc p = recorded(name);
        replace(p, new Proc(name, p.pid(), p.port(), p.log(), p.restarts(), p.restartedAt(), p.failedStarts() + 1));
        save();
      }
      throw failed;
    }
    synchronized (this) {
      Proc p = recorded(name);
      Proc serving = new Proc(name, p.pid(), p.port(), p.log(), p.restarts() + 1, Instant.now().toString(), 0);
      replace(p, serving);
      save();
      return serving;
    }
  }

  /**
   * Starts a {@link Supervisor} for this cluster, a process of its own that outlives this one, and
   * waits until it has taken cluster.json over.
   */
  public void supervise() {
    Path log = logOf("supervisor");
    // its own heap is a few MB: it reads cluster.json and starts processes
    Process p = Launcher.startHere(Supervisor.class.getName(), List.of("-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-Dresgraph.home=" + Launcher.home()), List.of(dir.toString()), log);
    Launcher.await("the supervisor", "take cluster.json over", p, START_TIMEOUT, log,
        () -> read(dir).map(State::supervisor).map(s -> s.pid() == p.pid()).orElse(false));
    synchronized (this) {
      supervisor = read(dir).orElseThrow().supervisor();
    }
  }

  /** The supervisor's own record: this process now writes cluster.json. */
  synchronized void supervisedBy(Proc self) {
    supervisor = self;
    save();
  }

  /** Whether cluster.json still names this supervisor (it is gone after down, or names another after a new up). */
  boolean recordsSupervisor(long pid) {
    return read(dir).map(State::supervisor).map(s -> s.pid() == pid).orElse(false);
  }

  /** After this, nothing starts: a start under way is recorded in cluster.json first, so {@link #stop} finds its process. */
  synchronized void freeze() {
    frozen = true;
  }

  /** Stops everything: the supervisor first (so nothing comes back), then services before the broker and the database they write to. */
  public void stop() {
    Proc watching = supervisor().orElse(null);
    if (watching != null) {
      terminate(watching, false);
      // what it started since this cluster was read
      read(dir).ifPresent(latest -> {
        synchronized (this) {
          processes.clear();
          processes.addAll(latest.processes());
        }
      });
    }
    List<Proc> order = new ArrayList<>(processes());
    order.sort((a, b) -> Integer.compare(rank(a), rank(b)));
    for (Proc p : order) terminate(p, false);
    synchronized (this) {
      processes.clear();
      supervisor = null;
    }
    try {
      Files.deleteIfExists(dir.resolve("cluster.json"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static int rank(Proc p) {
    return switch (p.name()) {
      case "kafka", "neo4j" -> 1;
      default -> 0;
    };
  }

  private static void terminate(Proc p, boolean kill) {
    ProcessHandle.of(p.pid()).ifPresent(h -> {
      if (kill) h.destroyForcibly();
      else h.destroy();
      try {
        h.onExit().get(20, TimeUnit.SECONDS);
      } catch (Exception slow) {
        h.destroyForcibly();
      }
    });
  }

  private record Started(Proc proc, Process process) {}

  /** Starts a component for the first time and records it. */
  private synchronized Started first(String name) {
    Started s = launch(name);
    processes.add(s.proc());
    return s;
  }

  private synchronized Proc recorded(String name) {
    return processes.stream().filter(p -> p.name().equals(name)).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no process named " + name));
  }

  private synchronized void replace(Proc old, Proc now) {
    processes.set(processes.indexOf(old), now);
  }

  /** Starts the named component's process, as every start of it does: the same ports, data and settings. */
  private Started launch(String name) {
    Endpoints e = endpoints;
    return switch (name) {
      case "kafka" -> launch(name, "local-kafka", "resgraph.local.LocalKafka", List.of("-Xmx512m"),
          List.of(String.valueOf(port(e.kafka())), String.valueOf(port(e.kafkaController())), dir.resolve("kafka").toString()),
          port(e.kafka()));
      // C1 alone: Cypher compiles each new plan to bytecode, and C2 optimizing it took 6 of Neo4j's 10 s of CPU in a warm
      // job on two cores, for some 0.7 s of slower queries (./resgraph bench, PERFORMANCE.md)
      case "neo4j" -> launch(name, "local-neo4j", "resgraph.local.LocalNeo4j", List.of("-Xmx1g", "-XX:TieredStopAtLevel=1"),
          List.of(String.valueOf(port(e.bolt())), dir.resolve("neo4j").toString(), neo4jPasswordFile().toString()), port(e.bolt()));
      case "model-server" -> launchModelServer();
      case "graph-service" -> launch(name, "graph-service", "resgraph.graph.GraphServer",
          with(security(true), "-Xmx1g", "-Dgrpc.server.host=127.0.0.1", "-Dgrpc.server.port=" + port(e.graphService()),
              "-Dkafka.bootstrap.servers=" + e.kafka(), "-Dneo4j.uri=" + e.bolt(), "-Dneo4j.user=neo4j",
              "-Dneo4j.password-file=" + neo4jPasswordFile(), "-Dresgraph.http.host=127.0.0.1", "-Dresgraph.http.port=" + port(e.viewer()),
              "-Dresgraph.graph.writers=" + GRAPH_WRITERS, "-Dresgraph.graph.edges-dir=" + dir.resolve("edges")),
          List.of(), port(e.graphService()));
      case "orchestrator" -> launch(name, "orchestrator", "resgraph.orchestrator.Orchestrator",
          with(security(true), "-Xmx512m", "-Dgrpc.server.host=127.0.0.1", "-Dgrpc.server.port=" + port(e.orchestrator()),
              "-Dkafka.bootstrap.servers=" + e.kafka(), "-Dresgraph.model-server.address=" + e.modelServer(),
              "-Dresgraph.graph-service.address=" + e.graphService()),
          List.of(), port(e.orchestrator()));
      default -> {
        if (!name.startsWith("worker-")) throw new IllegalArgumentException("no component named " + name);
        yield launch(name, "ablation-worker", "resgraph.worker.AblationWorker",
            with(security(false), "-Xmx384m", "-Dkafka.bootstrap.servers=" + e.kafka(),
                "-Dresgraph.model-server.address=" + e.modelServer(), "-Dresgraph.worker.name=" + name),
            List.of(), 0);
      }
    };
  }

  /** The model server, loading the cluster's model as soon as it listens. */
  private Started launchModelServer() {
    List<String> jvm = new ArrayList<>(with(security(true), "-Xmx3g",
        // G1 resizes the heap at the end of every marking cycle to hold 40-70% free by default: with a long prompt's
        // trace live (1 GB at 1,024 tokens) it kept 1.9-2.3 GB committed, beside gigabytes of libtorch's native memory.
        // 10-20% free keeps the heap near what is live. Without a floor a short prompt's small heap was collected so
        // often that its jobs took 5 s longer. The floor is resident once used, and a corpus uses all of it: at 1 GB,
        // ten prompts left 924 MB of heap resident for 275 MB live, and the server above 1.5x its weights. Half of
        // that is floor enough for short prompts (PERFORMANCE.md).
        "-Xms512m", "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=20",
        "-Dai.djl.offline=true", "-Dgrpc.server.port=" + port(endpoints.modelServer()),
        "-Dgrpc.server.host=127.0.0.1", "-Dresgraph.model-server.preload-model=" + options.model(),
        "-Dresgraph.model-server.preload-saes=" + options.saes(),
        // One libtorch thread a pass and a pass a core: the threads of one pass wait for each other at every
        // operator, spinning on cores Kafka, Neo4j and the services share (7-11 core-seconds a job, PERFORMANCE.md).
        "-Dai.djl.pytorch.num_threads=1",
        "-Dresgraph.model-server.compute-permits=" + Runtime.getRuntime().availableProcessors()));
    if (options.centering() != null) jvm.add("-Dresgraph.model-server.preload-centering=" + options.centering());
    if (options.cacheDir() != null) jvm.add("-Dresgraph.cache-dir=" + options.cacheDir());
    if (options.hubUrl() != null) jvm.add("-Dresgraph.hub.url=" + options.hubUrl());
    return launch("model-server", "model-server", "resgraph.modelserver.ModelServer", jvm, List.of(), port(endpoints.modelServer()));
  }

  private static List<String> with(List<String> security, String... flags) {
    List<String> all = new ArrayList<>(List.of(flags));
    all.addAll(security);
    return all;
  }

  /** Where a process of the cluster writes what it prints. */
  Path logOf(String name) {
    return dir.resolve("logs").resolve(name + ".log");
  }

  private Started launch(String name, String module, String main, List<String> jvm, List<String> args, int port) {
    Path log = logOf(name);
    List<String> jvmArgs = new ArrayList<>(jvm);
    jvmArgs.add("-Dresgraph.home=" + Launcher.home());
    Process process = Launcher.start(module, main, jvmArgs, args, log);
    return new Started(new Proc(name, process.pid(), port, log.toString()), process);
  }

  /** Waits until each started process that serves a port accepts connections. */
  private static void await(List<Started> started) {
    for (Started s : started) {
      if (s.proc().port() > 0) Launcher.awaitPort(s.proc().name(), s.process(), s.proc().port(), START_TIMEOUT, Path.of(s.proc().log()));
    }
  }

  private synchronized void save() {
    try {
      Files.createDirectories(dir);
      Path tmp = dir.resolve("cluster.json.tmp");
      JSON.writeValue(tmp.toFile(), new State(endpoints, processes, supervisor, options.model(), options.saes(), options.centering(),
          options.cacheDir(), options.hubUrl()));
      Files.move(tmp, dir.resolve("cluster.json"), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + dir.resolve("cluster.json"), e);
    }
  }

  private static int port(String address) {
    return Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
  }
}
