package resgraph.cluster;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.function.BooleanSupplier;

/**
 * Starts one of resgraph's modules as a JVM of its own, from the classes and classpath the build
 * left in {@code MODULE/target}: exactly the process a container would run, without a container.
 */
public final class Launcher {

  private Launcher() {}

  /** The repository root: {@code -Dresgraph.home}, else the nearest folder up from here holding local-cluster/. */
  public static Path home() {
    String set = System.getProperty("resgraph.home");
    if (set != null) return Path.of(set).toAbsolutePath();
    for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
      if (Files.isDirectory(p.resolve("local-cluster")) && Files.isRegularFile(p.resolve("pom.xml"))) return p;
    }
    throw new IllegalStateException("cannot find the resgraph folder: set -Dresgraph.home");
  }

  /** The runtime classpath of a module, as its build wrote it. */
  public static String classpath(String module) {
    Path root = home();
    Path file = root.resolve(module).resolve("target/classpath.txt");
    try {
      return root.resolve(module).resolve("target/classes") + java.io.File.pathSeparator + Files.readString(file).strip();
    } catch (IOException e) {
      throw new UncheckedIOException("module " + module + " is not built (no " + file + "): run ./mvnw -DskipTests package", e);
    }
  }

  /** Starts {@code java JVM_ARGS -cp CLASSPATH MAIN ARGS} from the module's build output, its output appended to {@code log}. */
  public static Process start(String module, String mainClass, List<String> jvmArgs, List<String> args, Path log) {
    return startOn(classpath(module), mainClass, jvmArgs, args, log);
  }

  /** The same with this JVM's own classpath: for a main of a module this process was started with. */
  public static Process startHere(String mainClass, List<String> jvmArgs, List<String> args, Path log) {
    return startOn(System.getProperty("java.class.path"), mainClass, jvmArgs, args, log);
  }

  private static Process startOn(String classpath, String mainClass, List<String> jvmArgs, List<String> args, Path log) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(jvmArgs);
    cmd.add("-cp");
    cmd.add(classpath);
    cmd.add(mainClass);
    cmd.addAll(args);
    try {
      Files.createDirectories(log.getParent());
      ProcessBuilder builder = new ProcessBuilder(cmd).redirectErrorStream(true)
          .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()));
      // glibc gives each thread that allocates its own arena, up to 8 a core, and keeps what they free; and after
      // freeing a large block it serves blocks up to that size (to 32 MB) from the arenas instead of the kernel. The
      // model server's libtorch buffers grew its resident memory by 135 MB a layer pair that way, and ran slower
      // (PERFORMANCE.md). A fixed threshold of 16 MB ends both. Each block above it is fresh memory from the kernel,
      // and on a virtual machine its first touch costs a page fault per 4 KB: a float64 add of 100 MB of attention
      // took 230 ms that way, 22 ms with huge pages, which glibc asks for when its tunable says so (where the kernel's
      // transparent huge pages are "madvise"). Values the user sets win.
      builder.environment().putIfAbsent("MALLOC_ARENA_MAX", "2");
      builder.environment().putIfAbsent("MALLOC_MMAP_THRESHOLD_", Integer.toString(16 << 20));
      builder.environment().putIfAbsent("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
      return builder.start();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + mainClass, e);
    }
  }

  /** The lowest port {@link #freePort} hands out. */
  private static final int FIRST_PORT = 10000;
  private static final Random RANDOM = new Random();
  private static final Set<Integer> handedOut = new HashSet<>();

  /**
   * A port nothing listens on, for a component to bind later. Not one the system picks for port 0:
   * that comes from the ephemeral range, where every outgoing connection takes its local port too,
   * and between the pick and the bind a client of Kafka or Neo4j took one (the graph service's
   * circuit browser then failed to start). So a random port below that range, once per process.
   */
  public static synchronized int freePort() {
    int below = ephemeralStart();
    for (int attempt = 0; attempt < 1000; attempt++) {
      int port = FIRST_PORT + RANDOM.nextInt(below - FIRST_PORT);
      if (!handedOut.add(port)) continue;
      try (ServerSocket s = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
        return port;
      } catch (IOException taken) {
        // something listens there: try another
      }
    }
    throw new IllegalStateException("no free port between " + FIRST_PORT + " and " + below);
  }

  /** Where the system's ephemeral ports begin (Linux says so in /proc; 32768 is its default). */
  private static int ephemeralStart() {
    try {
      // read by lines: Files.readString takes the size a /proc file claims, and gets its first byte alone
      String range = Files.readAllLines(Path.of("/proc/sys/net/ipv4/ip_local_port_range")).get(0);
      int start = Integer.parseInt(range.trim().split("\\s+")[0]);
      return Math.max(FIRST_PORT + 1000, start);
    } catch (IOException | RuntimeException notLinux) {
      return 32768;
    }
  }

  /** Waits until the port accepts connections; fails with the log's tail if the process ends first. */
  public static void awaitPort(String name, Process process, int port, Duration timeout, Path log) {
    await(name, "open port " + port, process, timeout, log, () -> accepts(port));
  }

  /** Whether something accepts connections on the port of 127.0.0.1. */
  public static boolean accepts(int port) {
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress("127.0.0.1", port), 200);
      return true;
    } catch (IOException notYet) {
      return false;
    }
  }

  /**
   * Waits until {@code ready} holds (the process did {@code what}); fails with the log's tail if the
   * process ends first or the timeout passes.
   */
  public static void await(String name, String what, Process process, Duration timeout, Path log, BooleanSupplier ready) {
    Instant deadline = Instant.now().plus(timeout);
    while (Instant.now().isBefore(deadline)) {
      if (!process.isAlive()) {
        throw new IllegalStateException(name + " exited with code " + process.exitValue() + " while starting:\n" + tail(log));
      }
      if (ready.getAsBoolean()) return;
      try {
        Thread.sleep(100); // polling another process that says nothing when it is ready: nothing to wait on instead
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted waiting for " + name, e);
      }
    }
    throw new IllegalStateException(name + " did not " + what + " within " + timeout.toSeconds() + " s:\n" + tail(log));
  }

  /** The last lines of a log, to show why a component failed. */
  public static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 15), lines.size()));
    } catch (IOException e) {
      return "(no log at " + log + ")";
    }
  }
}
