//! Self-attention of every head in one kernel, read straight from the fused
//! projection; inference only.

use super::*;

/// The shape of a fused attention: `heads` heads of `head_dim` over
/// sequences of `length` tokens.
#[derive(Clone, Copy)]
pub(super) struct AttentionShape {
    pub(super) length: usize,
    pub(super) heads: usize,
    pub(super) head_dim: usize,
    pub(super) scale: f32,
}

/// Self-attention of every head, from the fused projection `qkv` of shape
/// `(batch, length, 3 * hidden)` (queries, keys and values side by side, each
/// `heads` blocks of `head_dim`) and the key bias `(batch, length)`, to the
/// context `(batch, length, hidden)`. Inference only: it has no backward pass.
///
/// Composed of candle's ops, attention copied the heads out of the projection
/// and the context back, and ran one small matrix product per head in turn on
/// one thread. Here parts of the query rows run in parallel, read the heads
/// where they are and write the context in place.
struct Attention {
    heads: usize,
    scale: f32,
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = cpu_slice(s1, l1, self.name())?;
        let bias = cpu_slice(s2, l2, self.name())?;
        let (batch, length, three_hidden) = l1.shape().dims3()?;
        let hidden = three_hidden / 3;
        if hidden == 0 || hidden * 3 != three_hidden || self.heads == 0 || hidden % self.heads != 0 {
            bail!("attention: a projection of {three_hidden} does not split into 3 x {} heads", self.heads);
        }
        if bias.len() != batch * length {
            bail!("attention: bias of {} for {batch} x {length} keys", bias.len());
        }
        let shape = AttentionShape { length, heads: self.heads, head_dim: hidden / self.heads, scale: self.scale };
        let mut out = vec![0f32; batch * length * hidden];
        // Whole sequences a part when there are enough to share between the
        // threads: each part transposes the keys of its sequences once per
        // head. Otherwise parts of 32 query rows.
        let per_part = if batch >= 8 { length } else { 32usize.min(length) }.max(1);
        run_parts(out.chunks_mut(per_part * hidden), per_part, hidden, 0, |first, rows, _| {
            attention_rows(rows, qkv, bias, first, shape);
        });
        Ok((CpuStorage::F32(out), Shape::from((batch, length, hidden))))
    }
}

/// `a * b + c`, in one fused instruction where `FUSED` (only in code built
/// for FMA: elsewhere `mul_add` is a slow library call).
#[inline(always)]
fn multiply_add<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// For two coefficient vectors `c[0]` and `c[1]`, the sums over `i` of
/// `c[k][i] * rows[i * stride + offset..][..W]`: a pair of queries against
/// the transposed keys, or a pair of probability rows against the values.
/// Both share each row loaded, and their `2 W / 8` accumulator vectors (W a
/// multiple of 8 lanes) are independent, which hides the latency of the
/// multiply-adds.
#[inline(always)]
fn pair_sums<const W: usize, const FUSED: bool>(
    c: [&[f32]; 2],
    rows: &[f32],
    stride: usize,
    offset: usize,
) -> [[f32; W]; 2] {
    let mut acc = [[0f32; W]; 2];
    for (i, (c0, c1)) in c[0].iter().zip(c[1]).enumerate() {
        let row = &rows[i * stride + offset..][..W];
        acc[0].iter_mut().zip(row).for_each(|(a, r)| *a = multiply_add::<FUSED>(*c0, *r, *a));
        acc[1].iter_mut().zip(row).for_each(|(a, r)| *a = multiply_add::<FUSED>(*c1, *r, *a));
    }
    acc
}

