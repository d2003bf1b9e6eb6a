package resgraph.viewer;

import java.util.stream.Collectors;
import resgraph.v1.Job;
import resgraph.v1.SaeSetting;

/** How a job's SAEs were read, in one line for a picture's header; graph.json and the viewer keep each source. */
final class SaesCaption {

  private SaesCaption() {}

  /** E.g. "release gpt2-small-res-jb · centering on · architecture standard · normalize_activations none". */
  static String of(Job job) {
    return job.getSaesSettingsList().stream().filter(s -> !s.getName().equals("cfg.json layout"))
        .map(SaesCaption::text).collect(Collectors.joining(" · "));
  }

  private static String text(SaeSetting s) {
    return s.getName() + " " + s.getValue() + (s.getHooksCount() == 0 ? "" : " (" + s.getHooksCount() + " SAEs)");
  }
}
