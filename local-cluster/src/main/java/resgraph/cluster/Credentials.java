package resgraph.cluster;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The local cluster's secrets, generated once into a folder only its owner can read, in the
 * layout a Kubernetes Secret mounts: {@code token} (the bearer token every gRPC call carries),
 * {@code tls.crt} and {@code tls.key} (the services' certificate, for localhost and 127.0.0.1, and
 * its key) and {@code ca.crt} (what clients trust: here the same self-signed certificate).
 * Deleting the folder while the cluster is down rotates all of them at the next start.
 */
public final class Credentials {

  private static final Duration VALIDITY = Duration.ofDays(825);

  private Credentials() {}

  /** Writes the folder's files unless it holds them already. */
  public static void keep(Path folder) {
    if (Files.isRegularFile(folder.resolve("ca.crt"))) return;
    try {
      Files.createDirectories(folder);
      Files.setPosixFilePermissions(folder, PosixFilePermissions.fromString("rwx------"));
      KeyPairGenerator ec = KeyPairGenerator.getInstance("EC");
      ec.initialize(new ECGenParameterSpec("secp256r1"));
      KeyPair key = ec.generateKeyPair();
      String certificate = selfSigned(key);
      write(folder.resolve("token"), token() + "\n");
      write(folder.resolve("tls.key"), pem(new JcaPKCS8Generator(key.getPrivate(), null)));
      write(folder.resolve("tls.crt"), certificate);
      // last: its presence says the folder is complete
      write(folder.resolve("ca.crt"), certificate);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the cluster's credentials to " + folder, e);
    } catch (GeneralSecurityException | OperatorCreationException e) {
      throw new IllegalStateException("cannot generate the cluster's certificate: " + e.getMessage(), e);
    }
  }

  private static String selfSigned(KeyPair key) throws IOException, OperatorCreationException {
    X500Name name = new X500Name("CN=resgraph local cluster");
    Instant now = Instant.now();
    JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, new BigInteger(64, new SecureRandom()),
        Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(VALIDITY)), name, key.getPublic());
    // the names clients dial: every local endpoint is 127.0.0.1
    builder.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName[] {
        new GeneralName(GeneralName.dNSName, "localhost"),
        new GeneralName(GeneralName.iPAddress, InetAddress.getLoopbackAddress().getHostAddress())}));
    builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
    X509CertificateHolder certificate = builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(key.getPrivate()));
    return pem(certificate);
  }

  private static String pem(Object object) throws IOException {
    StringWriter out = new StringWriter();
    try (JcaPEMWriter pem = new JcaPEMWriter(out)) {
      pem.writeObject(object);
    }
    return out.toString();
  }

  private static String token() {
    byte[] random = new byte[32];
    new SecureRandom().nextBytes(random);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(random);
  }

  private static void write(Path file, String text) throws IOException {
    Files.deleteIfExists(file);
    Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.writeString(file, text);
  }
}
