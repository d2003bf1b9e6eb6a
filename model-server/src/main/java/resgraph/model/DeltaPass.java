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
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.function.IntPredicate;
import java.util.stream.IntStream;

/**
 * Carries the changes a batch of ablations makes to the residual stream through a span of GPT-2,
 * from one stream to a later one (see {@link Site}), running only what a change reaches: METHOD.md
 * step 4 between two sites, and step 8 from a site to the logits.
 *
 * <p>A change lives on rows (ablation, position): the positions where it is nonzero. An MLP acts
 * on each row alone. An attention carries changes from the rows where its keys and values moved
 * into the queries that read them: into the target alone when no later attention of the span reads
 * the stream (then only the target's value is ever measured), else into every position from the
 * ablation's first change up to the target. Positions after the target never matter, nor queries
 * before an ablation's first change, since attention is causal.
 *
 * <p>Every quantity is carried as (clean value, change). Linear maps act on the change alone, in
 * float32, which keeps its relative precision; the nonlinear maps (LayerNorm, softmax, GELU) are
 * evaluated at both points in float64 and subtracted ({@link Change}). So an effect has the
 * precision of the change itself, not of the activations it is the difference of.
 *
 * <p>Shapes: {@code B} ablations in a batch, {@code R} rows, {@code m} = T + 1 positions, {@code q}
 * query positions (1 or m), {@code H} heads of size {@code hs}.
 */
final class DeltaPass implements AutoCloseable {

  /**
   * A batch's changes at one stream: row k is ablation {@code batch[k]} at {@code position[k]},
   * with the change x' - x in {@code dx [R, d]} (float32).
   */
  record Rows(int ablations, long[] batch, long[] position, NDArray dx) {

    int count() {
      return batch.length;
    }

    /** These rows and {@code later}'s, its ablations numbered after these. */
    Rows then(Rows later) {
      long[] b = Arrays.copyOf(batch, count() + later.count()), p = Arrays.copyOf(position, count() + later.count());
      for (int k = 0; k < later.count(); k++) {
        b[count() + k] = ablations + later.batch[k];
        p[count() + k] = later.position[k];
      }
      return new Rows(ablations + later.ablations, b, p, dx.concat(later.dx, 0));
    }

    /** For each ablation and each of {@code positions}: 1 + the index of its row there, or 0 when it has none. */
    long[] lookup(long[] positions, int m) {
      long[] table = new long[ablations * m];
      for (int k = 0; k < batch.length; k++) table[(int) (batch[k] * m + position[k])] = k + 1;
      long[] out = new long[ablations * positions.length];
      for (int b = 0; b < ablations; b++) {
        for (int i = 0; i < positions.length; i++) out[b * positions.length + i] = table[(int) (b * m + positions[i])];
      }
      return out;
    }
  }

  /** Block l's clean attention up to the target, float64 row-major: its input x [m, d] and c_attn(ln_1(x)) [m, 3d]. */
  private record CleanAttention(double[] x, double[] qkv) implements Trace.Sized {
    @Override
    public long bytes() {
      return 8L * (x.length + qkv.length);
    }
  }

  /** Block l's clean MLP up to the target, float64 row-major: its input x [m, d] and c_fc(ln_2(x)) [m, 4d]. */
  private record CleanMlp(double[] x, double[] hidden) implements Trace.Sized {
    @Override
    public long bytes() {
      return 8L * (x.length + hidden.length);
    }
  }

  /**
   * An attention's clean values that every query reads, as arrays: its input x [m, d] and queries
   * [m, d] in float64, the keys [H, hs, m] in float64 and float32, and the values [H, m, hs] in float32.
   */
  private record AttentionInput(NDArray x, NDArray queries64, NDArray keysT64, NDArray keysT32, NDArray values32) {}

  /** An attention's clean scores and probabilities [H, 1, q, m] (float64) at some queries, and those queries in float32 [q, d]. */
  private record Attention(NDArray query32, NDArray scores, NDArray attention, long[] queries) {}

