package resgraph.viewer;

import java.util.List;

/**
 * The pages the graph service serves around the circuit viewer: the list of stored jobs, the
 * Cypher box, and a notice for a job that has no circuit yet or does not exist.
 */
public final class SitePages {

  /**
   * One stored job as the list shows it; {@code created} is ISO-8601 or empty, {@code phase} the
   * job's phase in words ("running", "failed", ...).
   */
  public record JobRow(String id, String prompt, String model, String saes, String method, String created, boolean finalized,
      String phase, int nodes, int edges, long rawEdges) {}

  private SitePages() {}

  /** The stored jobs; each finalized one links to its {@code files}, served as /jobs/{id}/{file}. */
  public static String jobs(List<JobRow> jobs, List<String> files) {
    StringBuilder b = new StringBuilder("<main id=\"jobs\"><div>");
    if (jobs.isEmpty()) {
      b.append("<p class=\"hint\" style=\"margin:16px\">No jobs stored yet. <code>./resgraph run</code> makes one.</p>");
    } else {
      b.append("<table class=\"jobs\"><thead><tr><th>job</th><th>prompt</th><th>model · SAEs</th><th>method</th><th>created</th>")
          .append("<th>circuit</th><th>files</th></tr></thead><tbody>");
      for (JobRow j : jobs) {
        String href = "/jobs/" + Page.escape(j.id());
        b.append("<tr><td><a href=\"").append(href).append("\">").append(Page.escape(j.id())).append("</a></td>")
            .append("<td>").append(Page.escape(j.prompt())).append("</td>")
            .append("<td>").append(Page.escape(j.model())).append(" · ").append(Page.escape(j.saes())).append("</td>")
            .append("<td>").append(Page.escape(j.method())).append("</td>")
            .append("<td>").append(Page.escape(j.created())).append("</td>");
        if (j.finalized()) {
          b.append("<td>").append(j.nodes()).append(" nodes, ").append(j.edges()).append(" edges of ")
              .append(String.format("%,d", j.rawEdges())).append(" raw</td><td>");
          for (String file : files) b.append("<a href=\"").append(href).append('/').append(file).append("\">").append(file).append("</a> ");
          b.append("</td>");
        } else {
          b.append("<td class=\"hint\">not finalized: ").append(Page.escape(j.phase())).append("</td><td></td>");
        }
        b.append("</tr>");
      }
      b.append("</tbody></table>");
    }
    return page("resgraph · jobs", "Stored jobs", b.append("</div></main>").toString(), "");
  }

  /** The Cypher box; {@code job} (or null) fills the example queries' $job parameter. */
  public static String cypher(String job) {
    String body = Page.resource("cypher-body.html").replace("{{job}}", Page.escape(job == null ? "" : job));
    String scripts = "<script>" + Page.webjar("viz.js/2.1.2/viz.js") + "</script>\n<script>"
        + Page.webjar("viz.js/2.1.2/full.render.js") + "</script>\n<script>" + Page.resource("cypher.js") + "</script>";
    return page("resgraph · Cypher", "Cypher, read-only", body, scripts);
  }

  public static String notice(String heading, String message) {
    return page("resgraph · " + heading, Page.escape(heading),
        "<main><p style=\"margin:16px\">" + Page.escape(message) + "</p></main>", "");
  }

  private static String page(String title, String heading, String body, String scripts) {
    return Page.fill("site.html", List.of("head", Page.head(title), "heading", heading,
        "body", body, "scripts", scripts));
  }
}
