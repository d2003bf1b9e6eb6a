package resgraph.orchestrator;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Predicate;

/** Ids: a letter ("j" for a job, "c" for a corpus), the UTC time to the second and 4 random hex digits, e.g. j-20261126-153012-4f2a. */
final class JobIds {

  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss").withZone(ZoneOffset.UTC);

  private final String prefix;
  /** Ids handed out in the current second, which the store may not hold yet. */
  private final Set<String> issued = new HashSet<>();
  private Instant second = Instant.EPOCH;

  JobIds(String letter) {
    this.prefix = letter + "-";
  }

  /** A new id that is neither {@code taken} nor issued by this generator before. */
  synchronized String next(Instant now, Predicate<String> taken) {
    Instant s = now.truncatedTo(ChronoUnit.SECONDS);
    if (!s.equals(second)) {
      issued.clear();
      second = s;
    }
    while (true) {
      String id = prefix + TIME.format(s) + "-" + String.format("%04x", ThreadLocalRandom.current().nextInt(1 << 16));
      if (!taken.test(id) && issued.add(id)) return id;
    }
  }
}