  /** Block {@code layer}'s MLP's clean values as arrays. */
  private record Mlp(int layer, NDArray x, NDArray hidden) {}

  /** A sub-block's clean values: an attention's input (and, for the span's last, its values at the target) or an MLP's. */
  private record Sub(AttentionInput input, Attention atTarget, Mlp mlp) {

    List<NDArray> arrays() {
      List<NDArray> all = new ArrayList<>();
      if (input != null) all.addAll(List.of(input.x(), input.queries64(), input.keysT64(), input.keysT32(), input.values32()));
      if (atTarget != null) all.addAll(List.of(atTarget.query32(), atTarget.scores(), atTarget.attention()));
      if (mlp != null) all.addAll(List.of(mlp.x(), mlp.hidden()));
      return all;
    }
  }

  private final SaeModel model;
  private final Gpt2 gpt2;
  private final Trace trace;
  private final NDManager nd;
  private final int target, m, d, heads, hs, from, to;
  private final long blockBytes;
  /** Each sub-block's clean values once made, in no NDScope: freed by {@link #release} or {@link #close}. */
  private final Map<Integer, Sub> held = new HashMap<>();

  /**
   * A pass from stream {@code from} to stream {@code to}. Its sub-blocks' clean values are made as
   * they are first needed and held outside the caller's NDScopes until {@link #close}.
   */
  DeltaPass(SaeModel model, Trace trace, int target, int from, int to) {
    this(model, trace, target, from, to, BLOCK_BYTES);
  }

  /** The same, with attention into every query taken in blocks of at most {@code blockBytes} (see {@link #BLOCK_BYTES}). */
  DeltaPass(SaeModel model, Trace trace, int target, int from, int to, long blockBytes) {
    this.model = model;
    this.gpt2 = model.gpt2;
    this.trace = trace;
    this.nd = model.manager();
    this.target = target;
    this.m = target + 1;
    this.d = gpt2.config.n_embd();
    this.heads = gpt2.config.n_head();
    this.hs = gpt2.config.headSize();
    this.from = from;
    this.to = to;
    this.blockBytes = blockBytes;
  }

  /**
   * The float64 arrays of a block, at most: an attention's probabilities [H, B, q, m] over a block
   * of its queries, an MLP's hidden values [rows, 4d] over a block of its rows. A long prompt's
   * logit effects carry changes into every query: whole, those probabilities would be 100 MB an
   * ablation at 1,024 positions. A block's clean values are made for it and freed with it, and its
   * arrays stay under the allocator's mmap threshold (16 MB in the local cluster, up to 32 MB by
   * default), so that they reuse freed memory instead of faulting in fresh pages (PERFORMANCE.md).
   */
  static final long BLOCK_BYTES = 12L << 20;

  /**
   * Rows of a batch's change at once, at most, when the span carries changes into every query: a
   * row at every position from an ablation's first change on, so one ablation a batch at 1,024
   * positions, where a batch's rows already fill the products.
   */
  private static final int ROWS_PER_BATCH = 1024;

  /**
   * At most {@code requested} ablations per batch, fewer when the span carries changes into every
   * query, where each has a row at every position from its first change on.
   */
  int batchSize(int requested) {
    return readsEveryQuery() ? Math.max(1, Math.min(requested, ROWS_PER_BATCH / m)) : requested;
  }

  /** Whether an attention of the span carries changes into every query, not the target's alone: all but the last. */
  private boolean readsEveryQuery() {
    for (int r = from; r < to; r++) if (r % 2 == 0 && r != lastAttention()) return true;
    return false;
  }

  /** Whether a change anywhere before the target can reach the target between the two streams. */
  boolean mixesPositions() {
    return lastAttention() >= 0;
  }

  private int lastAttention() {
    int last = -1;
    for (int r = from; r < to; r++) if (r % 2 == 0) last = r;
    return last;
  }

