package resgraph.graph;

import java.util.Optional;

/**
 * The SAE releases Neuronpedia hosts, and where: its model id, its source set, and a latent's page
 * (METHOD.md step 9).
 */
public record Neuronpedia(String modelId, String sourceSet) {

  /** Neuronpedia's home of a release, if it has one; {@code saes} is the job's ModelRef.saes. */
  public static Optional<Neuronpedia> of(String saes) {
    return saes.equals("gpt2-small-res-jb") ? Optional.of(new Neuronpedia("gpt2-small", "res-jb")) : Optional.empty();
  }

  /** The page of one latent, e.g. https://www.neuronpedia.org/gpt2-small/5-res-jb/10603. */
  public String page(int layer, int latent) {
    return "https://www.neuronpedia.org/" + modelId + "/" + layer + "-" + sourceSet + "/" + latent;
  }
}
