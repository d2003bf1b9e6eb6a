package resgraph.modelserver;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthGrpc;
import io.micronaut.context.ApplicationContext;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import resgraph.model.ExactAblation;
import resgraph.model.Gpt2Tokenizer;
import resgraph.model.SaeModel;
import resgraph.model.Site;
import resgraph.model.SafeTensors;
import resgraph.model.Shapes;
import resgraph.model.Trace;
import resgraph.v1.AblateRequest;
import resgraph.v1.AblateResponse;
import resgraph.v1.ChainSite;
import resgraph.v1.DescribeRequest;
import resgraph.v1.DescribeResponse;
import resgraph.v1.FaithfulnessRequest;
import resgraph.v1.LatentEffects;
import resgraph.v1.LatentLogitEffects;
import resgraph.v1.LayerActivations;
import resgraph.v1.LayerSae;
import resgraph.v1.Latent;
import resgraph.v1.LogitEffectsRequest;
import resgraph.v1.LogitEffectsResponse;
import resgraph.v1.Method;
import resgraph.v1.ModelRef;
import resgraph.v1.ModelServiceGrpc;
import resgraph.v1.SaeSetting;
import resgraph.v1.SparseActivations;
import resgraph.v1.Strategy;
import resgraph.v1.TokenValue;
import resgraph.v1.TokenizeRequest;
import resgraph.v1.TokenizeResponse;
import resgraph.v1.TraceRequest;
import resgraph.v1.TraceResponse;