  /**
   * METHOD.md step 3 at a site: removing latent i there changes the residual by -s_p·f[p, i]·W_dec[i]
   * at every ablatable position p up to the target where it fires.
   */
  Rows ablation(Sae sae, int[] latents) {
    double[] scale = trace.derived("decoder scale " + sae.site() + " to " + target,
        () -> sae.decoderScale(trace.stream(sae.site().stream(), m), m));
    List<long[]> found = new ArrayList<>();
    List<Float> coefs = new ArrayList<>();
    for (int b = 0; b < latents.length; b++) {
      float[] f = trace.firing(sae.site(), latents[b], model.firstAblatable(), target);
      for (int p = 0; p < m; p++) {
        if (f[p] > 0) {
          found.add(new long[] {b, p, latents[b]});
          coefs.add((float) (scale[p] * f[p]));
        }
      }
    }
    int r = found.size();
    long[] batch = new long[r], position = new long[r], latent = new long[r];
    float[] coef = new float[r];
    for (int k = 0; k < r; k++) {
      batch[k] = found.get(k)[0];
      position[k] = found.get(k)[1];
      latent[k] = found.get(k)[2];
      coef[k] = -coefs.get(k);
    }
    NDArray dx = r == 0 ? nd.zeros(new Shape(0, d))
        : sae.W_dec.get(nd.create(latent)).mul(nd.create(coef, new Shape(r, 1))); // [R, d]
    return new Rows(latents.length, batch, position, dx);
  }

  /** The changes at stream {@code to}, from changes at stream {@code from}; every sub-block's clean values stay held. */
  Rows run(Rows rows) {
    for (int r = from; r < to; r++) rows = step(r, rows);
    return rows;
  }

  /**
   * The same for many batches, a sub-block at a time: each sub-block's clean values are made once
   * and freed when every batch has passed it, so that one sub-block's are held, not the span's (at
   * full context 57 MB a block, 680 MB from the first block to the logits). A batch's ablations
   * may enter at several streams (those of their sites): its rows by stream, each stream's numbered
   * after those of the streams before it.
   */
  List<Rows> run(List<SortedMap<Integer, Rows>> batches) {
    List<Rows> current = new ArrayList<>(Collections.nCopies(batches.size(), (Rows) null));
    for (int r = from; r < to; r++) {
      for (int k = 0; k < batches.size(); k++) {
        Rows in = join(batches.get(k), current.get(k), r);
        if (in == null) continue; // none of this batch's sites reached yet
        Rows out = step(r, in);
        if (out.dx() != in.dx()) freeMade(batches.get(k), in.dx());
        current.set(k, out);
      }
      release(r);
    }
    for (int k = 0; k < batches.size(); k++) current.set(k, join(batches.get(k), current.get(k), to)); // sites at the last stream
    return current;
  }

  /** A batch's changes so far with its rows entering at {@code stream}, if any. */
  private static Rows join(SortedMap<Integer, Rows> batch, Rows held, int stream) {
    Rows entering = batch.get(stream);
    if (held == null || entering == null) return held == null ? entering : held;
    Rows joined = held.then(entering);
    freeMade(batch, held.dx()); // copied into the joined rows
    return joined;
  }

  /** Frees the clean values held for the sub-blocks. */
  @Override
  public void close() {
    for (int r = from; r < to; r++) release(r);
  }

  private Rows step(int r, Rows rows) {
    Rows in = r % 2 == 1 && r > lastAttention() ? only(rows, target) : rows; // nothing after this reads another position
    return Scopes.keeping(() -> r % 2 == 1 ? mlp(sub(r).mlp(), in) : attention(r, sub(r), in), out -> List.of(out.dx()));
  }

  private Sub sub(int r) {
    return held.computeIfAbsent(r, k -> Scopes.detached(() -> {
      if (k % 2 == 1) return new Sub(null, null, mlp(k));
      AttentionInput in = attentionInput(k);
      return new Sub(in, k == lastAttention() ? attention(in, new long[] {target}) : null, null);
    }, Sub::arrays));
  }

