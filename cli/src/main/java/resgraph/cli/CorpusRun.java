package resgraph.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import resgraph.v1.Circuit;
import resgraph.v1.Corpus;
import resgraph.v1.CorpusEdge;
import resgraph.v1.CorpusJob;
import resgraph.v1.CorpusMember;
import resgraph.v1.CorpusNode;
import resgraph.v1.CorpusPrompt;
import resgraph.v1.CorpusSpec;
import resgraph.v1.Edge;
import resgraph.v1.GetCorpusRequest;
import resgraph.v1.GetJobRequest;
import resgraph.v1.GraphServiceGrpc.GraphServiceBlockingStub;
import resgraph.v1.Job;
import resgraph.v1.JobServiceGrpc.JobServiceBlockingStub;
import resgraph.v1.JobSpec;
import resgraph.v1.Node;
import resgraph.v1.Phase;
import resgraph.viewer.CircuitDot;

/**
 * {@code resgraph run --prompts FILE}: a corpus, submitted as one (JobService.SubmitCorpus): every
 * prompt a job of its own, sharing the cluster; one progress line over them (WatchCorpus); each prompt's files in a
 * folder of its own; then the corpus (METHOD.md "Across prompts", over these jobs): corpus.json,
 * corpus_edges.parquet, and the corpus circuit (the edges nonzero in at least --min-share of the
 * prompts, weighted by their mean) drawn as corpus.svg and shown with its tables in corpus.html.
 */
final class CorpusRun {

  /** One line of the prompts file. */
  record Prompt(String text, Integer target) {}

  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private CorpusRun() {}

