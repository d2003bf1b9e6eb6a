package resgraph.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.stream.IntStream;

/**
 * METHOD.md steps 3-5 for many latents of one layer at once, running block {@code l} only and
 * recomputing only what an ablation changes.
 *
 * <p>Ablating latent i moves x_l only at the positions where i fires. So per latent: LayerNorm,
 * keys and values are recomputed for those rows alone; the target's query, attention, MLP and
 * the next SAE's encoder for the target row alone. Positions whose inputs did not change keep
 * their clean keys and values.
 *
 * <p>Every quantity is carried as (clean value, change). Linear maps act on the change alone, in
 * float32, which keeps its relative precision; the nonlinear maps (LayerNorm, softmax, GELU, the
 * ReLU) are evaluated at both points in float64 and subtracted. The result is
 * f'_{l+1}[T] - f_{l+1}[T] with the precision of the change itself, not of the activations it
 * is the difference of, so small effects survive float32 arithmetic.
 *
 * <p>Shapes: {@code B} latents in a batch, {@code R} changed (latent, position) rows, {@code m}
 * = T + 1 positions, {@code H} heads of size {@code hs}, {@code S} latents of the next SAE.
 */
public final class ExactAblation {

  /** The nonzero effects of ablating one latent: e[j] for each j in {@code downstream}, ascending. */
  public record Effects(int latent, int[] downstream, float[] delta) {}

  /**
   * Block l's clean pass as the target sees it, in float64: keys and values [m, d] at every
   * position up to the target; the target's query [d], the residual between attention and MLP
   * [d], GELU's input [4d]; and the next SAE's pre-activations [S].
   */
  record Clean(double[] keys, double[] values, double[] query, double[] mid, double[] mlpPre, double[] pre)
      implements Trace.Sized {
    @Override
    public long bytes() {
      return 8L * (keys.length + values.length + query.length + mid.length + mlpPre.length + pre.length);
    }
  }

  private final SaeModel model;
  private final int layer, target, m, d, heads, hs;
  private final Gpt2.Block block;
  private final Sae up, down;
  private final NDManager nd;
  private final Trace trace;

  private final NDArray x; // [m, d] float64: x_l
  private final NDArray keys, values; // [H, m, hs] float32 copies, for products with changes
  private final NDArray query; // [1, d] float32 copy
  private final NDArray scores, attention; // [H, 1, m] float64
  private final NDArray mid; // [1, d] float64: x_T + attn, the MLP's input before ln_2
  private final NDArray mlpPre; // [1, 4d] float64: c_fc(ln_2(mid)), GELU's input
  private final double[] pre; // [S] the next SAE's pre-activations
  private final NDArray preArray; // [S] float32 copy, to find the columns that can change

  private ExactAblation(SaeModel model, Trace trace, int layer, int target) {
    Gpt2 gpt2 = model.gpt2;
    this.model = model;
    this.trace = trace;
    this.layer = layer;
    this.target = target;
    this.m = target + 1;
    this.d = gpt2.config.n_embd();
    this.heads = gpt2.config.n_head();
    this.hs = gpt2.config.headSize();
    this.block = gpt2.h.get(layer);
    this.up = model.sae(layer);
    this.down = model.sae(layer + 1);
    this.nd = model.manager();

    Clean c = trace.derived("block " + layer + " at " + target, () -> clean(model, trace, layer, target));
    x = nd.create(trace.resid(layer, m), new Shape(m, d));
    NDArray keys64 = heads(nd.create(c.keys(), new Shape(m, d)));
    NDArray query64 = nd.create(c.query(), new Shape(1, d));
    keys = keys64.toType(DataType.FLOAT32, false);
    values = heads(nd.create(c.values(), new Shape(m, d))).toType(DataType.FLOAT32, false);
    query = query64.toType(DataType.FLOAT32, false);
    scores = heads(query64).matMul(keys64.transpose(0, 2, 1)).div(Math.sqrt(hs)); // [H, 1, hs] x [H, hs, m]
    attention = scores.softmax(-1);
    mid = nd.create(c.mid(), new Shape(1, d));
    mlpPre = nd.create(c.mlpPre(), new Shape(1, c.mlpPre().length));
    pre = c.pre();
    preArray = nd.create(pre).toType(DataType.FLOAT32, false);
  }