  private void release(int r) {
    Sub s = held.remove(r);
    if (s != null) s.arrays().forEach(NDArray::close);
  }

  /** Frees an array of a batch's changes that the pass made: not one of the caller's entering rows. */
  private static void freeMade(SortedMap<Integer, Rows> batch, NDArray a) {
    if (batch.values().stream().noneMatch(rows -> rows.dx() == a)) free(a);
  }

  private static void free(NDArray a) {
    NDScope.unregister(a);
    a.close();
  }

  /** Each ablation's change at the target, [B, d]; zero for an ablation that does not reach it. */
  NDArray atTarget(Rows rows) {
    return table(rows.dx()).get(nd.create(rows.lookup(new long[] {target}, m)));
  }

  // ---- the sub-blocks ----

  /** Block l's attention on the changes: into the target's query alone, or into every query up to it. */
  private Rows attention(int r, Sub clean, Rows rows) {
    if (rows.count() == 0) return rows; // no change anywhere stays no change
    Gpt2.Block block = gpt2.h.get(r / 2);
    AttentionInput in = clean.input();
    NDArray dqkv = Change.of(v -> gpt2.layerNorm(block.ln_1(), v), in.x().get(nd.create(rows.position())), rows.dx())
        .matMul(block.attn().c_attn().weight()); // [R, d] x [d, 3d] -> [R, 3d]
    Changed changed = new Changed(rows, table(dqkv.get(":, 0:" + d)), dqkv.get(":, " + d + ":" + 2 * d),
        dqkv.get(":, " + 2 * d + ":"), table(rows.dx()));
    if (clean.atTarget() != null) return attend(block, in, changed, clean.atTarget(), null, null);
    int b = rows.ablations();
    long[] every = rows.lookup(positions(0), m);
    NDArray keys = heads(table(changed.dk()).get(nd.create(every))).reshape(heads, b, m, hs); // [H, B, m, hs], zero where unchanged
    NDArray values = heads(table(changed.dv()).get(nd.create(every))).reshape(heads, b, m, hs);
    // before the first changed row nothing changes: those queries read only keys before it
    int first = (int) Arrays.stream(rows.position()).min().getAsLong();
    int size = (int) Math.max(1, blockBytes / (8L * heads * b * m));
    List<Rows> blocks = new ArrayList<>();
    for (int start = first; start < m; start += size) {
      long[] queries = positions(start, Math.min(m, start + size));
      blocks.add(Scopes.keeping(() -> attend(block, in, changed, attention(in, queries), keys, values), o -> List.of(o.dx())));
    }
    return fromFirstChange(concat(b, blocks), rows);
  }

  /**
   * A batch's rows with the changes they make to an attention's keys and values [R, d], and as
   * tables for {@link Rows#lookup} (see {@link #table}) to its queries and to the rows themselves.
   */
  private record Changed(Rows rows, NDArray dqTable, NDArray dk, NDArray dv, NDArray dxTable) {}

