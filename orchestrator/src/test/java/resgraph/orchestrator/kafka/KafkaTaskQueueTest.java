package resgraph.orchestrator.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import resgraph.v1.AblationTask;

class KafkaTaskQueueTest {

  private static List<Integer> partitions(String job, int tasks, int n) {
    return IntStream.range(0, tasks)
        .mapToObj(t -> KafkaTaskQueue.partition(AblationTask.newBuilder().setJobId(job).setTask(t).build(), n)).toList();
  }

  @Test
  void aJobsTasksFallEvenlyOnWorkersWhetherTheyOwnRangesOfPartitionsOrEveryOtherOne() {
    for (String job : List.of("j-20261203-150226-8027", "j-20261203-150150-89da", "j-1", "j-2", "j-3")) {
      for (int tasks : new int[] {5, 11, 16}) {
        List<Integer> at = partitions(job, tasks, 16);
        assertEquals(tasks, new HashSet<>(at).size(), job + ": no two of " + tasks + " tasks share a partition of 16");
        for (int workers : new int[] {2, 4}) {
          int[] ranges = new int[workers], alternate = new int[workers];
          for (int p : at) {
            ranges[p / (16 / workers)]++;
            alternate[p % workers]++;
          }
          assertEven(ranges, job + ", " + tasks + " tasks, " + workers + " workers owning ranges");
          assertEven(alternate, job + ", " + tasks + " tasks, " + workers + " workers owning every " + workers + "th");
        }
      }
    }
  }

  @Test
  void everyPartitionCountIsFilledBeforeAnyIsUsedTwice() {
    for (int n : new int[] {1, 2, 3, 4, 6, 12, 16, 30, 64}) {
      Set<Integer> seen = new HashSet<>(partitions("j-7", n, n));
      assertEquals(n, seen.size(), n + " tasks on " + n + " partitions");
      assertTrue(seen.stream().allMatch(p -> p >= 0 && p < n));
    }
  }

  /** Within two of each other: a hash put eight of a job's eleven tasks on one of two workers. */
  private static void assertEven(int[] counts, String what) {
    int min = IntStream.of(counts).min().getAsInt(), max = IntStream.of(counts).max().getAsInt();
    assertTrue(max - min <= 2, what + ": " + java.util.Arrays.toString(counts));
  }
}
