package resgraph.model;

import ai.djl.pytorch.jni.JniUtils;

/**
 * The thread count {@code ai.djl.pytorch.num_threads} asks for, on whichever thread computes.
 *
 * <p>DJL sets the count on the thread that starts the engine. libtorch hands it on to another
 * thread only when that thread first runs a parallel loop, and MKL keeps its own count per thread,
 * so a matrix product that comes before any large elementwise operation on a new thread runs on
 * every core. Its float sums then split differently, and the same request gave different bits
 * depending on which of the server's threads took it.
 */
public final class TorchThreads {

  private static final Integer CONFIGURED = Integer.getInteger("ai.djl.pytorch.num_threads");

  private TorchThreads() {}

  /** Sets the configured count on the calling thread, if one is configured; call once the engine is loaded. */
  public static void adopt() {
    if (CONFIGURED != null) JniUtils.setNumThreads(CONFIGURED);
  }
}