/**
 * The model server as a client sees it: the real Micronaut gRPC server on a local port, spoken to
 * over a Netty channel with the generated stubs. Generated models stand in for GPT-2; broken
 * copies of their files check that every refusal has the right status and names the problem, and
 * that the server goes on answering after it.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ModelServerTest {

  private static final String PROMPT = "When Mary and John went to the store, John gave a drink to";
  private static final long DEADLINE_SECONDS = 60;

  @TempDir static Path cache;
  @TempDir static Path broken;

  private static ApplicationContext server;
  private static ManagedChannel channel;

  /** 2 layers, d 90, d_sae 500, n_positions 64, BOS prepended: the model most cases use. */
  private static Path good;
  private static ModelRef goodRef;
  private static int[] goodTokens;

  @BeforeAll
  static void start() throws IOException {
    good = Shapes.dir(Shapes.THREE_HEADS);
    goodRef = ref(good.resolve("model"), good.resolve("saes"));
    int port = freePort();
    Map<String, Object> props = new LinkedHashMap<>();
    props.put("grpc.server.port", port);
    props.put("grpc.server.host", "127.0.0.1");
    // plaintext on loopback: what these tests check is the model, not the transport (PipelineTest and SecurityTest check that)
    props.put("resgraph.security.enabled", false);
    props.put("resgraph.cache-dir", cache.toString());
    // nothing here may reach the real hub: a name that looks like a repository id fails fast
    props.put("resgraph.hub.url", "http://127.0.0.1:" + freePort());
    // every shape these tests use stays resident, so no case pays for a reload
    props.put("resgraph.model-server.max-resident", 4);
    server = ModelServer.start(props);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    goodTokens = tokenize(goodRef, PROMPT).getTokensList().stream().mapToInt(Integer::intValue).toArray();
  }

  @AfterAll
  static void stop() throws InterruptedException {
    if (channel != null) {
      channel.shutdownNow();
      channel.awaitTermination(10, TimeUnit.SECONDS);
    }
    if (server != null) server.close();
  }

  // ---- helpers ----------------------------------------------------------------------------

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  static ModelRef ref(Path model, Path saes) {
    return ModelRef.newBuilder().setModel(model.toString()).setSaes(saes.toString()).build();
  }

  private static ModelServiceGrpc.ModelServiceBlockingStub stub() {
    return ModelServiceGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS);
  }

  private static DescribeResponse describe(ModelRef ref) {
    return stub().describe(DescribeRequest.newBuilder().setRef(ref).build());
  }

  private static TokenizeResponse tokenize(ModelRef ref, String text) {
    return stub().tokenize(TokenizeRequest.newBuilder().setRef(ref).setText(text).build());
  }

  private static AblateRequest.Builder ablate(ModelRef ref, int[] tokens, int layer) {
    AblateRequest.Builder b = AblateRequest.newBuilder().setRef(ref).setLayer(layer);
    for (int t : tokens) b.addTokens(t);
    return b;
  }

  private static TraceRequest.Builder trace(ModelRef ref, int[] tokens) {
    TraceRequest.Builder b = TraceRequest.newBuilder().setRef(ref);
    for (int t : tokens) b.addTokens(t);
    return b;
  }

  private static int[] repeat(int token, int n) {
    int[] t = new int[n];
    Arrays.fill(t, token);
    return t;
  }

  private static int[] withBos(int... tokens) {
    int[] t = new int[tokens.length + 1];
    t[0] = Gpt2Tokenizer.END_OF_TEXT;
    System.arraycopy(tokens, 0, t, 1, tokens.length);
    return t;
  }

  /**
   * Runs a call that must fail with {@code code} and a description containing every one of
   * {@code named}; then checks the server still answers a good request.
   */
  private static String refused(Status.Code code, Supplier<?> call, String... named) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::get);
    String description = e.getStatus().getDescription();
    assertEquals(code, e.getStatus().getCode(), "status of: " + description);
    assertTrue(description != null && !description.isBlank(), "no description with " + code);
    for (String n : named) assertTrue(description.contains(n), "\"" + description + "\" should name " + n);
    assertStillServing();
    return description;
  }

  /** A good pair still answers, with the right shapes. */
  private static void assertStillServing() {
    DescribeResponse d = describe(goodRef);
    assertEquals(Shapes.THREE_HEADS.spec().n_layer(), d.getNLayer());
    AblateResponse a = stub().ablate(ablate(goodRef, goodTokens, 0).addLatents(0).build());
    assertEquals(1, a.getEffectsCount());
  }

  /** A copy of the good model folder (config.json, model.safetensors) under a fresh folder. */
  private static Path modelCopy(String name) {
    return Corrupt.copy(good.resolve("model"), broken.resolve(name));
  }

  /** A copy of the good SAEs folder under a fresh folder. */
  private static Path saesCopy(String name) {
    return Corrupt.copy(good.resolve("saes"), broken.resolve(name));
  }

  // ---- bad requests -----------------------------------------------------------------------

  @Test
  void emptyPromptIsInvalid() {
    refused(Status.Code.INVALID_ARGUMENT, () -> tokenize(goodRef, ""), "empty", "BOS");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, withBos(), 0).build()), "empty", "BOS");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, new int[0]).build()), "empty");
  }

  @Test
  void promptLongerThanTheContextIsInvalid() {
    int max = Shapes.THREE_HEADS.spec().n_positions();
    int[] tooLong = withBos(repeat(464, max)); // max + 1 tokens with BOS
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, tooLong, 0).build()),
        "" + (max + 1), "" + max);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, tooLong).build()), "" + (max + 1), "" + max);
    // " the" is one token: max of them and BOS is one too many
    refused(Status.Code.INVALID_ARGUMENT, () -> tokenize(goodRef, " the".repeat(max)), "" + (max + 1), "" + max);
    // exactly n_positions tokens is fine
    assertEquals(max, stub().trace(trace(goodRef, withBos(repeat(464, max - 1))).build()).getLayers(0).getPositionsCount());
  }

  @Test
  void tokenOutsideTheVocabularyIsInvalid() {
    int[] tokens = withBos(464, Gpt2Tokenizer.VOCAB);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, tokens, 0).build()),
        "token " + Gpt2Tokenizer.VOCAB, "position 2", "0.." + (Gpt2Tokenizer.VOCAB - 1));
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, withBos(-5)).build()), "token -5");
  }

  @Test
  void unknownEnumValuesNegativeCountsAndMissingBosAreInvalid() {
    refused(Status.Code.INVALID_ARGUMENT, () -> describe(goodRef.toBuilder().setCenteringValue(7).build()), "centering", "7");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setStrategyValue(5).build()),
        "strategy", "5");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, goodTokens).setTopPredictions(-1).build()),
        "top_predictions", "-1");
    LogitEffectsRequest.Builder req = LogitEffectsRequest.newBuilder().setRef(goodRef).setTop(-3)
        .addLatents(Latent.newBuilder().setLayer(0).setLatent(0));
    for (int t : goodTokens) req.addTokens(t);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().logitEffects(req.build()), "top", "-3");
    int[] noBos = Arrays.copyOfRange(goodTokens, 1, goodTokens.length);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, noBos).build()),
        "<|endoftext|>", "prepend_bos");
  }

  @Test
  void approximateMethodsNeedTheExactStrategyAndSensibleSteps() {
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setMethodValue(9).build()),
        "method 9", "METHOD_ATTRIBUTION");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setMethod(Method.METHOD_ATTRIBUTION)
        .setStrategy(Strategy.STRATEGY_NAIVE).build()), "STRATEGY_NAIVE");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0)
        .setMethod(Method.METHOD_INTEGRATED_GRADIENTS).setIgSteps(-2).build()), "ig_steps -2");
    FaithfulnessRequest.Builder bad = FaithfulnessRequest.newBuilder().setRef(goodRef).setContrast(1 << 20);
    for (int t : goodTokens) bad.addTokens(t);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().faithfulness(bad.build()), "contrast token " + (1 << 20));
    // an approximate method answers in the exact method's shape: one entry per latent asked about
    AblateResponse ig = stub().ablate(ablate(goodRef, goodTokens, 0).setMethod(Method.METHOD_INTEGRATED_GRADIENTS).build());
    AblateResponse exact = stub().ablate(ablate(goodRef, goodTokens, 0).build());
    assertEquals(exact.getEffectsList().stream().map(LatentEffects::getLatent).toList(),
        ig.getEffectsList().stream().map(LatentEffects::getLatent).toList());
    assertTrue(ig.getEffectsList().stream().anyMatch(e -> e.getDownstreamCount() > 0), "some nonzero approximate edges");
  }

  @Test
  void sitesAreNamedByHookOrShortNameAndEffectsMeasuredWhereAsked() {
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setHookName("0m").build()),
        "0m", "has no SAE");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setHookName("zero").build()),
        "\"zero\" is not a site");
    refused(Status.Code.INVALID_ARGUMENT,
        () -> stub().ablate(ablate(goodRef, goodTokens, 0).setHookName("1").setMeasureHookName("0").build()), "not after");
    AblateResponse byLayer = stub().ablate(ablate(goodRef, goodTokens, 0).build());
    AblateResponse byHook = stub().ablate(ablate(goodRef, goodTokens, 99).setHookName("blocks.0.hook_resid_pre")
        .setMeasureHookName("1").build());
    assertEquals(byLayer.getEffectsList(), byHook.getEffectsList());
    assertEquals("blocks.0.hook_resid_pre", byHook.getHookName());
    assertEquals("blocks.1.hook_resid_pre", byHook.getMeasureHookName());
    TraceResponse chain = stub().trace(trace(goodRef, goodTokens).addSites("1").addSites("0").build());
    assertEquals(List.of("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"), chain.getChainList().stream().map(ChainSite::getHookName).toList());
    assertEquals("1", chain.getChain(1).getNodePrefix());
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, goodTokens).addSites("1").build()),
        "at least two sites");
  }

  @Test
  void describeRecordsEverySettingAndWhereItCameFrom() {
    DescribeResponse d = describe(goodRef);
    assertEquals("standard", d.getLayers(0).getArchitecture());
    assertEquals("none", d.getLayers(0).getNormalizeActivations());
    assertEquals("0", d.getLayers(0).getSite());
    SaeSetting centering = d.getSettingsList().stream().filter(s -> s.getName().equals("centering")).findFirst().orElseThrow();
    assertEquals(Shapes.THREE_HEADS.spec().centered() ? "on" : "off", centering.getValue());
    assertEquals("cfg.json model_from_pretrained_kwargs.center_writing_weights", centering.getSource());
    assertEquals(List.of(), centering.getHooksList(), "one entry for a setting every SAE shares");
    assertTrue(d.getSettingsList().stream().anyMatch(s -> s.getName().equals("architecture")), d.getSettingsList().toString());
  }

  @Test
  void layerOutOfRangeIsInvalid() {
    int last = Shapes.THREE_HEADS.spec().n_layer() - 1; // has an SAE but no next layer to measure
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, -1).build()),
        "layer -1", "SAEs are at 0, 1");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, last).build()),
        last + " is the last site", "no site after it");
    // logit effects may name any layer with an SAE, and no other
    LogitEffectsRequest.Builder req = LogitEffectsRequest.newBuilder().setRef(goodRef)
        .addLatents(Latent.newBuilder().setLayer(last + 1).setLatent(0));
    for (int t : goodTokens) req.addTokens(t);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().logitEffects(req.build()), "layer " + (last + 1), "SAEs are at 0, 1");
  }

  @Test
  void unknownLatentIsInvalid() {
    int dSae = Shapes.THREE_HEADS.spec().d_sae();
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).addLatents(dSae).build()),
        "latent " + dSae, "0.." + (dSae - 1));
    // uint32 on the wire: -1 is 4294967295, not a negative index
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).addLatents(-1).build()),
        "latent 4294967295", "0.." + (dSae - 1));
    LogitEffectsRequest.Builder req = LogitEffectsRequest.newBuilder().setRef(goodRef)
        .addLatents(Latent.newBuilder().setLayer(1).setLatent(dSae + 7));
    for (int t : goodTokens) req.addTokens(t);
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().logitEffects(req.build()), "latent " + (dSae + 7),
        "0.." + (dSae - 1));
  }

  @Test
  void targetOutOfRangeIsInvalid() {
    int n = goodTokens.length;
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setTarget(n).build()),
        "target position " + n, "1.." + (n - 1));
    // position 0 is the BOS: nothing is measured there
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().ablate(ablate(goodRef, goodTokens, 0).setTarget(0).build()),
        "target position 0", "1.." + (n - 1), "BOS");
    refused(Status.Code.INVALID_ARGUMENT, () -> stub().trace(trace(goodRef, goodTokens).setTarget(-1).build()),
        "target position -1");
    // without BOS, position 0 is an ordinary position
    Path noBos = Shapes.dir(Shapes.NO_BOS);
    ModelRef noBosRef = ref(noBos.resolve("model"), noBos.resolve("saes"));
    int[] tokens = Gpt2Tokenizer.encode(PROMPT, false);
    AblateResponse a = stub().ablate(ablate(noBosRef, tokens, 0).setTarget(0).build());
    assertEquals(0, a.getTarget());
    assertFalse(a.getEffectsList().isEmpty(), "latents fire at position 0 without BOS");
  }

  // ---- names that lead nowhere --------------------------------------------------------------

  @Test
  void missingModelOrSaesIsNotFound() {
    Path nowhere = broken.resolve("no-such-folder");
    refused(Status.Code.NOT_FOUND, () -> describe(ref(nowhere, good.resolve("saes"))), nowhere.toString());
    refused(Status.Code.NOT_FOUND, () -> describe(ref(good.resolve("model"), nowhere)), nowhere.toString());
    // neither a folder nor owner/name
    ModelRef nonsense = ModelRef.newBuilder().setModel("not a model at all").setSaes(good.resolve("saes").toString()).build();
    refused(Status.Code.NOT_FOUND, () -> describe(nonsense), "not a model at all", "hub repository id");
    ModelRef deep = ModelRef.newBuilder().setModel(good.resolve("model").toString()).setSaes("a/b/c").build();
    refused(Status.Code.NOT_FOUND, () -> describe(deep), "a/b/c");
  }

  // ---- files that exist but cannot be used --------------------------------------------------

  @Test
  void safetensorsShorterThanItsLengthField() {
    Path dir = modelCopy("five-bytes");
    Path file = dir.resolve("model.safetensors");
    Corrupt.bytes(file, new byte[] {1, 2, 3, 4, 5});
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "5 bytes");
  }

  @Test
  void safetensorsHeaderLongerThanTheFile() {
    Path dir = modelCopy("header-past-end");
    Path file = dir.resolve("model.safetensors");
    Corrupt.headerLength(file, 1000, "{\"a\":1}".getBytes(StandardCharsets.UTF_8));
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "header length 1000", "15 bytes");
  }

  @Test
  void safetensorsHeaderLengthImpossiblyLarge() {
    Path dir = modelCopy("header-2-40");
    Path file = dir.resolve("model.safetensors");
    Corrupt.headerLength(file, 1L << 40, new byte[64]);
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "header length " + (1L << 40));
  }

  @Test
  void safetensorsHeaderThatIsNotJson() {
    Path dir = modelCopy("header-not-json");
    Path file = dir.resolve("model.safetensors");
    Corrupt.headerLength(file, 8, "{\"wte\": ".getBytes(StandardCharsets.UTF_8));
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(), "JSON");
  }

  @Test
  void tensorDataPastTheEndOfTheFile() throws IOException {
    Path dir = modelCopy("cut-short");
    Path file = dir.resolve("model.safetensors");
    // the tensor whose bytes come last loses its tail, as in an interrupted copy
    SafeTensors.Entry last = SafeTensors.open(file).entries().values().stream()
        .max((a, b) -> Long.compare(a.end(), b.end())).orElseThrow();
    Corrupt.truncate(file, Files.size(file) - 100);
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "tensor " + last.name(), "data_offsets", "past the end");
  }

  @Test
  void tensorOfTheWrongShape() {
    int d = Shapes.THREE_HEADS.spec().n_embd();
    Path dir = modelCopy("wrong-shape");
    Path file = dir.resolve("model.safetensors");
    Corrupt.reshapeTensor(file, "h.0.attn.c_proj.weight", d / 2, 2L * d); // as many values, another shape
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "h.0.attn.c_proj.weight", "[" + d / 2 + ", " + 2 * d + "]", "[" + d + ", " + d + "]");

    // an nn.Linear checkpoint stores [out, in]: GPT-2's Conv1D is [in, out]
    Path linear = modelCopy("transposed");
    Path linearFile = linear.resolve("model.safetensors");
    Corrupt.reshapeTensor(linearFile, "h.1.mlp.c_fc.weight", 4L * d, d);
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(linear, good.resolve("saes"))), linearFile.toString(),
        "h.1.mlp.c_fc.weight", "[" + 4 * d + ", " + d + "]", "[" + d + ", " + 4 * d + "]");
  }

  @Test
  void saeForAnotherModelWidth() {
    int d = Shapes.THREE_HEADS.spec().n_embd();
    Path saes = saesCopy("d-in-mismatch");
    Path cfg = saes.resolve("blocks.1.hook_resid_pre/cfg.json");
    Corrupt.editJson(cfg, o -> o.put("d_in", d + 1));
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(good.resolve("model"), saes)), cfg.toString(),
        "d_in", "" + (d + 1), "n_embd", "" + d);
  }

  @Test
  void nanInModelWeights() {
    Path dir = modelCopy("nan-model");
    Path file = dir.resolve("model.safetensors");
    Corrupt.putNaN(file, "h.1.mlp.c_fc.weight", 77);
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(dir, good.resolve("saes"))), file.toString(),
        "h.1.mlp.c_fc.weight", "NaN", "77");
  }

  @Test
  void nanInSaeDecoder() {
    Path saes = saesCopy("nan-sae");
    Path file = saes.resolve("blocks.1.hook_resid_pre/sae_weights.safetensors");
    Corrupt.putNaN(file, "W_dec", 1234);
    refused(Status.Code.FAILED_PRECONDITION, () -> describe(ref(good.resolve("model"), saes)), file.toString(),
        "W_dec", "NaN", "1234");
  }

  // ---- answers ----------------------------------------------------------------------------

  @Test
  void bf16ModelWithPrefixedNamesMatchesTheModelCode() {
    Shapes.Shape shape = Shapes.FIVE_LAYERS;
    Path dir = Shapes.dir(shape);
    ModelRef ref = ref(dir.resolve("model"), dir.resolve("saes"));

    DescribeResponse d = describe(ref);
    assertEquals(dir.resolve("model").toAbsolutePath().normalize().toString(), d.getModelPath());
    assertEquals(dir.resolve("saes").toAbsolutePath().normalize().toString(), d.getSaesPath());
    assertEquals(shape.spec().n_layer(), d.getNLayer());
    assertEquals(shape.spec().n_embd(), d.getDModel());
    assertEquals(shape.spec().n_head(), d.getNHead());
    assertEquals(shape.spec().n_positions(), d.getNPositions());
    assertEquals(shape.spec().vocab_size(), d.getVocabSize());
    assertTrue(d.getPrependBos());
    assertEquals(shape.spec().n_layer(), d.getLayersCount());
    for (int l = 0; l < d.getLayersCount(); l++) {
      LayerSae s = d.getLayers(l);
      assertEquals(l, s.getLayer());
      assertEquals("blocks." + l + ".hook_resid_pre", s.getHookName());
      assertEquals(shape.spec().d_sae(), s.getDSae());
      assertEquals(shape.spec().applyBDecToInput(), s.getApplyBDecToInput());
      assertEquals(shape.spec().centered(), s.getCentered());
    }

    int[] tokens = tokenize(ref, PROMPT).getTokensList().stream().mapToInt(Integer::intValue).toArray();
    int layer = 2;
    AblateResponse served = stub().ablate(ablate(ref, tokens, layer).build());
    TraceResponse servedTrace = stub().trace(trace(ref, tokens).build());

    try (SaeModel direct = SaeModel.load(dir.resolve("model"), dir.resolve("saes"), null, null, Device.cpu())) {
      Trace t = direct.trace(tokens);
      int target = tokens.length - 1;
      int[] candidates = t.candidates(Site.pre(layer), direct.firstAblatable(), target);
      List<ExactAblation.Effects> expected = ExactAblation.run(direct, t, Site.pre(layer), Site.pre(layer + 1), candidates, target, 128);
      assertEquals(target, served.getTarget());
      assertEquals(expected.size(), served.getEffectsCount());
      assertTrue(expected.stream().anyMatch(e -> e.downstream().length > 0), "some ablation must move layer 3");
      for (int i = 0; i < expected.size(); i++) {
        ExactAblation.Effects e = expected.get(i);
        LatentEffects s = served.getEffects(i);
        assertEquals(e.latent(), s.getLatent());
        assertArrayEquals(e.downstream(), s.getDownstreamList().stream().mapToInt(Integer::intValue).toArray(),
            "downstream of " + layer + "." + e.latent());
        float[] delta = new float[s.getDeltaCount()];
        for (int k = 0; k < delta.length; k++) delta[k] = s.getDelta(k);
        assertArrayEquals(e.delta(), delta, 1e-6f, "effects of " + layer + "." + e.latent());
      }
      // the clean activations the server reports are the model code's, position by position
      for (LayerActivations la : servedTrace.getLayersList()) {
        Trace.SparseRow[] rows = t.acts(Site.pre(la.getLayer()));
        for (int p = 0; p < tokens.length; p++) {
          SparseActivations sa = la.getPositions(p);
          assertArrayEquals(rows[p].latents(), sa.getLatentsList().stream().mapToInt(Integer::intValue).toArray());
          for (int k = 0; k < sa.getValuesCount(); k++) assertEquals(rows[p].values()[k], sa.getValues(k), 1e-6f);
        }
      }
    }
  }

  @Test
  void bosIsPrependedWhenTheSaesSaySo() {
    String text = "Hello world, again";
    TokenizeResponse r = tokenize(goodRef, text);
    assertTrue(r.getBosPrepended());
    assertEquals(Gpt2Tokenizer.END_OF_TEXT, r.getTokens(0));
    assertEquals("<|endoftext|>", r.getTokenStrings(0));
    int[] plain = Gpt2Tokenizer.encode(text, false);
    assertArrayEquals(plain, r.getTokensList().stream().skip(1).mapToInt(Integer::intValue).toArray());
    assertEquals(r.getTokensCount(), r.getTokenStringsCount());
    assertEquals(text, String.join("", r.getTokenStringsList().subList(1, r.getTokenStringsCount())));
    assertTrue(describe(goodRef).getPrependBos());

    Path noBos = Shapes.dir(Shapes.NO_BOS);
    TokenizeResponse n = tokenize(ref(noBos.resolve("model"), noBos.resolve("saes")), text);
    assertFalse(n.getBosPrepended());
    assertArrayEquals(plain, n.getTokensList().stream().mapToInt(Integer::intValue).toArray());
  }

  @Test
  void ablateWithoutLatentsCoversEveryCandidate() {
    int layer = 0;
    TraceResponse t = stub().trace(trace(goodRef, goodTokens).build());
    int target = t.getTarget();
    assertEquals(goodTokens.length - 1, target);
    // METHOD.md step 2: active at some ablatable position 1..T (position 0 is the BOS)
    TreeSet<Integer> candidates = new TreeSet<>();
    for (int p = 1; p <= target; p++) candidates.addAll(t.getLayers(layer).getPositions(p).getLatentsList());
    Set<Integer> atBos = new TreeSet<>(t.getLayers(layer).getPositions(0).getLatentsList());

    AblateResponse all = stub().ablate(ablate(goodRef, goodTokens, layer).build());
    List<Integer> listed = all.getEffectsList().stream().map(LatentEffects::getLatent).toList();
    assertEquals(new ArrayList<>(candidates), listed, "one entry per candidate, ascending");
    assertTrue(all.getEffectsList().stream().anyMatch(e -> e.getDownstreamCount() > 0), "some candidate moves layer 1");
    for (LatentEffects e : all.getEffectsList()) {
      assertEquals(e.getDownstreamCount(), e.getDeltaCount());
      for (int k = 1; k < e.getDownstreamCount(); k++) assertTrue(e.getDownstream(k - 1) < e.getDownstream(k));
      for (float v : e.getDeltaList()) assertNotEquals(0f, v, "only nonzero effects are listed");
    }

    // a latent that is off at every ablatable position changes nothing, exactly
    int off = 0;
    while (candidates.contains(off)) off++;
    // and one that fires only at the BOS, which is never ablated
    Set<Integer> bosOnly = new TreeSet<>(atBos);
    bosOnly.removeAll(candidates);
    assertFalse(bosOnly.isEmpty(), "the prompt should have a latent that fires at the BOS only; BOS: " + atBos);
    int bos = bosOnly.iterator().next();
    AblateResponse none = stub().ablate(ablate(goodRef, goodTokens, layer).addLatents(off).addLatents(bos).build());
    assertEquals(List.of(off, bos), none.getEffectsList().stream().map(LatentEffects::getLatent).toList());
    for (LatentEffects e : none.getEffectsList()) {
      assertEquals(0, e.getDownstreamCount(), "latent " + e.getLatent() + " is off at positions 1..T");
      assertEquals(0, e.getDeltaCount());
    }
  }

  @Test
  void traceReportsEveryLayerAndPosition() {
    int dSae = Shapes.THREE_HEADS.spec().d_sae();
    TraceResponse t = stub().trace(trace(goodRef, goodTokens).build());
    assertEquals(goodTokens.length - 1, t.getTarget());
    assertEquals(Shapes.THREE_HEADS.spec().n_layer(), t.getLayersCount());
    int fired = 0;
    for (int l = 0; l < t.getLayersCount(); l++) {
      LayerActivations la = t.getLayers(l);
      assertEquals(l, la.getLayer());
      assertEquals(goodTokens.length, la.getPositionsCount());
      for (SparseActivations p : la.getPositionsList()) {
        assertEquals(p.getLatentsCount(), p.getValuesCount());
        for (int k = 0; k < p.getLatentsCount(); k++) {
          assertTrue(Integer.compareUnsigned(p.getLatents(k), dSae) < 0, "latent " + p.getLatents(k));
          if (k > 0) assertTrue(p.getLatents(k - 1) < p.getLatents(k), "latents ascending: " + p.getLatentsList());
          assertTrue(p.getValues(k) > 0, "values are ReLU outputs that fired: " + p.getValuesList());
        }
        fired += p.getLatentsCount();
      }
    }
    assertTrue(fired > 0, "nothing fired");

    assertEquals(10, t.getPredictionsCount(), "10 predictions by default");
    double sum = 0;
    for (int k = 0; k < t.getPredictionsCount(); k++) {
      TokenValue v = t.getPredictions(k);
      assertTrue(v.getValue() > 0 && v.getValue() <= 1, "a probability: " + v);
      if (k > 0) assertTrue(t.getPredictions(k - 1).getValue() >= v.getValue(), "most probable first");
      assertEquals(Gpt2Tokenizer.decode(v.getId()), v.getToken());
      sum += v.getValue();
    }
    assertTrue(sum <= 1 + 1e-5, "probabilities sum to " + sum);
    assertEquals(t.getPredictionsCount(), t.getPredictionsList().stream().map(TokenValue::getId).distinct().count(),
        "no token twice");

    TraceResponse three = stub().trace(trace(goodRef, goodTokens).setTarget(3).setTopPredictions(3).build());
    assertEquals(3, three.getTarget());
    assertEquals(3, three.getPredictionsCount());
    assertEquals(t.getLayersList(), three.getLayersList(), "activations do not depend on the target");
  }

  @Test
  void logitEffectsOfFiredLatents() {
    TraceResponse t = stub().trace(trace(goodRef, goodTokens).build());
    int target = t.getTarget();
    LogitEffectsRequest.Builder req = LogitEffectsRequest.newBuilder().setRef(goodRef);
    for (int tok : goodTokens) req.addTokens(tok);
    List<Latent> asked = new ArrayList<>();
    for (int layer = 0; layer < t.getLayersCount(); layer++) {
      // two latents that fire at the target, on each layer
      List<Integer> atTarget = t.getLayers(layer).getPositions(target).getLatentsList();
      assertTrue(atTarget.size() >= 2, "layer " + layer + " fires " + atTarget);
      for (int latent : atTarget.subList(0, 2)) {
        Latent l = Latent.newBuilder().setLayer(layer).setLatent(latent).setHookName(Site.pre(layer).hookName()).build();
        asked.add(l);
        req.addLatents(l);
      }
    }
    LogitEffectsResponse r = stub().logitEffects(req.build());
    assertEquals(target, r.getTarget());
    assertEquals(asked, r.getEffectsList().stream().map(LatentLogitEffects::getLatent).toList(), "in request order");
    for (LatentLogitEffects e : r.getEffectsList()) {
      String node = e.getLatent().getLayer() + "." + e.getLatent().getLatent();
      assertEquals(10, e.getPromotesCount(), node);
      assertEquals(10, e.getSuppressesCount(), node);
      for (int k = 0; k < 10; k++) {
        assertTrue(e.getPromotes(k).getValue() > 0, node + " promotes " + e.getPromotes(k));
        assertTrue(e.getSuppresses(k).getValue() < 0, node + " suppresses " + e.getSuppresses(k));
        if (k > 0) {
          assertTrue(e.getPromotes(k - 1).getValue() >= e.getPromotes(k).getValue(), node + ": largest first");
          assertTrue(e.getSuppresses(k - 1).getValue() <= e.getSuppresses(k).getValue(), node + ": most negative first");
        }
      }
    }
  }

  // ---- the standard services ------------------------------------------------------------------

  @Test
  void healthServiceAnswersServing() {
    for (String service : new String[] {"", ModelServiceGrpc.SERVICE_NAME}) {
      HealthCheckResponse r = HealthGrpc.newBlockingStub(channel).withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
          .check(HealthCheckRequest.newBuilder().setService(service).build());
      assertEquals(HealthCheckResponse.ServingStatus.SERVING, r.getStatus(), "health of \"" + service + "\"");
    }
  }

  // ---- concurrency ----------------------------------------------------------------------------

  @Test
  void concurrentAblationsOfANewPromptAgree() throws Exception {
    // a prompt no other case uses, so the first requests race to compute its trace
    int[] tokens = tokenize(goodRef, "Concurrent requests share one clean pass, said the server.")
        .getTokensList().stream().mapToInt(Integer::intValue).toArray();
    int threads = 6;
    CyclicBarrier start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<AblateResponse>> answers = new ArrayList<>();
      for (int i = 0; i < threads; i++) {
        answers.add(pool.submit(() -> {
          start.await(DEADLINE_SECONDS, TimeUnit.SECONDS);
          return stub().ablate(ablate(goodRef, tokens, 0).build());
        }));
      }
      AblateResponse first = answers.get(0).get(DEADLINE_SECONDS, TimeUnit.SECONDS);
      assertTrue(first.getEffectsCount() > 0);
      for (Future<AblateResponse> a : answers) assertEquals(first, a.get(DEADLINE_SECONDS, TimeUnit.SECONDS));
      assertEquals(first, stub().ablate(ablate(goodRef, tokens, 0).build()), "and a later request agrees");
    } finally {
      pool.shutdownNow();
    }
  }
}
