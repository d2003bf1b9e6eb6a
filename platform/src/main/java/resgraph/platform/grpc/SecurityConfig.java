package resgraph.platform.grpc;

import io.micronaut.context.annotation.ConfigurationProperties;
import io.micronaut.core.annotation.Nullable;
import io.micronaut.core.bind.annotation.Bindable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * How a service's gRPC is secured, on by default: TLS with {@code cert-file} and {@code key-file}
 * (PEM; servers), the certificate authority {@code ca-file} its clients trust (PEM), and the bearer
 * token in {@code token-file} that servers demand and clients send. {@code enabled=false} is
 * plaintext without a token, for a test on loopback; nothing else turns it off.
 */
@ConfigurationProperties("resgraph.security")
public record SecurityConfig(@Bindable(defaultValue = "true") boolean enabled, @Nullable String tokenFile,
    @Nullable String certFile, @Nullable String keyFile, @Nullable String caFile) {

  /**
   * The properties that secure a service with the files of a folder laid out as the Kubernetes
   * Secret is mounted and the local cluster keeps it: {@code token}, {@code tls.crt},
   * {@code tls.key}, {@code ca.crt}.
   */
  public static Map<String, Object> fromFolder(Path folder) {
    return Map.of("resgraph.security.token-file", folder.resolve("token").toString(),
        "resgraph.security.cert-file", folder.resolve("tls.crt").toString(),
        "resgraph.security.key-file", folder.resolve("tls.key").toString(),
        "resgraph.security.ca-file", folder.resolve("ca.crt").toString());
  }

  /** What this service's clients (its upstream channels) show other services. */
  public ClientCredentials client() {
    if (!enabled) return ClientCredentials.insecure();
    return ClientCredentials.of(file("ca-file", caFile), file("token-file", tokenFile));
  }

  /** The tokens servers accept (one a line; see BearerToken); only with {@link #enabled}. */
  public Tokens tokens() {
    return Tokens.read(file("token-file", tokenFile));
  }

  Path certificate() {
    return file("cert-file", certFile);
  }

  Path privateKey() {
    return file("key-file", keyFile);
  }

  private static Path file(String property, String value) {
    if (value == null || value.isBlank()) {
      throw new IllegalArgumentException("set resgraph.security." + property
          + " (gRPC is TLS with a bearer token; resgraph.security.enabled=false turns that off for a test on loopback)");
    }
    Path p = Path.of(value);
    if (!Files.isReadable(p)) throw new IllegalArgumentException("cannot read resgraph.security." + property + " " + p);
    return p;
  }
}
