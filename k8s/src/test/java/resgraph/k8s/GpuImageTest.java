package resgraph.k8s;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The GPU image's libtorch is the one DJL's engine was built against: the PyTorch version of the
 * pytorch-jni jar the model server resolves, and a CUDA flavour that jar carries a JNI library
 * for. A version bump in the root pom without one here fails.
 */
class GpuImageTest {

  private static String arg(String dockerfile, String name) {
    Matcher m = Pattern.compile("(?m)^ARG " + name + "=(\\S+)$").matcher(dockerfile);
    assertTrue(m.find(), "k8s/image/Dockerfile: no ARG " + name + "=...");
    return m.group(1);
  }

  @Test
  void libtorchMatchesDjlsJni() throws IOException {
    String dockerfile = Files.readString(Kustomize.root().resolve("image/Dockerfile"));
    Properties jni = new Properties();
    try (InputStream in = GpuImageTest.class.getResourceAsStream("/jnilib/pytorch.properties")) {
      assertNotNull(in, "no pytorch-jni on the model server's classpath");
      jni.load(in);
    }
    // jni_version is PYTORCH-DJL, e.g. 2.7.1-0.36.0
    String pytorch = jni.getProperty("jni_version").split("-")[0];
    String version = arg(dockerfile, "PYTORCH_VERSION");
    assertTrue(version.equals(pytorch), "the image's libtorch " + version + ", DJL's JNI is for PyTorch " + pytorch);
    String flavor = arg(dockerfile, "CUDA_FLAVOR");
    assertNotNull(GpuImageTest.class.getResource("/jnilib/linux-x86_64/" + flavor + "/libdjl_torch.so"),
        "pytorch-jni carries no JNI library for " + flavor);
  }
}
