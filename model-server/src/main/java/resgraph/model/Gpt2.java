package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import resgraph.platform.ResgraphException;

/**
 * GPT-2 in the Hugging Face layout, as DJL arrays. Weights are immutable and shared by every
 * request; each forward pass keeps its own activations. Field names follow the checkpoint keys
 * ({@code h.{l}.attn.c_attn.weight} is {@code h.get(l).attn().c_attn().weight()}).
 *
 * <p>Shapes: {@code B} batch, {@code n} positions, {@code d} = n_embd, {@code H} heads,
 * {@code hs} = d / H, {@code V} vocabulary. Linear layers are GPT-2's Conv1D: {@code y = x·W + b}
 * with {@code W [in, out]}. Every operation computes in the dtype of its input, widening the
 * float32 weights as it goes, so the same code runs the float64 clean pass.
 */
public final class Gpt2 {

  public record LayerNorm(NDArray weight, NDArray bias) {}

  public record Linear(NDArray weight, NDArray bias) {}

  public record Attention(Linear c_attn, Linear c_proj) {}

  public record Mlp(Linear c_fc, Linear c_proj) {}

  public record Block(LayerNorm ln_1, Attention attn, LayerNorm ln_2, Mlp mlp) {}

  /** Called at each residual stream a forward pass crosses (see {@link Site}); returns the stream it goes on with. */
  public interface StreamHook {
    NDArray apply(int stream, NDArray resid);
  }

  public final Gpt2Config config;
  public final NDArray wte; // [V, d], also the unembedding (tied)
  public final NDArray wpe; // [n_positions, d]
  public final List<Block> h;
  public final LayerNorm ln_f;

  private Gpt2(Gpt2Config config, NDArray wte, NDArray wpe, List<Block> h, LayerNorm ln_f) {
    this.config = config;
    this.wte = wte;
    this.wpe = wpe;
    this.h = List.copyOf(h);
    this.ln_f = ln_f;
  }

  /** Loads {@code config.json} and {@code model.safetensors} from a folder into {@code manager}. */
  public static Gpt2 load(Path dir, NDManager manager) {
    Path configFile = dir.resolve("config.json");
    Path weightsFile = dir.resolve("model.safetensors");
    if (!Files.isRegularFile(configFile)) throw ResgraphException.unusable(dir, "has no config.json");
    if (!Files.isRegularFile(weightsFile)) throw ResgraphException.unusable(dir, "has no model.safetensors");
    return of(Gpt2Config.read(configFile), SafeTensors.open(weightsFile), manager);
  }

  /** Builds the model from checkpoint tensors, named with or without the {@code transformer.} prefix. */
  public static Gpt2 of(Gpt2Config c, Tensors tensors, NDManager manager) {
    Weights w = new Weights(tensors, manager);
    int d = c.n_embd();
    List<Block> h = new ArrayList<>();
    for (int l = 0; l < c.n_layer(); l++) {
      String p = "h." + l + ".";
      h.add(new Block(
          w.layerNorm(p + "ln_1", d),
          new Attention(w.linear(p + "attn.c_attn", d, 3 * d), w.linear(p + "attn.c_proj", d, d)),
          w.layerNorm(p + "ln_2", d),
          new Mlp(w.linear(p + "mlp.c_fc", d, c.n_inner()), w.linear(p + "mlp.c_proj", c.n_inner(), d))));
    }
    return new Gpt2(c, w.get("wte.weight", c.vocab_size(), d), w.get("wpe.weight", c.n_positions(), d),
        h, w.layerNorm("ln_f", d));
  }

  // ---- the forward pass ----

  /** Token and position embeddings: [n] -> [1, n, d]. */
  public NDArray embed(int[] tokens) {
    return embed(tokens, wte.getDataType());
  }

  /** The embeddings summed in {@code dtype}, so a float64 pass starts from the exact sum. */
  public NDArray embed(int[] tokens, DataType dtype) {
    NDArray ids = wte.getManager().create(Arrays.stream(tokens).asLongStream().toArray());
    NDArray x = wte.get(ids).toType(dtype, false).add(wpe.get("0:" + tokens.length).toType(dtype, false)); // [n, d]
    return x.expandDims(0); // [1, n, d]
  }

  /**
   * Runs x from residual stream {@code from} to stream {@code to}: [B, n, d] -> [B, n, d]. The hook
   * sees every stream from {@code from} to {@code to}, both included.
   */
  public NDArray run(NDArray x, int from, int to, StreamHook hook) {
    for (int r = from; ; r++) {
      x = hook.apply(r, x);
      if (r == to) return x;
      x = stepAndFree(r, x);
    }
  }

  /**
   * {@link #step} for a forward pass only: what the step computes on the way is freed as soon as it
   * returns, and only its result stays in the caller's scope. Over a whole pass a scope would
   * otherwise hold every step's attention scores at once: 4 GB in float64 at 1,024 positions.
   */
  public NDArray stepAndFree(int r, NDArray x) {
    return Scopes.keeping(() -> step(r, x), List::of);
  }

  /** Block l, pre-LayerNorm: x += attn(ln_1(x)), then x += mlp(ln_2(x)). [B, n, d] -> [B, n, d]. */
  public NDArray block(int l, NDArray x) {
    return step(2 * l + 1, step(2 * l, x));
  }

  /** From stream r to r + 1, half a block: its attention when r is even, its MLP when r is odd. [B, n, d] -> [B, n, d]. */
  public NDArray step(int r, NDArray x) {
    return step(r, x, 0);
  }