  /** Block l's clean pass at the target in float64, from the trace's float64 residual. */
  private static Clean clean(SaeModel model, Trace trace, int layer, int target) {
    Gpt2 gpt2 = model.gpt2;
    int m = target + 1, d = gpt2.config.n_embd(), heads = gpt2.config.n_head(), hs = gpt2.config.headSize();
    try (NDScope scope = new NDScope()) {
      NDManager nd = model.manager();
      Gpt2.Block b = gpt2.h.get(layer);
      NDArray x = nd.create(trace.resid(layer, m), new Shape(m, d));
      NDArray qkv = Gpt2.linear(b.attn().c_attn(), gpt2.layerNorm(b.ln_1(), x)); // [m, 3d]
      NDArray query = qkv.get(target + ":" + m + ", 0:" + d); // [1, d]
      NDArray keys = qkv.get(":, " + d + ":" + 2 * d); // [m, d]
      NDArray values = qkv.get(":, " + 2 * d + ":"); // [m, d]
      NDArray attention = heads(query, heads, hs).matMul(heads(keys, heads, hs).transpose(0, 2, 1)).div(Math.sqrt(hs))
          .softmax(-1); // [H, 1, m]
      NDArray z = attention.matMul(heads(values, heads, hs)).transpose(1, 0, 2).reshape(1, d); // [H, 1, m] x [H, m, hs]
      NDArray mid = x.get(target + ":" + m).add(Gpt2.linear(b.attn().c_proj(), z)); // [1, d]
      NDArray mlpPre = Gpt2.linear(b.mlp().c_fc(), gpt2.layerNorm(b.ln_2(), mid)); // [1, 4d]
      NDArray pre = model.sae(layer + 1).preActivation(nd.create(trace.residAt(layer + 1, target)));
      return new Clean(keys.toDoubleArray(), values.toDoubleArray(), query.toDoubleArray(), mid.toDoubleArray(),
          mlpPre.toDoubleArray(), pre.toDoubleArray());
    }
  }

  /** The effects of each latent on layer + 1 at the target, in the order given. */
  public static List<Effects> run(SaeModel model, Trace trace, int layer, int[] latents, int target, int batch) {
    Effects[] out = new Effects[latents.length];
    // A latent that is off at every ablatable position changes nothing, exactly (METHOD.md step 2).
    List<Integer> firing = new ArrayList<>();
    for (int i = 0; i < latents.length; i++) {
      float[] f = trace.firing(layer, latents[i], model.firstAblatable(), target);
      if (IntStream.range(0, f.length).anyMatch(p -> f[p] > 0)) firing.add(i);
      else out[i] = new Effects(latents[i], new int[0], new float[0]);
    }
    try (NDScope scope = new NDScope()) {
      ExactAblation a = firing.isEmpty() ? null : new ExactAblation(model, trace, layer, target);
      for (int from = 0; from < firing.size(); from += batch) {
        List<Integer> chunk = firing.subList(from, Math.min(firing.size(), from + batch));
        try (NDScope batchScope = new NDScope()) {
          List<Effects> effects = a.batch(chunk.stream().mapToInt(i -> latents[i]).toArray());
          for (int k = 0; k < chunk.size(); k++) out[chunk.get(k)] = effects.get(k);
        }
      }
    }
    return Arrays.asList(out);
  }