  /** The prompts: a line each, or JSON lines {"prompt": ..., "target": ...}; blank lines are skipped. */
  static List<Prompt> read(Path file) throws IOException {
    if (!Files.isRegularFile(file)) throw new IllegalArgumentException("--prompts " + file + ": no such file");
    List<Prompt> prompts = new ArrayList<>();
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (line.isBlank()) continue;
      if (!line.stripLeading().startsWith("{")) {
        prompts.add(new Prompt(line, null));
        continue;
      }
      String where = file + " line " + (i + 1) + ": ";
      JsonNode o;
      try {
        o = JSON.readTree(line);
      } catch (JsonProcessingException e) {
        throw new IllegalArgumentException(where + "not JSON: " + e.getOriginalMessage());
      }
      for (var names = o.fieldNames(); names.hasNext(); ) {
        String name = names.next();
        if (name.equals("contrast")) {
          throw new IllegalArgumentException(where + "\"contrast\" is for the approximate methods' metric, which exact jobs do not use");
        }
        if (!name.equals("prompt") && !name.equals("target")) {
          throw new IllegalArgumentException(where + "unknown field \"" + name + "\" (a line has \"prompt\" and optionally \"target\")");
        }
      }
      if (!o.path("prompt").isTextual() || o.get("prompt").asText().isEmpty()) {
        throw new IllegalArgumentException(where + "\"prompt\" must be a non-empty string");
      }
      if (o.has("target") && !o.get("target").canConvertToInt()) {
        throw new IllegalArgumentException(where + "\"target\" must be a whole number");
      }
      prompts.add(new Prompt(o.get("prompt").asText(), o.has("target") ? o.get("target").asInt() : null));
    }
    if (prompts.isEmpty()) throw new IllegalArgumentException("--prompts " + file + " has no prompts");
    return prompts;
  }

  /** Runs the corpus; 0 when every prompt's job is done, 1 when some failed (the corpus is then of the others). */
  static int run(JobServiceBlockingStub jobs, GraphServiceBlockingStub graph, JobSpec template, List<Prompt> prompts, Path out,
      double minShare, int top) throws IOException, InterruptedException {
    CorpusJob corpusJob = submitAndFollow(jobs, spec(template, prompts));

    Files.createDirectories(out);
    List<String> done = new ArrayList<>();
    ArrayNode promptRows = JSON.createArrayNode();
    for (CorpusMember m : corpusJob.getMembersList()) {
      String folder = "prompt-%03d".formatted(m.getIndex() + 1);
      ObjectNode row = promptRows.addObject().put("prompt", prompts.get(m.getIndex()).text()).put("job", m.getJobId())
          .put("phase", RunCommand.phaseName(m.getPhase()));
      if (m.getPhase() == Phase.PHASE_DONE) {
        RunCommand.writeJobFiles(graph, m.getJobId(), out.resolve(folder));
        row.put("folder", folder).put("raw_edges", m.getProgress().getEdgesWritten());
        done.add(m.getJobId());
      } else {
        row.put("error", m.getError());
        System.err.println("resgraph: prompt " + (m.getIndex() + 1) + " (job " + m.getJobId() + ") " + RunCommand.phaseName(m.getPhase())
            + (m.getError().isEmpty() ? "" : ": " + m.getError()));
      }
    }
    if (!corpusJob.getError().isEmpty()) System.err.println("resgraph: " + corpusJob.getError());
    if (done.isEmpty()) {
      System.err.println("resgraph: no prompt finished, so there is no corpus");
      return 1;
    }
    GetCorpusRequest request = GetCorpusRequest.newBuilder().addAllJobIds(done).setMinShare(minShare).setTop(top)
        .setIncludeParquet(true).build();
    Corpus corpus = new Outage("graph service", graph.getChannel()).call(() -> graph.getCorpus(request));
    Files.write(out.resolve("corpus_edges.parquet"), corpus.getCorpusEdgesParquet().toByteArray());
    JSON.writeValue(out.resolve("corpus.json").toFile(), json(corpusJob.getId(), corpus, minShare, promptRows));
    Files.writeString(out.resolve("corpus.dot"), CircuitDot.of(circuit(corpus), false));
    boolean svg = GraphvizSvg.draw(out.resolve("corpus.dot"), out.resolve("corpus.svg"));
    Files.writeString(out.resolve("corpus.html"), page(corpus, minShare, svg ? Files.readString(out.resolve("corpus.svg")) : null));
    System.out.print(table(corpus, minShare));
    System.err.println("resgraph: wrote " + done.size() + " prompt folders, corpus.json, corpus_edges.parquet, corpus.dot"
        + (svg ? ", corpus.svg" : "") + " and corpus.html to " + out.toAbsolutePath());
    return done.size() == prompts.size() ? 0 : 1;
  }

  /** A job of the template's for each prompt; --target is every prompt's that names none of its own. */
  static CorpusSpec spec(JobSpec template, List<Prompt> prompts) {
    CorpusSpec.Builder spec = CorpusSpec.newBuilder().setJob(template.toBuilder().clearPrompt().clearTarget());
    for (Prompt p : prompts) {
      CorpusPrompt.Builder prompt = CorpusPrompt.newBuilder().setPrompt(p.text());
      if (p.target() != null) prompt.setTarget(p.target());
      else if (template.hasTarget()) prompt.setTarget(template.getTarget());
      spec.addPrompts(prompt);
    }
    return spec.build();
  }

  /** Submits the corpus and follows it to its end on one progress line; the corpus as it ended. */
  static CorpusJob submitAndFollow(JobServiceBlockingStub jobs, CorpusSpec spec) {
    CorpusJob corpus = jobs.submitCorpus(spec);
    System.err.println("resgraph: corpus " + corpus.getId() + ": " + spec.getPromptsCount() + " prompts, a job each");
    ProgressBar bar = new ProgressBar(System.err);
    GetJobRequest req = GetJobRequest.newBuilder().setId(corpus.getId()).build();
    AtomicReference<CorpusJob> last = new AtomicReference<>(corpus);
    new Outage("orchestrator", jobs.getChannel()).follow(() -> jobs.watchCorpus(req), c -> {
      last.set(c);
      bar.show(c);
    });
    bar.done();
    return last.get();
  }

  /** The corpus circuit as a circuit the viewer draws: nodes without a prompt of their own, edges weighted by their mean. */
  static Circuit circuit(Corpus corpus) {
    Map<String, CorpusNode> known = new LinkedHashMap<>();
    for (CorpusNode n : corpus.getNodesList()) known.put(n.getId(), n);
    Map<String, Integer> sites = new LinkedHashMap<>();
    for (int i = 0; i < corpus.getChainCount(); i++) sites.put(corpus.getChain(i).getNodePrefix(), i);
    TreeSet<String> ids = new TreeSet<>((a, b) -> {
      int sa = sites.get(prefix(a)), sb = sites.get(prefix(b));
      return sa != sb ? Integer.compare(sa, sb) : Integer.compare(latent(a), latent(b));
    });
    Circuit.Builder c = Circuit.newBuilder().setJob(Job.newBuilder().setId("corpus")
        .setSpec(JobSpec.newBuilder().setRef(corpus.getRef())).addAllChain(corpus.getChainList()));
    for (CorpusEdge e : corpus.getEdgesList()) {
      c.addEdges(Edge.newBuilder().setSource(e.getSource()).setTarget(e.getTarget()).setWeight((float) e.getMean()));
      ids.add(e.getSource());
      ids.add(e.getTarget());
    }
    for (String id : ids) {
      var site = corpus.getChain(sites.get(prefix(id)));
      c.addNodes(Node.newBuilder().setId(id).setLayer(site.getLayer()).setLatent(latent(id)).setHookName(site.getHookName()));
    }
    return c.build();
  }

  private static String prefix(String nodeId) {
    return nodeId.substring(0, nodeId.lastIndexOf('.'));
  }

  private static int latent(String nodeId) {
    return Integer.parseInt(nodeId.substring(nodeId.lastIndexOf('.') + 1));
  }

  private static ObjectNode json(String corpusId, Corpus corpus, double minShare, ArrayNode prompts) {
    ObjectNode o = JSON.createObjectNode().put("schema", "resgraph.corpus/v1").put("corpus", corpusId)
        .put("model", corpus.getRef().getModel()).put("saes", corpus.getRef().getSaes());
    ArrayNode chain = o.putArray("chain");
    corpus.getChainList().forEach(s -> chain.add(s.getHookName()));
    o.put("jobs", corpus.getJobs()).put("min_share", minShare).put("distinct_edges", corpus.getDistinctEdges());
    o.set("prompts", prompts);
    ArrayNode edges = o.putArray("edges");
    for (CorpusEdge e : corpus.getEdgesList()) {
      edges.addObject().put("source", e.getSource()).put("target", e.getTarget()).put("jobs", e.getJobs())
          .put("share", (double) e.getJobs() / corpus.getJobs()).put("mean", e.getMean()).put("variance", e.getVariance())
          .put("min", e.getMin()).put("max", e.getMax());
    }
    ArrayNode nodes = o.putArray("nodes");
    for (CorpusNode n : corpus.getNodesList()) {
      nodes.addObject().put("id", n.getId()).put("hook", n.getHookName()).put("layer", n.getLayer()).put("latent", n.getLatent())
          .put("jobs", n.getJobs()).put("share", (double) n.getJobs() / corpus.getJobs()).put("mean_activation", n.getMeanActivation());
    }
    return o;
  }

  /** The most recurrent nodes and the corpus circuit's edges, as text. */
  static String table(Corpus corpus, double minShare) {
    StringBuilder s = new StringBuilder();
    s.append(String.format(Locale.ROOT, "corpus of %d prompts: %,d distinct edges; %d in at least %.0f%% of the prompts%n",
        corpus.getJobs(), corpus.getDistinctEdges(), corpus.getEdgesCount(), 100 * minShare));
    s.append("most recurrent nodes (prompts where active up to the target, mean activation there)\n");
    for (CorpusNode n : corpus.getNodesList().subList(0, Math.min(15, corpus.getNodesCount()))) {
      s.append(String.format(Locale.ROOT, "  %-14s %4d/%d  %10.4f%n", n.getId(), n.getJobs(), corpus.getJobs(), n.getMeanActivation()));
    }
    s.append("most recurrent edges (prompts where nonzero, mean effect, its spread)\n");
    corpus.getEdgesList().stream().limit(15).forEach(e -> s.append(String.format(Locale.ROOT, "  %-14s -> %-14s %4d/%d  %+10.4f  ± %.4f%n",
        e.getSource(), e.getTarget(), e.getJobs(), corpus.getJobs(), e.getMean(), Math.sqrt(e.getVariance()))));
    return s.toString();
  }

  /** corpus.html: the drawing (when Graphviz drew it) and the two tables, on one page that needs no network. */
  private static String page(Corpus corpus, double minShare, String svg) {
    StringBuilder h = new StringBuilder("<!doctype html><html><head><meta charset=\"utf-8\"><title>resgraph corpus</title><style>"
        + "body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}"
        + "td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}"
        + ".neg{color:#c0392b}.pos{color:#2c6fbb}</style></head><body>");
    h.append(String.format(Locale.ROOT, "<h1>%s with SAEs %s</h1><p>%d prompts; %,d distinct edges; the circuit: %d edges nonzero in at"
        + " least %.0f%% of the prompts, drawn with their mean effect (red: excites, blue: inhibits).</p>", esc(corpus.getRef().getModel()),
        esc(corpus.getRef().getSaes()), corpus.getJobs(), corpus.getDistinctEdges(), corpus.getEdgesCount(), 100 * minShare));
    h.append(svg != null ? svg.substring(svg.indexOf("<svg")) : "<p>(no drawing: Graphviz's dot is not installed)</p>");
    h.append("<h2>Edges</h2><table><tr><th>source</th><th>target</th><th>prompts</th><th>mean</th><th>std</th><th>min</th><th>max</th></tr>");
    for (CorpusEdge e : corpus.getEdgesList()) {
      h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%d</td><td class=\"%s\">%+.4g</td><td>%.3g</td><td>%+.4g</td>"
          + "<td>%+.4g</td></tr>", e.getSource(), e.getTarget(), e.getJobs(), e.getMean() < 0 ? "neg" : "pos", e.getMean(),
          Math.sqrt(e.getVariance()), e.getMin(), e.getMax()));
    }
    h.append("</table><h2>Nodes</h2><table><tr><th>node</th><th>site</th><th>prompts</th><th>mean activation</th></tr>");
    for (CorpusNode n : corpus.getNodesList()) {
      h.append(String.format(Locale.ROOT, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%.4g</td></tr>", n.getId(), esc(n.getHookName()),
          n.getJobs(), n.getMeanActivation()));
    }
    return h.append("</table></body></html>\n").toString();
  }

  private static String esc(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