  /**
   * The same for positions from..n-1 only, their attention reading every position: [B, n, d] ->
   * [B, n - from, d]. Nothing before them needs computing when only they are read later.
   */
  public NDArray step(int r, NDArray x, int from) {
    Block b = h.get(r / 2);
    NDArray rows = from == 0 ? x : x.get(":, " + from + ":, :");
    return r % 2 == 0 ? rows.add(attention(b.attn(), layerNorm(b.ln_1(), x), from)) : rows.add(mlp(b.mlp(), layerNorm(b.ln_2(), rows)));
  }

  /** The unembedding of the final residual: [B, n, d] -> [B, n, V]. */
  public NDArray logits(NDArray x) {
    return layerNorm(ln_f, x).matMul(wte.toType(x.getDataType(), false).transpose()); // [B, n, d] x [d, V] -> [B, n, V]
  }

  /** Causal self-attention: [B, n, d] -> [B, n, d]. */
  public NDArray attention(Attention attn, NDArray x) {
    return attention(attn, x, 0);
  }

  /** Causal self-attention of the queries at positions from..n-1 (q = n - from of them): [B, n, d] -> [B, q, d]. */
  public NDArray attention(Attention attn, NDArray x, int from) {
    long batch = x.getShape().get(0), n = x.getShape().get(1);
    NDList qkv = linear(attn.c_attn(), x).split(3, 2); // [B, n, 3d] -> 3 x [B, n, d]
    NDArray q = heads(qkv.get(0).get(":, " + from + ":, :")), k = heads(qkv.get(1)), v = heads(qkv.get(2)); // [B, H, q|n, hs]
    NDArray att = q.matMul(k.transpose(0, 1, 3, 2)).div(Scalar.of(x, Math.sqrt(config.headSize()))); // [B, H, q, n]
    att = att.add(causalMask(x.getManager(), from, (int) n).toType(x.getDataType(), false)).softmax(-1);
    NDArray y = att.matMul(v); // [B, H, q, n] x [B, H, n, hs] -> [B, H, q, hs]
    y = y.transpose(0, 2, 1, 3).reshape(batch, n - from, config.n_embd()); // [B, q, d]
    return linear(attn.c_proj(), y);
  }

  /** The MLP: [B, n, d] -> [B, n, 4d] -> [B, n, d]. */
  public NDArray mlp(Mlp mlp, NDArray x) {
    return linear(mlp.c_proj(), gelu(linear(mlp.c_fc(), x)));
  }

  /** [B, n, d] -> [B, H, n, hs]. */
  private NDArray heads(NDArray x) {
    Shape s = x.getShape();
    return x.reshape(s.get(0), s.get(1), config.n_head(), config.headSize()).transpose(0, 2, 1, 3);
  }

  /** [n - from, n]: 0 where query position p may read key position j (j <= p), else -inf. */
  private static NDArray causalMask(NDManager m, int from, int n) {
    float[] mask = new float[(n - from) * n];
    for (int p = from; p < n; p++) for (int j = p + 1; j < n; j++) mask[(p - from) * n + j] = Float.NEGATIVE_INFINITY;
    return m.create(mask, new Shape(n - from, n));
  }

  // ---- the pieces, shared with the exact ablation ----

  public static NDArray linear(Linear lin, NDArray x) {
    DataType t = x.getDataType();
    return x.matMul(lin.weight().toType(t, false)).add(lin.bias().toType(t, false));
  }

  /** LayerNorm over the last axis. */
  public NDArray layerNorm(LayerNorm ln, NDArray x) {
    NDArray mean = x.mean(new int[] {-1}, true);
    NDArray centred = x.sub(mean);
    NDArray var = centred.square().mean(new int[] {-1}, true);
    NDArray normed = centred.div(var.add(config.layer_norm_epsilon()).sqrt());
    return normed.mul(ln.weight().toType(x.getDataType(), false)).add(ln.bias().toType(x.getDataType(), false));
  }

  /**
   * GPT-2's tanh approximation of GELU ({@code gelu_new}), 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))),
   * as x·(1 + 0.044715·x²) and in place on its own temporaries: on an ablation batch's MLP rows in
   * float64 it took longer than the MLP's two products, a new array per step and a pow. The tanh is
   * kept, as autograd needs it for its derivative.
   */
  public static NDArray gelu(NDArray x) {
    NDArray inner = x.mul(x).muli(Scalar.of(x, 0.044715)).addi(1).muli(x).muli(Scalar.of(x, Math.sqrt(2 / Math.PI)));
    return inner.tanh().add(1).muli(x).muli(Scalar.of(x, 0.5));
  }

  /** Checkpoint tensors, with or without the {@code transformer.} prefix, as NDArrays. */
  private record Weights(Tensors tensors, NDManager manager) {

    NDArray get(String key, long... shape) {
      String name = tensors.has(key) ? key : "transformer." + key;
      if (!tensors.has(name)) {
        throw ResgraphException.unusable(tensors.origin(), "has no tensor " + key + " (nor transformer." + key + ")");
      }
      return manager.create(tensors.buffer(name, shape), new Shape(shape), DataType.FLOAT32);
    }

    LayerNorm layerNorm(String key, int d) {
      return new LayerNorm(get(key + ".weight", d), get(key + ".bias", d));
    }

    Linear linear(String key, int in, int out) {
      return new Linear(get(key + ".weight", in, out), get(key + ".bias", out));
    }
  }
}