  private List<Effects> batch(int[] latents) {
    int b = latents.length;
    // METHOD.md step 3: the (latent, position) rows an ablation changes, with f_l[p, i].
    Rows rows = new Rows(latents);
    int r = rows.count;

    NDArray dx = up.W_dec().get(nd.create(rows.latent)).mul(nd.create(rows.coef, new Shape(r, 1))).neg(); // [R, d]
    NDArray dln1 = change(v -> model.gpt2.layerNorm(block.ln_1(), v), x.get(nd.create(rows.position)), dx);
    NDArray dqkv = dln1.matMul(block.attn().c_attn().weight()); // [R, d] x [d, 3d] -> [R, 3d]
    NDArray dk = dqkv.get(":, " + d + ":" + 2 * d); // [R, d]
    NDArray dv = dqkv.get(":, " + 2 * d + ":"); // [R, d]
    NDArray dq = gather(dqkv.get(":, 0:" + d), rows.atTarget); // [B, d], zero where i is off at T
    NDArray dxTarget = gather(dx, rows.atTarget); // [B, d]

    // Scores at T: s' - s = dq·k_p + q'·dk_p, the second term only on changed rows.
    NDArray queryNew = query.add(dq); // [B, d]
    NDArray dScores = heads(dq).matMul(keys.transpose(0, 2, 1)); // [H, B, hs] x [H, hs, m] -> [H, B, m]
    NDArray rowScores = queryNew.get(nd.create(rows.batch)).mul(dk).reshape(r, heads, hs).sum(new int[] {-1}); // [R, H]
    dScores = dScores.add(gather(rowScores, rows.atPosition).reshape(b, m, heads).transpose(2, 0, 1)); // [H, B, m]
    NDArray attentionNew = scores.add(dScores.div(Math.sqrt(hs)).toType(DataType.FLOAT64, false)).softmax(-1);

    // Attention output at T: z' - z = sum_p (a'_p - a_p) v_p + sum_p a'_p dv_p.
    NDArray dAttention = attentionNew.sub(attention).toType(DataType.FLOAT32, false); // [H, B, m]
    NDArray dz = dAttention.matMul(values).transpose(1, 0, 2).reshape(b, d); // [H, B, m] x [H, m, hs] -> [B, d]
    NDArray rowAttention = attentionNew.transpose(1, 2, 0).reshape(b * m, heads)
        .get(nd.create(rows.flatPosition)).toType(DataType.FLOAT32, false); // [R, H]
    NDArray weightedDv = dv.reshape(r, heads, hs).mul(rowAttention.expandDims(-1)).reshape(r, d); // [R, d]
    dz = dz.add(nd.create(rows.oneHot(b), new Shape(b, r)).matMul(weightedDv)); // [B, R] x [R, d] -> [B, d]

    // The rest of block l at T: attention projection, then the MLP.
    NDArray dMid = dxTarget.add(dz.matMul(block.attn().c_proj().weight())); // [B, d]
    NDArray dln2 = change(v -> model.gpt2.layerNorm(block.ln_2(), v), mid, dMid); // [B, d]
    NDArray dMlpPre = dln2.matMul(block.mlp().c_fc().weight()); // [B, d] x [d, 4d] -> [B, 4d]
    NDArray dGelu = change(Gpt2::gelu, mlpPre, dMlpPre); // [B, 4d]
    NDArray dNext = dMid.add(dGelu.matMul(block.mlp().c_proj().weight())); // x'_{l+1}[T] - x_{l+1}[T]: [B, d]

    // METHOD.md steps 4-5: the next SAE's encoder on the change, one GEMM for the batch.
    NDArray dPre = down.inputDelta(dNext).matMul(down.W_enc()); // [B, d] x [d, S] -> [B, S]
    return effects(latents, dPre);
  }