  /**
   * The attention's change at the queries of {@code c}: from the changed keys and values row by
   * row when {@code keys} is null (the target alone), else from {@code keys} and {@code values},
   * the changes at every position [H, B, m, hs].
   */
  private Rows attend(Gpt2.Block block, AttentionInput in, Changed changed, Attention c, NDArray keys, NDArray values) {
    Rows rows = changed.rows();
    int b = rows.ablations(), q = c.queries().length;
    long[] queryRow = rows.lookup(c.queries(), m);
    NDArray dq = changed.dqTable().get(nd.create(queryRow)); // [B·q, d], zero where the query's row did not change
    NDArray queryNew = dq.reshape(b, q, d).add(c.query32()); // [B, q, d]

    // Scores: s' - s = dq·k_p + q'·dk_p, the second term only at changed rows p.
    NDArray dScores = heads(dq).matMul(in.keysT32()).reshape(heads, b, q, m) // [H, B·q, hs] x [H, hs, m]
        .add(keys == null ? targetScores(rows, queryNew, changed.dk()) : everyQueryScores(queryNew, keys)); // [H, B, q, m]
    NDArray attention = c.scores().add(dScores.div(Math.sqrt(hs)).toType(DataType.FLOAT64, false)).softmax(-1);

    // Output: z' - z = sum_p (a'_p - a_p) v_p + sum_p a'_p dv_p, the second term only at changed rows p.
    NDArray dAttention = attention.sub(c.attention()).toType(DataType.FLOAT32, false); // [H, B, q, m]
    NDArray dz = dAttention.reshape(heads, (long) b * q, m).matMul(in.values32()) // [H, B·q, m] x [H, m, hs]
        .transpose(1, 0, 2).reshape((long) b * q, d)
        .add(keys == null ? targetValues(rows, attention, changed.dv()) : everyQueryValues(attention, values)); // [B·q, d]

    NDArray out = dz.matMul(block.attn().c_proj().weight()).add(changed.dxTable().get(nd.create(queryRow))); // [B·q, d]
    long[] batch = new long[b * q], position = new long[b * q];
    for (int i = 0; i < b * q; i++) {
      batch[i] = i / q;
      position[i] = c.queries()[i % q];
    }
    return new Rows(b, batch, position, out);
  }

  // The terms of changed keys and values. Into the target alone they are summed row by row, as
  // few as the rows that changed; into every query, as a product per ablation and head over all
  // positions (zero where unchanged), since row by row they would be [R, q, d]: 3 GB at 1,024.

  /** q'·dk_p into the target's query, [H, B, 1, m]. */
  private NDArray targetScores(Rows rows, NDArray queryNew, NDArray dk) {
    int b = rows.ablations(), count = rows.count();
    NDArray rowScores = queryNew.get(nd.create(rows.batch())).mul(dk.expandDims(1)) // [R, 1, d]
        .reshape(count, heads, hs).sum(new int[] {-1}); // [R, H]
    return table(rowScores).get(nd.create(rows.lookup(positions(0), m))).reshape(b, m, 1, heads).transpose(3, 0, 2, 1);
  }

  /** q'·dk_p into every query, [H, B, q, m]. */
  private NDArray everyQueryScores(NDArray queryNew, NDArray keys) {
    int b = (int) queryNew.getShape().get(0), q = (int) queryNew.getShape().get(1);
    return heads(queryNew.reshape((long) b * q, d)).reshape(heads, b, q, hs).matMul(keys.transpose(0, 1, 3, 2));
  }

  /** Σ_p a'_p dv_p at the target, [B, d]. */
  private NDArray targetValues(Rows rows, NDArray attention, NDArray dv) {
    int b = rows.ablations(), count = rows.count();
    long[] flat = new long[count];
    for (int k = 0; k < count; k++) flat[k] = rows.batch()[k] * m + rows.position()[k];
    NDArray rowAttention = attention.transpose(1, 3, 2, 0).reshape((long) b * m, heads) // [B·m, H]
        .get(nd.create(flat)).toType(DataType.FLOAT32, false); // [R, H]
    NDArray weighted = dv.reshape(count, heads, hs).mul(rowAttention.expandDims(-1)).reshape(count, d); // [R, d]
    return oneHot(rows.batch(), b).matMul(weighted); // [B, R] x [R, d]
  }

  /** Σ_p a'_p dv_p at every query, [B·q, d]. */
  private NDArray everyQueryValues(NDArray attention, NDArray values) {
    int b = (int) attention.getShape().get(1), q = (int) attention.getShape().get(2);
    return attention.toType(DataType.FLOAT32, false).matMul(values) // [H, B, q, m] x [H, B, m, hs]
        .transpose(1, 2, 0, 3).reshape((long) b * q, d);
  }

