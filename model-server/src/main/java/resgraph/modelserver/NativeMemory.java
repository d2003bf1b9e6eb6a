package resgraph.modelserver;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Hands the memory libtorch has freed back to the operating system.
 *
 * <p>glibc keeps freed blocks in its arenas for reuse, and returns only what lies at an arena's top.
 * A pass's intermediate arrays come and go in varying sizes and orders, so the holes they leave add
 * up: over a corpus of ten prompts the model server held about 600 MB of freed memory, resident and
 * unused, on top of its weights (PERFORMANCE.md). {@code malloc_trim} releases the free pages inside
 * the arenas too, at 5-10 ms a call; but the next pass then faults in fresh pages for what it
 * allocates (a job's passes took 5.8-7.3 s trimmed after each, 5.4-6.8 s not, in a harness), so it
 * runs at most every {@link #INTERVAL_NANOS}. Elsewhere than on glibc this does nothing.
 */
final class NativeMemory {

  private static final Function TRIM = trimFunction();
  private static final long INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);
  private static final AtomicLong last = new AtomicLong(System.nanoTime());

  private NativeMemory() {}

  /** Releases the free pages of every malloc arena, unless that was done less than an interval ago. */
  static void trim() {
    long then = last.get(), now = System.nanoTime();
    if (TRIM != null && now - then >= INTERVAL_NANOS && last.compareAndSet(then, now)) TRIM.invokeInt(new Object[] {0});
  }

  private static Function trimFunction() {
    if (!Platform.isLinux()) return null;
    try {
      return NativeLibrary.getInstance(Platform.C_LIBRARY_NAME).getFunction("malloc_trim");
    } catch (UnsatisfiedLinkError e) {
      return null; // a C library without it, such as musl
    }
  }
}
