package resgraph.graph.http;

import com.sun.net.httpserver.HttpExchange;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import resgraph.platform.grpc.SecurityConfig;
import resgraph.platform.grpc.Tokens;

/**
 * The circuit browser behind the cluster's bearer token, as its gRPC is. A request is let in with
 * the token as "Authorization: Bearer TOKEN" (scripts), or as the cookie a browser got from
 * opening one link with {@code ?token=TOKEN} (which {@code ./resgraph status} prints): that
 * request sets the cookie and redirects to the same page without the token, so it stays out of
 * the history and of the pages' links. Without security ({@code resgraph.security.enabled=false},
 * a test on loopback) everyone is let in.
 */
final class BrowserLogin {

  static final String COOKIE = "resgraph_token";

  /** The tokens that let a browser in; null when anyone may. */
  private final Tokens tokens;

  BrowserLogin(SecurityConfig security) {
    this.tokens = security.enabled() ? security.tokens() : null;
  }

  /** Whether the request may go on; when not, this has answered it (the redirect that logs in, or 401). */
  boolean admit(HttpExchange x) throws IOException {
    if (tokens == null) return true;
    String header = x.getRequestHeaders().getFirst("Authorization");
    if (header != null && header.startsWith("Bearer ") && tokens.accepts(header.substring("Bearer ".length()))) return true;
    for (String cookies : x.getRequestHeaders().getOrDefault("Cookie", List.of())) {
      for (String cookie : cookies.split(";")) {
        String c = cookie.strip();
        if (c.startsWith(COOKIE + "=") && tokens.accepts(c.substring(COOKIE.length() + 1))) return true;
      }
    }
    String query = x.getRequestURI().getRawQuery();
    List<String> rest = new ArrayList<>();
    String given = null;
    for (String pair : query == null ? new String[0] : query.split("&")) {
      if (pair.startsWith("token=")) given = URLDecoder.decode(pair.substring("token=".length()), StandardCharsets.UTF_8).strip();
      else rest.add(pair);
    }
    if (given != null && tokens.accepts(given)) {
      x.getResponseHeaders().add("Set-Cookie", COOKIE + "=" + given + "; Path=/; HttpOnly; SameSite=Strict");
      x.getResponseHeaders().set("Location", x.getRequestURI().getRawPath() + (rest.isEmpty() ? "" : "?" + String.join("&", rest)));
      x.sendResponseHeaders(303, -1);
      return false;
    }
    byte[] body = ("This circuit browser needs the cluster's token: open the link that ./resgraph status prints once, "
        + "or send Authorization: Bearer TOKEN.\n").getBytes(StandardCharsets.UTF_8);
    x.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
    x.getResponseHeaders().set("WWW-Authenticate", "Bearer");
    x.sendResponseHeaders(401, body.length);
    x.getResponseBody().write(body);
    return false;
  }
}