// One piece on purpose: the per-head loops share the transposed keys, the
// values and the score buffers, and split into functions they would pass a
// dozen slices each; the compiler vectorises it as one body.
#[inline(always)]
pub(super) fn attention_rows_kernel<const FUSED: bool>(
    out: &mut [f32],
    qkv: &[f32],
    bias: &[f32],
    first: usize,
    shape: AttentionShape,
) {
    let AttentionShape { length, heads, head_dim, scale } = shape;
    let hidden = heads * head_dim;
    let mut keys_t = vec![0f32; head_dim * length];
    let mut values = vec![0f32; length * head_dim];
    let mut scores = [vec![0f32; length], vec![0f32; length]];
    let rows = out.len() / hidden;
    let mut row = 0;
    // Rows of one sequence share its keys and values; a part may start and
    // end inside a sequence.
    while row < rows {
        let sequence = (first + row) / length;
        let end = ((sequence + 1) * length - first).min(rows);
        let tokens = &qkv[sequence * length * 3 * hidden..][..length * 3 * hidden];
        let key_bias = &bias[sequence * length..][..length];
        for head in 0..heads {
            // This head's keys transposed (a row per dimension), so that a
            // query's scores are sums of whole rows, which vectorise along
            // the keys; and its values side by side.
            for (j, token) in tokens.chunks_exact(3 * hidden).enumerate() {
                let key = &token[hidden + head * head_dim..][..head_dim];
                for (d, k) in key.iter().enumerate() {
                    keys_t[d * length + j] = *k;
                }
                values[j * head_dim..][..head_dim].copy_from_slice(&token[2 * hidden + head * head_dim..][..head_dim]);
            }
            // Two query rows at a time (the last one twice when the count
            // is odd: both results are the same).
            for r0 in (row..end).step_by(2) {
                let pair = [r0, (r0 + 1).min(end - 1)];
                let query = pair.map(|r| {
                    let position = first + r - sequence * length;
                    &tokens[position * 3 * hidden + head * head_dim..][..head_dim]
                });
                let mut j0 = 0;
                while j0 + 32 <= length {
                    let acc = pair_sums::<32, FUSED>(query, &keys_t, length, j0);
                    for (scores, acc) in scores.iter_mut().zip(acc) {
                        scores[j0..j0 + 32].copy_from_slice(&acc);
                    }
                    j0 += 32;
                }
                while j0 + 8 <= length {
                    let acc = pair_sums::<8, FUSED>(query, &keys_t, length, j0);
                    for (scores, acc) in scores.iter_mut().zip(acc) {
                        scores[j0..j0 + 8].copy_from_slice(&acc);
                    }
                    j0 += 8;
                }
                let mut inverse = [0f32; 2];
                for ((scores, query), inverse) in scores.iter_mut().zip(query).zip(&mut inverse) {
                    for (j, s) in scores.iter_mut().enumerate().skip(j0) {
                        *s = query.iter().enumerate().map(|(d, q)| q * keys_t[d * length + j]).sum();
                    }
                    let mut max = f32::NEG_INFINITY;
                    for (s, b) in scores.iter_mut().zip(key_bias) {
                        *s = multiply_add::<FUSED>(*s, scale, *b);
                        max = max.max(*s);
                    }
                    scores.iter_mut().for_each(|s| *s = exp(*s - max));
                    *inverse = 1.0 / sum(scores);
                }
                let weights = [scores[0].as_slice(), scores[1].as_slice()];
                let mut c0 = 0;
                let mut context = [[0f32; 32]; 2];
                while c0 < head_dim {
                    let width = if c0 + 32 <= head_dim {
                        context = pair_sums::<32, FUSED>(weights, &values, head_dim, c0);
                        32
                    } else if c0 + 8 <= head_dim {
                        let acc = pair_sums::<8, FUSED>(weights, &values, head_dim, c0);
                        context[0][..8].copy_from_slice(&acc[0]);
                        context[1][..8].copy_from_slice(&acc[1]);
                        8
                    } else {
                        for (context, weights) in context.iter_mut().zip(weights) {
                            context[0] =
                                weights.iter().zip(values.chunks_exact(head_dim)).map(|(p, v)| p * v[c0]).sum();
                        }
                        1
                    };
                    for i in 0..2 {
                        let target = &mut out[pair[i] * hidden + head * head_dim + c0..][..width];
                        target.iter_mut().zip(&context[i]).for_each(|(c, a)| *c = a * inverse[i]);
                    }
                    c0 += width;
                }
            }
        }
        row = end;
    }
}

dispatch! {
    /// Attention for the query rows `first..` that `out` holds (rows of
    /// `hidden`), over the keys and values of their sequences in `qkv`.
    fn attention_rows = attention_rows_kernel[::<true>][::<false>](
        out: &mut [f32],
        qkv: &[f32],
        bias: &[f32],
        first: usize,
        shape: AttentionShape,
    )
}

/// Self-attention from the fused projection `qkv` `(batch, length, 3 *
/// hidden)` with key bias `(batch, length)`, to the context `(batch, length,
/// hidden)`; CPU inference only (no backward pass): see [`Attention`].
pub fn attention(qkv: &Tensor, key_bias: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    qkv.contiguous()?.apply_op2(&key_bias.contiguous()?, Attention { heads, scale: scale as f32 })
}
