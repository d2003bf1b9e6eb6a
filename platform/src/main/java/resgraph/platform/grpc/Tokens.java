package resgraph.platform.grpc;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.List;

/**
 * The bearer tokens of a cluster, from a file of one token a line: a server accepts any of them,
 * a client sends the first. So a token is rotated without a moment in which clients and servers
 * disagree: add the new one second, then first, then remove the old one, restarting the services
 * after each step (docs/OPERATIONS.md).
 */
public final class Tokens {

  private final List<byte[]> tokens;

  private Tokens(List<String> tokens) {
    this.tokens = tokens.stream().map(t -> t.getBytes(StandardCharsets.UTF_8)).toList();
  }

  /** The tokens a file holds, blank lines aside; a file without any, or unreadable, is an error naming it. */
  public static Tokens read(Path file) {
    List<String> tokens;
    try {
      tokens = Files.readAllLines(file).stream().map(String::strip).filter(t -> !t.isEmpty()).toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the token file " + file, e);
    }
    if (tokens.isEmpty()) throw new IllegalArgumentException("the token file " + file + " is empty");
    return new Tokens(tokens);
  }

  /** The token a client sends. */
  String first() {
    return new String(tokens.get(0), StandardCharsets.UTF_8);
  }

  /** Whether {@code given} is one of the tokens: compared with each in constant time, so a guess's timing tells nothing of how much of it matched. */
  public boolean accepts(String given) {
    byte[] g = given.strip().getBytes(StandardCharsets.UTF_8);
    boolean any = false;
    for (byte[] t : tokens) any |= MessageDigest.isEqual(t, g);
    return any;
  }
}