  /**
   * e = ReLU(pre + dPre) - ReLU(pre) for every latent of the next SAE. Only latents on before or
   * after the ablation can change, so those columns are found on the device and only they are read.
   */
  private List<Effects> effects(int[] latents, NDArray dPre) {
    int b = latents.length;
    float[] columnMax = dPre.add(preArray).max(new int[] {0}).toFloatArray(); // [S]
    int[] columns = IntStream.range(0, pre.length)
        // the slack admits columns whose float32 sum rounded to zero; the float64 test below decides
        .filter(j -> pre[j] > 0 || columnMax[j] > -1e-6f * Math.abs(pre[j]))
        .toArray();
    float[] picked = columns.length == 0 ? new float[0]
        : dPre.transpose().get(nd.create(Arrays.stream(columns).asLongStream().toArray())).toFloatArray(); // [C, B]
    List<Effects> out = new ArrayList<>(b);
    for (int i = 0; i < b; i++) {
      int[] js = new int[columns.length];
      float[] es = new float[columns.length];
      int k = 0;
      for (int c = 0; c < columns.length; c++) {
        double p = pre[columns[c]], delta = picked[c * b + i];
        // Active before and after: the change passes the ReLU unchanged, with no cancellation.
        double e = p > 0 && p + delta > 0 ? delta : Math.max(p + delta, 0) - Math.max(p, 0);
        if (e != 0) {
          js[k] = columns[c];
          es[k++] = (float) e;
        }
      }
      out.add(new Effects(latents[i], Arrays.copyOf(js, k), Arrays.copyOf(es, k)));
    }
    return out;
  }

  /** f(base + delta) - f(base), evaluated in float64 and returned as float32. */
  private static NDArray change(UnaryOperator<NDArray> f, NDArray base, NDArray delta) {
    NDArray b64 = base.toType(DataType.FLOAT64, false);
    NDArray after = f.apply(b64.add(delta.toType(DataType.FLOAT64, false)));
    return after.sub(f.apply(b64)).toType(DataType.FLOAT32, false);
  }

  /** Row {@code index[i] - 1} of {@code rows} for each i, or a zero row where index[i] is 0. */
  private NDArray gather(NDArray rows, long[] index) {
    NDArray table = NDArrays.concat(new NDList(nd.zeros(new Shape(1, rows.getShape().get(1))), rows), 0);
    return table.get(nd.create(index));
  }

  private NDArray heads(NDArray a) {
    return heads(a, heads, hs);
  }

  /** [n, d] -> [H, n, hs]. */
  private static NDArray heads(NDArray a, int heads, int hs) {
    return a.reshape(a.getShape().get(0), heads, hs).transpose(1, 0, 2);
  }

  /** The (latent, position) pairs a batch of ablations changes. */
  private final class Rows {
    final int count;
    final long[] batch, position, latent, flatPosition; // per row
    final float[] coef; // per row: f_l[p, i] > 0
    final long[] atTarget; // per latent: 1 + the row at the target, or 0
    final long[] atPosition; // per (latent, position), row-major [B, m]: 1 + the row, or 0

    Rows(int[] latents) {
      int b = latents.length;
      List<long[]> found = new ArrayList<>();
      List<Float> coefs = new ArrayList<>();
      for (int i = 0; i < b; i++) {
        float[] f = trace.firing(layer, latents[i], model.firstAblatable(), target);
        for (int p = 0; p < m; p++) {
          if (f[p] > 0) {
            found.add(new long[] {i, p, latents[i]});
            coefs.add(f[p]);
          }
        }
      }
      count = found.size();
      batch = new long[count];
      position = new long[count];
      latent = new long[count];
      flatPosition = new long[count];
      coef = new float[count];
      atTarget = new long[b];
      atPosition = new long[b * m];
      for (int k = 0; k < count; k++) {
        long[] row = found.get(k);
        batch[k] = row[0];
        position[k] = row[1];
        latent[k] = row[2];
        flatPosition[k] = row[0] * m + row[1];
        coef[k] = coefs.get(k);
        atPosition[(int) flatPosition[k]] = k + 1;
        if (row[1] == target) atTarget[(int) row[0]] = k + 1;
      }
    }

    /** [B, R]: 1 where row k belongs to latent i, to sum rows per latent with one product. */
    float[] oneHot(int b) {
      float[] h = new float[b * count];
      for (int k = 0; k < count; k++) h[(int) batch[k] * count + k] = 1f;
      return h;
    }
  }
}
