package resgraph.modelserver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import resgraph.platform.ResgraphException;
import resgraph.platform.ResgraphException.Kind;

/**
 * Downloads files from a Hugging Face hub into a local cache, once.
 *
 * <p>{@code {base}/{repo}/resolve/main/{path}} is stored at {@code cacheDir/hub/{repo}/{path}}.
 * The body is streamed to {@code <target>.part} and renamed onto the target only once every byte
 * the hub announced has arrived, so a file at the target path is always complete; a failed
 * download leaves nothing behind. Downloads of one target are serialized within this client, so
 * concurrent callers share one download.
 */
public final class HubClient {

  private static final Logger LOG = LoggerFactory.getLogger(HubClient.class);
  private static final ObjectMapper JSON = new ObjectMapper();

  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(20);
  /** Until the response headers arrive; the body itself may take as long as it takes. */
  private static final Duration HEADERS_TIMEOUT = Duration.ofSeconds(60);

  private static final String PART_SUFFIX = ".part";
  private static final int MAX_REDIRECTS = 10;
  private static final int BUFFER_BYTES = 1 << 16;

  /** Told how a download is going; called from the downloading thread. */
  public interface Progress {
    /**
     * {@code bytesTotal} is -1 if the hub did not say. The last call for a completed download has
     * {@code bytesDone == bytesTotal}, even when the total was unknown until then.
     */
    void update(String url, long bytesDone, long bytesTotal);
  }

  private final HttpClient http;
  /** The base URL without a trailing slash. */
  private final String base;
  private final Path root;
  private final String token;
  private final Progress progress;
  private final Map<Path, ReentrantLock> locks = new ConcurrentHashMap<>();

  public HubClient(URI baseUrl, Path cacheDir, String token, Progress progress) {
    Objects.requireNonNull(baseUrl, "baseUrl");
    Objects.requireNonNull(cacheDir, "cacheDir");
    Objects.requireNonNull(progress, "progress");
    String scheme = baseUrl.getScheme();
    if (!"https".equalsIgnoreCase(scheme) && !"http".equalsIgnoreCase(scheme)) {
      throw ResgraphException.badRequest("hub URL " + baseUrl + " is not an http(s) URL");
    }
    String b = baseUrl.toString();
    while (b.endsWith("/")) b = b.substring(0, b.length() - 1);
    this.base = b;
    this.root = cacheDir.toAbsolutePath().normalize().resolve("hub");
    this.token = token == null || token.isBlank() ? null : token.strip();
    this.progress = progress;
    this.http =
        HttpClient.newBuilder()
            // followed by hand, so the token is not sent on to the CDN the hub redirects to
            .followRedirects(HttpClient.Redirect.NEVER)
            .connectTimeout(CONNECT_TIMEOUT)
            .build();
  }

  /**
   * Logs through SLF4J at most every 2 s and at completion: "downloading <url>: 41% (120.3 of
   * 290.0 MB)". Each call returns a new logger with its own timing.
   */
  public static Progress logging() {
    return new LoggingProgress();
  }

  /** The local copy of {repo}/{path}: cacheDir/hub/{repo}/{path}; downloaded on first call. */
  public Path fetch(String repo, String path) {
    return fetchIfExists(repo, path)
        .orElseThrow(
            () ->
                new ResgraphException(
                    Kind.NOT_FOUND, url(repo, path) + " does not exist on the hub (404)"));
  }

  /** As fetch, but empty when the hub answers 404 (for probing which layer folders exist). */
  public Optional<Path> fetchIfExists(String repo, String path) {
    checkRelative("repo id", repo);
    checkRelative("path", path);
    if (path.endsWith(PART_SUFFIX)) {
      // Would collide with the partial download of another file.
      throw ResgraphException.badRequest(
          "path \"" + path + "\" ends with " + PART_SUFFIX + ", which the cache reserves");
    }
    Path target = target(repo, path);
    if (Files.isRegularFile(target)) return Optional.of(target);

    ReentrantLock lock = locks.computeIfAbsent(target, t -> new ReentrantLock());
    try {
      lock.lockInterruptibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ResgraphException(
          Kind.UNAVAILABLE, "interrupted while waiting for " + url(repo, path), e);
    }
    try {
      // Another thread may have finished it while this one waited.
      if (Files.isRegularFile(target)) return Optional.of(target);
      return download(url(repo, path), target);
    } finally {
      lock.unlock();
    }
  }

  /** The folder a repository's files are cached in. */
  public Path folder(String repo) {
    checkRelative("repo id", repo);
    return root.resolve(repo).normalize();
  }

