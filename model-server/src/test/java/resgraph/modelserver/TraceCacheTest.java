package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import resgraph.model.Trace;

/** The cache's bound in bytes, against traces whose size is known. */
class TraceCacheTest {

  private static final int D = 64;

  /** A trace of one stream, 8·D bytes a token. */
  private static Trace trace(int[] tokens) {
    return new Trace(tokens, D, new double[][] {new double[tokens.length * D]}, Map.of());
  }

  private record Held(long bytes) implements Trace.Sized {}

  @Test
  void aTraceThatGrewSinceItCameInCountsAtItsSizeNow() {
    TraceCache cache = new TraceCache(1); // 1 MB
    AtomicInteger computed = new AtomicInteger();
    int[] first = {1, 2, 3}, second = {4, 5, 6};
    Trace a = cache.get(null, first, () -> {
      computed.incrementAndGet();
      return trace(first);
    });
    a.derived("clean values a request derived", () -> new Held(1 << 20));
    cache.get(null, second, () -> {
      computed.incrementAndGet();
      return trace(second);
    });
    assertEquals(2, computed.get());
    Trace again = cache.get(null, first, () -> {
      computed.incrementAndGet();
      return trace(first);
    });
    assertEquals(3, computed.get(), "the first trace, 1 MB larger than when it came in, made room for the second");
    assertEquals(1, again.tokens()[0]);
  }

  @Test
  void tracesThatFitStay() {
    TraceCache cache = new TraceCache(1);
    int[] first = {1, 2, 3}, second = {4, 5, 6};
    Trace a = cache.get(null, first, () -> trace(first));
    cache.get(null, second, () -> trace(second));
    assertSame(a, cache.get(null, first, () -> trace(first)), "two small traces fit in 1 MB");
  }

  @Test
  void aTraceOverTheBoundGoesBeforeTheNextIsMade() {
    TraceCache cache = new TraceCache(0);
    int[] first = {1, 2, 3}, second = {4, 5, 6};
    AtomicInteger firstComputed = new AtomicInteger();
    Supplier<Trace> computeFirst = () -> {
      firstComputed.incrementAndGet();
      return trace(first);
    };
    cache.get(null, first, computeFirst);
    // while the second is being made, the first is no longer cached: asked for then, it is made again
    cache.get(null, second, () -> {
      cache.get(null, first, computeFirst);
      return trace(second);
    });
    assertEquals(2, firstComputed.get());
  }

  @Test
  void lettingGoOfATraceOverTheBoundCollectsTheHeapBeforeTheNextIsMade() {
    AtomicInteger collections = new AtomicInteger();
    TraceCache cache = new TraceCache(1, collections::incrementAndGet); // 1 MB
    int[] small = {1, 2, 3}, large = new int[(1 << 20) / (8 * D) + 1], next = {4, 5, 6};
    cache.get(null, small, () -> trace(small));
    cache.get(null, large, () -> trace(large));
    assertEquals(0, collections.get(), "a small trace let go leaves the collector alone");
    AtomicInteger seenWhileMaking = new AtomicInteger(-1);
    cache.get(null, next, () -> {
      seenWhileMaking.set(collections.get());
      return trace(next);
    });
    assertEquals(1, seenWhileMaking.get(), "the heap was collected once the 1 MB trace went, before the next was made");
    cache.get(null, small, () -> trace(small));
    assertEquals(1, collections.get());
  }

  @Test
  void theNewestStaysEvenAloneOverTheBound() {
    TraceCache cache = new TraceCache(0);
    int[] tokens = {1, 2, 3};
    Trace a = cache.get(null, tokens, () -> trace(tokens));
    assertSame(a, cache.get(null, tokens, () -> trace(tokens)), "the request that made it, and the next, find it");
  }
}
