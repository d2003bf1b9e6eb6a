package resgraph.graph;

import com.google.protobuf.ByteString;
import jakarta.inject.Singleton;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import resgraph.platform.ResgraphException;
import resgraph.v1.ChainSite;
import resgraph.v1.Corpus;
import resgraph.v1.CorpusEdge;
import resgraph.v1.CorpusNode;
import resgraph.v1.GetCorpusRequest;
import resgraph.v1.Job;

/**
 * GetCorpus: METHOD.md "Across prompts" over one corpus of finished jobs, computed from their edge
 * files in one DuckDB aggregate (every raw edge of every job, so exact), and its nodes' from the
 * jobs' candidates ({@link JobNodes#candidates}). The statistics of every job of a model ({@link CorpusStatistics})
 * grow one job at a time; these are of the jobs asked for alone.
 */
@Singleton
public final class CorpusCircuits {

  static final double DEFAULT_MIN_SHARE = 0.5;
  static final int DEFAULT_TOP = 50;

  private final JobNodes jobs;
  private final EdgeFiles files;

  CorpusCircuits(JobNodes jobs, EdgeFiles files) {
    this.jobs = jobs;
    this.files = files;
  }

  public Corpus summarize(GetCorpusRequest req) {
    if (req.getJobIdsCount() == 0) throw ResgraphException.badRequest("job_ids is empty: name the corpus's jobs");
    double minShare = req.getMinShare() == 0 ? DEFAULT_MIN_SHARE : req.getMinShare();
    if (!(minShare > 0 && minShare <= 1)) throw ResgraphException.badRequest("min_share must be in (0, 1], not " + req.getMinShare());
    int top = req.getTop() == 0 ? DEFAULT_TOP : req.getTop();
    if (top < 0) throw ResgraphException.badRequest("top must be positive, not " + top);
    List<String> ids = req.getJobIdsList().stream().distinct().toList();
    Job first = jobs.recorded(ids.get(0));
    for (String id : ids) {
      if (!jobs.stored(id).finalized()) {
        throw new ResgraphException(ResgraphException.Kind.NOT_READY, "job " + id + " is not finished: a corpus is of finished jobs");
      }
      Job job = jobs.recorded(id);
      if (!job.getSpec().getRef().getModel().equals(first.getSpec().getRef().getModel())
          || !job.getSpec().getRef().getSaes().equals(first.getSpec().getRef().getSaes())
          || !hooks(job).equals(hooks(first))) {
        throw ResgraphException.badRequest("job " + id + " is not of the model, SAEs and chain of job " + first.getId()
            + ": a corpus shares its nodes");
      }
    }
    SiteChain chain = SiteChain.of(first);
    int recurring = (int) Math.ceil(minShare * ids.size() - 1e-9);
    Corpus.Builder c = Corpus.newBuilder().setJobs(ids.size()).addAllChain(chain.sites()).setRef(first.getSpec().getRef());
    List<String> globs = ids.stream().map(files::glob).filter(Objects::nonNull).toList();
    if (!globs.isEmpty()) {
      String statistics = """
          SELECT source_hook, source_latent, target_hook, target_latent, count(*) AS jobs, avg(weight::DOUBLE) AS mean,
                 var_pop(weight::DOUBLE) AS variance, min(weight) AS min, max(weight) AS max
          FROM read_parquet([%s]) GROUP BY ALL""".formatted(String.join(", ", globs));
      files.run("SELECT count(*) FROM (" + statistics + ")", rows -> {
        rows.next();
        c.setDistinctEdges(rows.getLong(1));
      });
      files.run("SELECT * FROM (" + statistics + ") WHERE jobs >= " + recurring + " ORDER BY abs(mean) DESC, jobs DESC,"
          + " source_hook, source_latent, target_hook, target_latent LIMIT " + top, rows -> {
            while (rows.next()) {
              c.addEdges(CorpusEdge.newBuilder()
                  .setSource(chain.nodeId(chain.position(rows.getString(1)), rows.getInt(2)))
                  .setTarget(chain.nodeId(chain.position(rows.getString(3)), rows.getInt(4)))
                  .setJobs(rows.getInt(5)).setMean(rows.getDouble(6)).setVariance(rows.getDouble(7))
                  .setMin(rows.getFloat(8)).setMax(rows.getFloat(9)));
            }
          });
      if (req.getIncludeParquet()) c.setCorpusEdgesParquet(ByteString.copyFrom(parquet(statistics, chain)));
    }
    c.addAllNodes(nodes(ids, chain, top));
    return c.build();
  }

  /** The latents that are a candidate in most of the jobs, with their mean activation at the target over those jobs. */
  private List<CorpusNode> nodes(List<String> ids, SiteChain chain, int top) {
    record Tally(String hook, int latent, int jobs, double sum) {
      double mean() {
        return sum / jobs;
      }
    }
    Map<List<Object>, Tally> tallies = new HashMap<>();
    for (String id : ids) {
      for (JobNodes.Candidate n : jobs.candidates(id)) {
        tallies.merge(List.of(n.hook(), n.latent()), new Tally(n.hook(), n.latent(), 1, n.activation()),
            (a, b) -> new Tally(a.hook(), a.latent(), a.jobs() + b.jobs(), a.sum() + b.sum()));
      }
    }
    return tallies.values().stream()
        .sorted(Comparator.comparingInt(Tally::jobs).reversed().thenComparing(Comparator.comparingDouble(Tally::mean).reversed())
            .thenComparing(Tally::hook).thenComparingInt(Tally::latent))
        .limit(top)
        .map(t -> {
          int site = chain.position(t.hook());
          return CorpusNode.newBuilder().setId(chain.nodeId(site, t.latent())).setHookName(t.hook()).setLayer(chain.layer(site))
              .setLatent(t.latent()).setJobs(t.jobs()).setMeanActivation(t.mean()).build();
        }).toList();
  }

  /** Every edge's statistics as Parquet, node ids as graph.json writes them. */
  private byte[] parquet(String statistics, SiteChain chain) {
    Path out = files.root().resolve("corpus-" + UUID.randomUUID() + ".parquet");
    try {
      Files.createDirectories(out.getParent());
      files.run("""
          COPY (SELECT a.prefix || s.source_latent AS source, b.prefix || s.target_latent AS target, s.jobs, s.mean, s.variance,
                       s.min, s.max
                FROM (%s) s JOIN %s AS a(hook, prefix, position) ON s.source_hook = a.hook
                            JOIN %s AS b(hook, prefix, position) ON s.target_hook = b.hook
                ORDER BY a.position, s.source_latent, s.target_latent) TO %s (FORMAT parquet)"""
          .formatted(statistics, EdgeFiles.sites(chain), EdgeFiles.sites(chain), EdgeFiles.literal(out.toString())), rows -> {});
      return Files.readAllBytes(out);
    } catch (IOException e) {
      throw new UncheckedIOException("could not write " + out, e);
    } finally {
      EdgeFiles.deleteQuietly(out);
    }
  }

  private static List<String> hooks(Job job) {
    return job.getChainList().stream().map(ChainSite::getHookName).toList();
  }
}