  /** Block l's MLP on each changed row. */
  private Rows mlp(Mlp clean, Rows rows) {
    if (rows.count() == 0) return rows;
    int size = (int) Math.max(1, blockBytes / (8L * clean.hidden().getShape().get(1)));
    NDList parts = new NDList();
    for (int start = 0; start < rows.count(); start += size) {
      int end = Math.min(rows.count(), start + size);
      long[] position = Arrays.copyOfRange(rows.position(), start, end);
      NDArray dx = rows.dx().get(start + ":" + end);
      parts.add(Scopes.keeping(() -> mlp(clean, position, dx), List::of));
    }
    return new Rows(rows.ablations(), rows.batch(), rows.position(), parts.size() == 1 ? parts.get(0) : NDArrays.concat(parts, 0));
  }

  /** The MLP's change at rows of the given positions, [R, d]. */
  private NDArray mlp(Mlp c, long[] position, NDArray dx) {
    Gpt2.Block block = gpt2.h.get(c.layer());
    // after the last attention every row is at the target: one clean row serves them all
    boolean one = Arrays.stream(position).allMatch(p -> p == position[0]);
    NDArray at = nd.create(one ? new long[] {position[0]} : position);
    NDArray dln2 = Change.of(v -> gpt2.layerNorm(block.ln_2(), v), c.x().get(at), dx); // [R, d]
    NDArray dHidden = dln2.matMul(block.mlp().c_fc().weight()); // [R, d] x [d, 4d] -> [R, 4d]
    NDArray dGelu = Change.of(Gpt2::gelu, c.hidden().get(at), dHidden); // [R, 4d]
    return dx.add(dGelu.matMul(block.mlp().c_proj().weight())); // [R, 4d] x [4d, d] -> [R, d]
  }

  /** The rows at one position. */
  private Rows only(Rows rows, int position) {
    return select(rows, k -> rows.position()[k] == position);
  }

  /**
   * Each ablation's rows of {@code out} from the first position where it changed {@code in} on: the
   * attention is causal, so its change before there is exactly zero, and a batch that mixes
   * ablations of early and late changes would otherwise carry each at every query from the earliest.
   */
  private Rows fromFirstChange(Rows out, Rows in) {
    long[] first = new long[in.ablations()];
    Arrays.fill(first, Long.MAX_VALUE);
    for (int k = 0; k < in.count(); k++) first[(int) in.batch()[k]] = Math.min(first[(int) in.batch()[k]], in.position()[k]);
    return select(out, k -> out.position()[k] >= first[(int) out.batch()[k]]);
  }

  /** The rows k for which {@code keep} holds. */
  private Rows select(Rows rows, IntPredicate keep) {
    long[] index = IntStream.range(0, rows.count()).filter(keep).asLongStream().toArray();
    if (index.length == rows.count()) return rows;
    long[] batch = new long[index.length], position = new long[index.length];
    for (int i = 0; i < index.length; i++) {
      batch[i] = rows.batch()[(int) index[i]];
      position[i] = rows.position()[(int) index[i]];
    }
    NDArray dx = index.length == 0 ? nd.zeros(new Shape(0, d)) : rows.dx().get(nd.create(index));
    return new Rows(rows.ablations(), batch, position, dx);
  }

  // ---- clean values ----

  private AttentionInput attentionInput(int r) {
    int l = r / 2;
    CleanAttention c = trace.derived("attention " + l + " to " + target, () -> {
      try (NDScope scope = new NDScope()) {
        NDArray x = nd.create(trace.stream(r, m), new Shape(m, d));
        NDArray qkv = Gpt2.linear(gpt2.h.get(l).attn().c_attn(), gpt2.layerNorm(gpt2.h.get(l).ln_1(), x)); // [m, 3d]
        return new CleanAttention(trace.stream(r, m), qkv.toDoubleArray());
      }
    });
    return Scopes.keeping(() -> {
      NDArray qkv = nd.create(c.qkv(), new Shape(m, 3L * d));
      NDArray keysT64 = heads(qkv.get(":, " + d + ":" + 2 * d)).transpose(0, 2, 1).duplicate(); // [H, hs, m]
      return new AttentionInput(nd.create(c.x(), new Shape(m, d)), qkv.get(":, 0:" + d).duplicate(), keysT64,
          keysT64.toType(DataType.FLOAT32, false), heads(qkv.get(":, " + 2 * d + ":")).toType(DataType.FLOAT32, false));
    }, a -> List.of(a.x(), a.queries64(), a.keysT64(), a.keysT32(), a.values32()));
  }

