package resgraph.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import resgraph.cluster.Launcher;
import resgraph.cluster.LocalCluster;

/** {@code resgraph status}: what runs where, for people or (with --json) for scripts. */
@Command(name = "status", mixinStandardHelpOptions = true,
    description = "Show the local cluster's components, PIDs, ports, restarts and the Bolt URI. Exit code 0 when all run "
        + "(or the supervisor is restarting one), 1 otherwise.")
final class StatusCommand implements Callable<Integer> {

  @Mixin ClusterDir dir;

  @Option(names = "--json", description = "One JSON object: running, dir, bolt, endpoints, components (each with its state "
      + "and restarts), supervisor.")
  boolean json;

  @Override
  public Integer call() {
    LocalCluster c = LocalCluster.find(dir.path()).orElse(null);
    if (c == null) {
      if (json) System.out.println("{\"running\": false, \"dir\": " + new ObjectMapper().valueToTree(dir.path().toString()) + "}");
      else System.out.println("no local cluster in " + dir.path() + " (start one with: ./resgraph up)");
      return 1;
    }
    print(c, json);
    return c.healthy() ? 0 : 1;
  }

  static void print(LocalCluster c, boolean json) {
    if (json) {
      ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
      ObjectNode o = m.createObjectNode();
      o.put("running", c.healthy());
      o.put("dir", c.dir().toString());
      o.put("bolt", c.endpoints().bolt());
      o.put("neo4j_user", "neo4j");
      o.put("neo4j_password", password(c));
      o.put("credentials", c.credentials().toString());
      o.put("viewer_login", loginLink(c));
      o.set("endpoints", m.valueToTree(c.endpoints()));
      ArrayNode components = o.putArray("components");
      for (LocalCluster.Proc p : c.processes()) {
        ObjectNode n = components.addObject();
        n.put("name", p.name());
        n.put("pid", p.pid());
        if (p.port() > 0) n.put("port", p.port());
        n.put("alive", p.alive());
        n.put("state", state(c, p));
        n.put("restarts", p.restarts());
        if (p.restartedAt() != null) n.put("restarted_at", p.restartedAt());
        n.put("failed_starts", p.failedStarts());
        n.put("log", p.log());
      }
      c.supervisor().ifPresentOrElse(s -> o.putObject("supervisor").put("pid", s.pid()).put("alive", s.alive()).put("log", s.log()),
          () -> o.putNull("supervisor"));
      try {
        System.out.println(m.writeValueAsString(o));
      } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
        throw new IllegalStateException(e);
      }
      return;
    }
    System.out.println("local cluster in " + c.dir() + (c.healthy() ? "" : "  (some components have stopped)"));
    System.out.printf("  %-14s %8s %6s  %s%n", "component", "pid", "port", "state");
    for (LocalCluster.Proc p : c.processes()) {
      String history = (p.restarts() == 0 ? "" : "; restarted " + p.restarts() + (p.restarts() == 1 ? " time" : " times")
          + ", last at " + p.restartedAt()) + (p.failedStarts() == 0 ? "" : "; " + p.failedStarts() + " failed starts in a row");
      System.out.printf("  %-14s %8d %6s  %s%n", p.name(), p.pid(), p.port() > 0 ? Integer.toString(p.port()) : "-",
          state(c, p) + history + (p.alive() ? "" : " (see " + p.log() + ")"));
    }
    System.out.println(c.supervisor().filter(LocalCluster.Proc::alive)
        .map(s -> "  supervisor: pid " + s.pid() + ", restarts a component that ends (log: " + s.log() + ")")
        .orElse("  supervisor: not running, so a component that ends stays down (./resgraph up starts one)"));
    String password = password(c);
    System.out.println("  Bolt (Cypher): " + c.endpoints().bolt() + " as neo4j, "
        + (password != null ? "password " + password + " (in " + c.neo4jPasswordFile() + ", readable by you alone)"
            : "its password file " + c.neo4jPasswordFile() + " cannot be read"));
    System.out.println("  orchestrator: " + c.endpoints().orchestrator() + "   graph service: " + c.endpoints().graphService()
        + "   (gRPC over TLS with a bearer token: ca.crt and token in " + c.credentials() + ")");
    System.out.println("  circuit browser: " + loginLink(c) + " (the link logs this browser in once)");
  }

  /**
   * running (it serves), starting (it runs, its port not open yet), restarting (it ended; the
   * supervisor starts it again), failing (it ended after a failed start; the supervisor tries again
   * after a pause) or stopped (it ended, and nothing starts it again).
   */
  private static String state(LocalCluster c, LocalCluster.Proc p) {
    if (p.alive()) return p.port() == 0 || Launcher.accepts(p.port()) ? "running" : "starting";
    if (!c.supervised()) return "stopped";
    return p.failedStarts() == 0 ? "restarting" : "failing";
  }

  /** Neo4j's password; null when its file cannot be read (status reports a broken cluster too). */
  private static String password(LocalCluster c) {
    try {
      return c.neo4jPassword();
    } catch (UncheckedIOException e) {
      return null;
    }
  }

  /** The circuit browser's page of jobs, with the token that lets a browser in. */
  private static String loginLink(LocalCluster c) {
    try {
      return c.endpoints().viewer() + "/jobs?token=" + Files.readString(c.credentials().resolve("token")).strip();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + c.credentials().resolve("token"), e);
    }
  }
}
