package resgraph.graph;

/**
 * A raw edge of a job (METHOD.md step 6) from latent {@code source} of the site at position
 * {@code site} of the job's chain to latent {@code target} of the next site, with its weight e.
 */
public record RawEdge(int site, int source, int target, float weight) {

  /** The edge's source node, as a number unique within the job. */
  public long sourceNode() {
    return node(site, source);
  }

  /** The edge's target node, as a number unique within the job. */
  public long targetNode() {
    return node(site + 1, target);
  }

  static long node(int site, int latent) {
    return ((long) site << 32) | (latent & 0xffffffffL);
  }
}