  /**
   * An attention's clean values at the given queries, from its held inputs: libtorch's work alone,
   * no array copied in from the JVM but the causal mask.
   */
  private Attention attention(AttentionInput in, long[] queries) {
    NDArray query64 = in.queries64().get(nd.create(queries)); // [q, d]
    NDArray scores = heads(query64).matMul(in.keysT64()).div(Math.sqrt(hs)) // [H, q, hs] x [H, hs, m]
        .add(causalMask(queries)).expandDims(1); // [H, 1, q, m]
    return new Attention(query64.toType(DataType.FLOAT32, false), scores, scores.softmax(-1), queries);
  }

  private Mlp mlp(int r) {
    int l = r / 2;
    CleanMlp c = trace.derived("mlp " + l + " to " + target, () -> {
      try (NDScope scope = new NDScope()) {
        NDArray x = nd.create(trace.stream(r, m), new Shape(m, d));
        NDArray hidden = Gpt2.linear(gpt2.h.get(l).mlp().c_fc(), gpt2.layerNorm(gpt2.h.get(l).ln_2(), x)); // [m, 4d]
        return new CleanMlp(trace.stream(r, m), hidden.toDoubleArray());
      }
    });
    return new Mlp(l, nd.create(c.x(), new Shape(m, d)), nd.create(c.hidden(), new Shape(m, c.hidden().length / m)));
  }

  /** 0 where query q may read position p (p <= q), -inf after it: [q, m] float64. */
  private NDArray causalMask(long[] queries) {
    double[] mask = new double[queries.length * m];
    for (int i = 0; i < queries.length; i++) {
      for (int p = (int) queries[i] + 1; p < m; p++) mask[i * m + p] = Double.NEGATIVE_INFINITY;
    }
    return nd.create(mask, new Shape(queries.length, m));
  }

  /** Positions first..T. */
  private long[] positions(int first) {
    return positions(first, m);
  }

  /** Positions first..end - 1. */
  private long[] positions(int first, int end) {
    long[] all = new long[end - first];
    for (int p = first; p < end; p++) all[p - first] = p;
    return all;
  }

  /** The blocks' rows as one batch's. */
  private Rows concat(int ablations, List<Rows> blocks) {
    if (blocks.size() == 1) return blocks.get(0);
    NDList dx = new NDList();
    List<long[]> batch = new ArrayList<>(), position = new ArrayList<>();
    for (Rows block : blocks) {
      dx.add(block.dx());
      batch.add(block.batch());
      position.add(block.position());
    }
    return new Rows(ablations, flat(batch), flat(position), NDArrays.concat(dx, 0));
  }

  private static long[] flat(List<long[]> parts) {
    return parts.stream().flatMapToLong(Arrays::stream).toArray();
  }

  // ---- helpers ----

  /**
   * A zero row, then {@code rows}: row {@code index[i]} of it for each i of a {@link Rows#lookup}
   * is the row found there, or zeros. Made once a layer: a block of queries gathers from it.
   */
  private NDArray table(NDArray rows) {
    return NDArrays.concat(new NDList(nd.zeros(new Shape(1, rows.getShape().get(1)), rows.getDataType()), rows), 0);
  }

  /** [B, R]: 1 where row k belongs to ablation b, to sum rows per ablation with one product. */
  private NDArray oneHot(long[] batch, int b) {
    float[] h = new float[b * batch.length];
    for (int k = 0; k < batch.length; k++) h[(int) batch[k] * batch.length + k] = 1f;
    return nd.create(h, new Shape(b, batch.length));
  }

  /** [n, d] -> [H, n, hs]. */
  private NDArray heads(NDArray a) {
    return a.reshape(a.getShape().get(0), heads, hs).transpose(1, 0, 2);
  }
}
