package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * A product computed on a new thread gives the bits it gives on the thread that started libtorch,
 * once that thread adopts the configured count ({@link TorchThreads}). A JVM of its own, started
 * as the local cluster starts its model server, with one thread configured.
 */
class TorchThreadsTest {

  @Test
  void aNewThreadThatAdoptsTheCountComputesTheSameBits() throws Exception {
    Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-Dai.djl.offline=true", "-Dai.djl.pytorch.num_threads=1", "-cp", System.getProperty("java.class.path"),
        Probe.class.getName()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), out);
    Matcher m = Pattern.compile("plain (\\d+) adopted (\\d+)").matcher(out);
    assertTrue(m.find(), out);
    assertEquals(0, Integer.parseInt(m.group(2)), "values that differ on a thread that adopted the count: " + out);
    if (Runtime.getRuntime().availableProcessors() > 1) {
      // what adopting prevents: a new thread's first product runs on every core, and rounds differently
      assertNotEquals(0, Integer.parseInt(m.group(1)), "the probe no longer shows the case it guards against: " + out);
    }
  }

  /** Prints how many values of a product differ from the engine thread's on a new thread, without and with adopting. */
  public static final class Probe {
    public static void main(String[] args) throws Exception {
      try (NDManager nd = NDManager.newBaseManager()) { // starts the engine on this thread, at the configured count
        // a shape whose product MKL splits along the summed dimension when it has more than one thread
        NDArray x = nd.randomNormal(new Shape(9, 768)), w = nd.randomNormal(new Shape(768, 24576));
        float[] here = x.matMul(w).toFloatArray();
        float[] plain = onNewThread(() -> x.matMul(w).toFloatArray());
        float[] adopted = onNewThread(() -> {
          TorchThreads.adopt();
          return x.matMul(w).toFloatArray();
        });
        System.out.println("plain " + differing(here, plain) + " adopted " + differing(here, adopted));
      }
    }

    private static float[] onNewThread(Callable<float[]> work) throws Exception {
      ExecutorService thread = Executors.newSingleThreadExecutor();
      try {
        return thread.submit(work).get();
      } finally {
        thread.shutdown();
      }
    }

    private static long differing(float[] a, float[] b) {
      return IntStream.range(0, a.length).filter(i -> Float.floatToIntBits(a[i]) != Float.floatToIntBits(b[i])).count();
    }
  }
}
