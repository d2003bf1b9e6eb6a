package resgraph.modelserver;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Supplier;
import resgraph.model.SaeModel;
import resgraph.model.Trace;

/**
 * Clean traces by (loaded model, tokens), least recently used first out, bounded in bytes. A
 * stream of Ablate calls for one prompt computes its clean pass once; concurrent first requests
 * share it. Keyed by the loaded instance, not its name, so a pair reloaded from changed files
 * never sees the old traces.
 */
public final class TraceCache {

  private record Key(SaeModel model, String tokens) {
    Key(SaeModel model, int[] tokens) {
      this(model, Arrays.toString(tokens));
    }
  }

  private final long maxBytes;
  private final Runnable collect;
  private final LinkedHashMap<Key, CompletableFuture<Trace>> traces = new LinkedHashMap<>(16, 0.75f, true);

  public TraceCache(long maxMegabytes) {
    this(maxMegabytes, System::gc);
  }

  /** With {@code collect} run where the heap is to be collected (see {@link #get}). */
  TraceCache(long maxMegabytes, Runnable collect) {
    this.maxBytes = maxMegabytes << 20;
    this.collect = collect;
  }

  /** The trace of tokens on this model, computed by {@code compute} unless cached. */
  public Trace get(SaeModel model, int[] tokens, Supplier<Trace> compute) {
    Key key = new Key(model, tokens);
    CompletableFuture<Trace> future;
    boolean mine = false;
    long letGo = 0;
    synchronized (this) {
      future = traces.get(key);
      if (future == null) {
        // a trace kept over the bound only as the newest is let go before the next is made, not
        // after: at 1,024 tokens each is about a gigabyte, and the heap would hold both
        letGo = trim(null);
        future = new CompletableFuture<>();
        traces.put(key, future);
        mine = true;
      }
    }
    if (mine) {
      // What was let go stays in a heap grown to hold it until the collector needs the room, while
      // making the next long trace takes gigabytes of native memory: together, the model server's
      // peak (PERFORMANCE.md). Collected now, the heap gives that memory back first. Only for as
      // much as the whole bound at once, a long prompt's trace: short ones come and go too often.
      if (letGo > 0 && letGo >= maxBytes) collect.run();
      try {
        admit(key, future, compute.get());
      } catch (RuntimeException | Error e) {
        synchronized (this) {
          traces.remove(key);
        }
        future.completeExceptionally(e);
      }
    }
    try {
      return future.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException r) throw r;
      throw e;
    }
  }

  /**
   * Completes the entry, then lets the least recently used go until what is cached fits. Sizes are
   * taken now rather than when each trace came in: a trace grows as requests derive values from
   * it (a block's clean values at the target, some 55 MB a layer at 1,024 tokens).
   */
  private synchronized void admit(Key key, CompletableFuture<Trace> future, Trace trace) {
    future.complete(trace);
    if (traces.get(key) == future) trim(future);
  }

  /** Lets the least recently used finished traces go until what is cached fits, but {@code spared}; the bytes let go. */
  private synchronized long trim(CompletableFuture<Trace> spared) {
    long bytes = 0, letGo = 0;
    for (CompletableFuture<Trace> f : traces.values()) if (f.isDone()) bytes += f.join().bytes();
    Iterator<Map.Entry<Key, CompletableFuture<Trace>>> it = traces.entrySet().iterator();
    // the newest stays even if it alone is over the bound: the request that made it needs it now
    while (bytes > maxBytes && it.hasNext()) {
      CompletableFuture<Trace> f = it.next().getValue();
      if (!f.isDone() || f == spared) continue;
      it.remove();
      long size = f.join().bytes();
      bytes -= size;
      letGo += size;
    }
    return letGo;
  }
}
