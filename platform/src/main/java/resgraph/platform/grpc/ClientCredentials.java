package resgraph.platform.grpc;

import io.grpc.CallCredentials;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Executor;

/**
 * What a client shows a resgraph gRPC server: the certificate authority it trusts for TLS and the
 * bearer token it sends with every call. {@link #insecure()} is plaintext without a token, for a
 * server started with {@code resgraph.security.enabled=false}.
 */
public final class ClientCredentials {

  /** The call metadata that carries the token, as "Bearer TOKEN". */
  static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final Path caFile;
  private final String token;

  private ClientCredentials(Path caFile, String token) {
    this.caFile = caFile;
    this.token = token;
  }

  /** TLS trusting the certificates in {@code caFile} (PEM), and the token in {@code tokenFile}. */
  public static ClientCredentials of(Path caFile, Path tokenFile) {
    if (!Files.isReadable(caFile)) throw new IllegalArgumentException("cannot read the certificate authority file " + caFile);
    return new ClientCredentials(caFile, Tokens.read(tokenFile).first());
  }

  /** From a folder laid out as the Kubernetes Secret is mounted and the local cluster keeps it: {@code ca.crt} and {@code token}. */
  public static ClientCredentials fromFolder(Path folder) {
    return of(folder.resolve("ca.crt"), folder.resolve("token"));
  }

  public static ClientCredentials insecure() {
    return new ClientCredentials(null, null);
  }

  public boolean secure() {
    return token != null;
  }

  ChannelCredentials channelCredentials() {
    if (!secure()) return InsecureChannelCredentials.create();
    try {
      return CompositeChannelCredentials.create(TlsChannelCredentials.newBuilder().trustManager(caFile.toFile()).build(),
          new Bearer(token));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the certificate authority file " + caFile, e);
    }
  }

  /** Sends the token with each call, and never over a connection without TLS. */
  private static final class Bearer extends CallCredentials {
    private final String token;

    Bearer(String token) {
      this.token = token;
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
      if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
        applier.fail(Status.UNAUTHENTICATED.withDescription("refusing to send the bearer token over a connection without TLS"));
        return;
      }
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      applier.apply(headers);
    }
  }
}
