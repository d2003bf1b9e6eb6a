package resgraph.graph;

import java.util.AbstractList;
import java.util.List;

/**
 * Raw edges from latents of the site at position {@code site} of a job's chain to the next site,
 * as columns: edge i goes from latent {@code sources[i]} to {@code targets[i]} with weight
 * {@code weights[i]}. A task's ten thousand edges are stored and ranked from these arrays; an
 * object per edge is made only for the few that are kept.
 */
public record TaskEdges(int site, int[] sources, int[] targets, float[] weights) {

  /** The edges of one site, given as objects. */
  static TaskEdges of(int site, List<RawEdge> edges) {
    int n = edges.size();
    int[] sources = new int[n], targets = new int[n];
    float[] weights = new float[n];
    for (int i = 0; i < n; i++) {
      sources[i] = edges.get(i).source();
      targets[i] = edges.get(i).target();
      weights[i] = edges.get(i).weight();
    }
    return new TaskEdges(site, sources, targets, weights);
  }

  public int size() {
    return weights.length;
  }

  public RawEdge edge(int i) {
    return new RawEdge(site, sources[i], targets[i], weights[i]);
  }

  /** The edges as a list, each made when read. */
  public List<RawEdge> list() {
    return new AbstractList<>() {
      @Override
      public RawEdge get(int i) {
        return edge(i);
      }

      @Override
      public int size() {
        return TaskEdges.this.size();
      }
    };
  }

  /** Σ|e|, in double. */
  public double absSum() {
    double sum = 0;
    for (float w : weights) sum += Math.abs(w);
    return sum;
  }
}