  /**
   * Every file of a repository's main revision, as paths within it, from the hub's tree API.
   * NOT_FOUND when the hub has no such repository.
   */
  public List<String> files(String repo) {
    checkRelative("repo id", repo);
    String url = base + "/api/models/" + encode(repo) + "/tree/main?recursive=true";
    HttpResponse<InputStream> response;
    try {
      response = follow(URI.create(url));
    } catch (IOException e) {
      throw new ResgraphException(Kind.UNAVAILABLE, "cannot reach " + base + ": " + reason(e) + " (listing " + url + ")", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ResgraphException(Kind.UNAVAILABLE, "interrupted while listing " + url, e);
    }
    try (InputStream body = response.body()) {
      int status = response.statusCode();
      if (status == 404) throw new ResgraphException(Kind.NOT_FOUND, "the hub has no repository " + repo + " (" + url + ": 404)");
      if (status != 200) {
        throw new ResgraphException(Kind.UNAVAILABLE, "the hub answered " + status + hubMessage(response) + " for " + url);
      }
      List<String> paths = new ArrayList<>();
      for (JsonNode entry : JSON.readTree(body)) {
        if (entry.path("type").asText().equals("file")) paths.add(entry.path("path").asText());
      }
      return paths;
    } catch (IOException e) {
      throw new ResgraphException(Kind.UNAVAILABLE, "cannot read the hub's file list of " + repo + ": " + reason(e), e);
    }
  }

  private Path target(String repo, String path) {
    try {
      Path target = root.resolve(repo).resolve(path).normalize();
      if (!target.startsWith(root) || target.equals(root)) {
        throw ResgraphException.badRequest(repo + "/" + path + " resolves outside the cache");
      }
      return target;
    } catch (InvalidPathException e) {
      throw ResgraphException.badRequest(
          "\"" + repo + "/" + path + "\" is not a usable file name: " + e.getMessage());
    }
  }

  /** A repo id or file path: '/'-separated, non-empty segments, none of them "." or "..". */
  private static void checkRelative(String what, String value) {
    if (value == null || value.isEmpty()) {
      throw ResgraphException.badRequest(what + " is empty");
    }
    if (value.indexOf('\\') >= 0) {
      throw ResgraphException.badRequest(what + " \"" + value + "\" contains a backslash");
    }
    for (int i = 0; i < value.length(); i++) {
      if (Character.isISOControl(value.charAt(i))) {
        throw ResgraphException.badRequest(what + " \"" + value + "\" contains a control character");
      }
    }
    if (value.startsWith("/")) {
      throw ResgraphException.badRequest(what + " \"" + value + "\" is an absolute path");
    }
    for (String segment : value.split("/", -1)) {
      if (segment.isEmpty() || segment.equals(".") || segment.equals("..")) {
        throw ResgraphException.badRequest(
            what + " \"" + value + "\" has an empty, \".\" or \"..\" segment");
      }
    }
  }

  private String url(String repo, String path) {
    return base + "/" + encode(repo) + "/resolve/main/" + encode(path);
  }

  /** Percent-encodes each segment, keeping the slashes between them. */
  private static String encode(String segments) {
    StringBuilder out = new StringBuilder();
    for (String segment : segments.split("/", -1)) {
      if (out.length() > 0) out.append('/');
      out.append(URLEncoder.encode(segment, StandardCharsets.UTF_8).replace("+", "%20"));
    }
    return out.toString();
  }

  private Optional<Path> download(String url, Path target) {
    HttpResponse<InputStream> response;
    try {
      response = follow(URI.create(url));
    } catch (IOException e) {
      throw new ResgraphException(
          Kind.UNAVAILABLE,
          "cannot reach " + base + ": " + reason(e) + " (fetching " + url + ")",
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ResgraphException(Kind.UNAVAILABLE, "interrupted while requesting " + url, e);
    }

    InputStream body = response.body();
    try {
      int status = response.statusCode();
      if (status == 404) return Optional.empty();
      if (status == 401 || status == 403) {
        throw new ResgraphException(
            Kind.UNAVAILABLE,
            "the hub refused "
                + url
                + " ("
                + status
                + hubMessage(response)
                + "); the repository may be gated or private and need a token (set HF_TOKEN)"
                + (token == null ? "" : ", or the given token lacks access"));
      }
      if (status != 200) {
        throw new ResgraphException(
            Kind.UNAVAILABLE, "the hub answered " + status + hubMessage(response) + " for " + url);
      }
      long total = response.headers().firstValueAsLong("Content-Length").orElse(-1);
      return Optional.of(save(url, body, total, target));
    } finally {
      try {
        body.close();
      } catch (IOException e) {
        LOG.debug("closing the response body of {} failed", url, e);
      }
    }
  }

  /**
   * GETs a URL, following up to {@value #MAX_REDIRECTS} redirects. The token goes only to the
   * hub's own host: presigned CDN URLs carry their own authorization and some refuse a second one.
   */
  private HttpResponse<InputStream> follow(URI uri) throws IOException, InterruptedException {
    URI hub = URI.create(base);
    for (int hop = 0; ; hop++) {
      HttpRequest.Builder request = HttpRequest.newBuilder(uri).timeout(HEADERS_TIMEOUT).GET();
      boolean sameHost = Objects.equals(uri.getHost(), hub.getHost()) && uri.getPort() == hub.getPort();
      if (token != null && sameHost) request.header("Authorization", "Bearer " + token);
      HttpResponse<InputStream> response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
      int status = response.statusCode();
      Optional<String> location = response.headers().firstValue("Location");
      if (status / 100 != 3 || status == 304 || location.isEmpty()) return response;
      response.body().close();
      if (hop == MAX_REDIRECTS) throw new IOException("more than " + MAX_REDIRECTS + " redirects from " + uri);
      uri = uri.resolve(location.get());
    }
  }

  /** Streams the body to {@code <target>.part}, then moves it onto the target if complete. */
  private Path save(String url, InputStream body, long total, Path target) {
    Path part = target.resolveSibling(target.getFileName() + PART_SUFFIX);
    boolean moved = false;
    try {
      try {
        Files.createDirectories(target.getParent());
      } catch (IOException e) {
        throw new ResgraphException(
            Kind.UNAVAILABLE, "cannot create cache folder " + target.getParent() + ": " + e, e);
      }
      long done = 0;
      IOException readFailure = null;
      progress.update(url, 0, total);
      try (OutputStream out =
          Files.newOutputStream(
              part,
              StandardOpenOption.CREATE,
              StandardOpenOption.TRUNCATE_EXISTING,
              StandardOpenOption.WRITE)) {
        byte[] buffer = new byte[BUFFER_BYTES];
        while (total < 0 || done <= total) {
          int n;
          try {
            n = body.read(buffer);
          } catch (IOException e) {
            readFailure = e;
            break;
          }
          if (n < 0) break;
          out.write(buffer, 0, n);
          done += n;
          progress.update(url, done, total);
        }
      } catch (IOException e) {
        throw new ResgraphException(Kind.UNAVAILABLE, "cannot write " + part + ": " + e, e);
      }

      if (readFailure != null || (total >= 0 && done != total)) {
        String why =
            Thread.currentThread().isInterrupted()
                ? "interrupted"
                : readFailure != null
                    ? "connection lost: " + reason(readFailure)
                    : done < total ? "the connection closed early" : "more bytes than announced";
        throw new ResgraphException(
            Kind.UNAVAILABLE,
            "download of "
                + url
                + " stopped after "
                + done
                + " of "
                + (total < 0 ? "unknown" : Long.toString(total))
                + " bytes ("
                + why
                + "); run again to retry",
            readFailure);
      }

      try {
        Files.move(
            part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new ResgraphException(
            Kind.UNAVAILABLE, "cannot move " + part + " to " + target + ": " + e, e);
      }
      moved = true;
      if (total < 0) progress.update(url, done, done);
      return target;
    } finally {
      if (!moved) {
        try {
          Files.deleteIfExists(part);
        } catch (IOException e) {
          LOG.warn("cannot delete the partial download {}", part, e);
        }
      }
    }
  }

  /** The hub's own explanation, which it sends in a header on errors. */
  private static String hubMessage(HttpResponse<?> response) {
    return response
        .headers()
        .firstValue("X-Error-Message")
        .map(m -> ": " + m)
        .orElse("");
  }

  /** A short, human cause: the first message along the cause chain, or what kind of failure. */
  private static String reason(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof UnresolvedAddressException || t instanceof UnknownHostException) {
        return "unknown host";
      }
      if (t instanceof HttpConnectTimeoutException) {
        return "connection timed out after " + CONNECT_TIMEOUT.toSeconds() + " s";
      }
      if (t instanceof HttpTimeoutException) {
        return "no answer within " + HEADERS_TIMEOUT.toSeconds() + " s";
      }
    }
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof ConnectException && t.getMessage() == null) {
        return "connection refused";
      }
      if (t.getMessage() != null && !t.getMessage().isBlank()) {
        return t.getMessage();
      }
    }
    return e.getClass().getSimpleName();
  }

  /** Rate-limited per URL; safe for concurrent downloads of different URLs. */
  private static final class LoggingProgress implements Progress {
    private static final long INTERVAL_NANOS = Duration.ofSeconds(2).toNanos();

    /** URL -> System.nanoTime() of the last line logged (or of the start). */
    private final Map<String, Long> lastLogged = new ConcurrentHashMap<>();

    @Override
    public void update(String url, long bytesDone, long bytesTotal) {
      long now = System.nanoTime();
      if (bytesTotal >= 0 && bytesDone >= bytesTotal) {
        lastLogged.remove(url);
        LOG.info(line(url, bytesDone, bytesTotal));
        return;
      }
      Long last = bytesDone == 0 ? null : lastLogged.get(url);
      if (last == null) {
        lastLogged.put(url, now);
      } else if (now - last >= INTERVAL_NANOS) {
        lastLogged.put(url, now);
        LOG.info(line(url, bytesDone, bytesTotal));
      }
    }

    static String line(String url, long done, long total) {
      if (total < 0) {
        return String.format(Locale.ROOT, "downloading %s: %.1f MB", url, done / 1e6);
      }
      long percent = total == 0 ? 100 : done * 100 / total;
      return String.format(
          Locale.ROOT,
          "downloading %s: %d%% (%.1f of %.1f MB)",
          url,
          percent,
          done / 1e6,
          total / 1e6);
    }
  }
}
