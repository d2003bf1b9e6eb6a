package resgraph.graph;

/** A raw edge {@code layer.source -> (layer+1).target} of a job, with its weight e (METHOD.md step 6). */
public record RawEdge(int layer, int source, int target, float weight) {

  /** "layer.source", e.g. "5.10603". */
  public String sourceId() {
    return layer + "." + source;
  }

  /** "(layer+1).target". */
  public String targetId() {
    return (layer + 1) + "." + target;
  }
}
