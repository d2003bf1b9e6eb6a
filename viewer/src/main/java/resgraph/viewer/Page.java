package resgraph.viewer;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Assembles pages from this module's templates and the front-end libraries on the classpath. */
final class Page {

  private static final Map<String, String> CACHE = new ConcurrentHashMap<>();

  private Page() {}

  /**
   * Fills {@code {{name}}} placeholders in one pass, so text put in is never searched again (a
   * library that happened to contain "{{data}}" stays intact). {@code values} alternates names and values.
   */
  static String fill(String template, List<String> values) {
    String t = resource(template);
    Map<String, String> v = new java.util.HashMap<>();
    for (int i = 0; i < values.size(); i += 2) v.put(values.get(i), values.get(i + 1));
    StringBuilder out = new StringBuilder(t.length() + v.values().stream().mapToInt(String::length).sum());
    int at = 0;
    for (int open = t.indexOf("{{"); open >= 0; open = t.indexOf("{{", at)) {
      int close = t.indexOf("}}", open);
      String name = t.substring(open + 2, close);
      String value = v.get(name);
      if (value == null) throw new IllegalArgumentException("template " + template + " needs a value for " + name);
      out.append(t, at, open).append(name.equals("title") ? escape(value) : value);
      at = close + 2;
    }
    return out.append(t.substring(at)).toString();
  }

  /** What every page's head holds: its title, and the stylesheet inlined. */
  static String head(String title) {
    return fill("head.html", List.of("title", title, "css", resource("viewer.css")));
  }

  /** A file from src/main/resources/resgraph/viewer. */
  static String resource(String name) {
    return CACHE.computeIfAbsent(name, n -> read("resgraph/viewer/" + n));
  }

  /** A file from a WebJar, e.g. "d3/7.9.0/dist/d3.min.js", ready to inline in a script element. */
  static String webjar(String path) {
    return CACHE.computeIfAbsent("webjar:" + path, p -> scriptSafe(read("META-INF/resources/webjars/" + path)));
  }

  /** JavaScript that cannot end the script element it is inlined in. */
  static String scriptSafe(String js) {
    return js.replaceAll("(?i)</script", "<\\\\/script").replace("<!--", "<\\!--");
  }

  /** JSON for a script element: "<" only ever occurs inside its strings, where \u003c means the same. */
  static String jsonSafe(String json) {
    return json.replace("<", "\\u003c");
  }

  static String escape(String s) {
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }

  private static String read(String path) {
    try (InputStream in = Page.class.getClassLoader().getResourceAsStream(path)) {
      if (in == null) throw new IllegalStateException("missing resource " + path);
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
