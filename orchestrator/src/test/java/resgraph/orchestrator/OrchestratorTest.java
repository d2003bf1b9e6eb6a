package resgraph.orchestrator;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * What the tests of the running orchestrator share: the one {@link OrchestratorUnderTest}, running
 * and with a graph service that answers normally again after each test.
 */
@ExtendWith(OrchestratorUnderTest.Resolver.class)
@Timeout(value = 120, unit = TimeUnit.SECONDS)
abstract class OrchestratorTest {

  static OrchestratorUnderTest h;

  @BeforeAll
  static void orchestrator(OrchestratorUnderTest running) {
    h = running;
  }

  @AfterEach
  void reset() {
    h.graph.reset();
    if (!h.orchestratorRunning()) h.startOrchestrator();
  }
}
