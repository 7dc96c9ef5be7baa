//! The attention softmax over the keys, with its key mask and backward pass.

use super::*;

/// Attention probabilities: softmax over the keys of `scale * scores + bias`,
/// where `scores` is `(batch, heads, queries, keys)` and the additive key
/// bias (0 or a large negative number at padding) is `(batch, keys)`.
struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "masked-softmax"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let scores = cpu_slice(s1, l1, self.name())?;
        let bias = cpu_slice(s2, l2, self.name())?;
        let (batch, heads, queries, keys) = l1.shape().dims4()?;
        if bias.len() != batch * keys {
            bail!("masked-softmax: bias of {} for {batch} x {keys} keys", bias.len());
        }
        let rows_per_sequence = heads * queries;
        let mut out = vec![0f32; scores.len()];
        for_row_chunks(&mut out, keys, |first, rows| {
            // Rows of one sequence share its key bias; a chunk may start and
            // end inside a sequence.
            let mut done = 0;
            while done < rows.len() {
                let r = first + done / keys;
                let sequence = r / rows_per_sequence;
                let end = ((sequence + 1) * rows_per_sequence - first) * keys;
                let span = done..end.min(rows.len());
                let key_bias = &bias[sequence * keys..][..keys];
                softmax_rows(&mut rows[span.clone()], &scores[first * keys..][span.clone()], key_bias, self.scale);
                done = span.end;
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        scores: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let keys = scores.dim(candle_core::D::Minus1)?;
        let name = self.name();
        let dx = with_hosts([res, grad], name, |[y, g]| {
            let mut dx = vec![0f32; y.len()];
            for_row_chunks(&mut dx, keys, |first, rows| {
                let span = first * keys..first * keys + rows.len();
                softmax_backward_rows(rows, &y[span.clone()], &g[span], keys, self.scale);
            });
            Ok(dx)
        })?;
        Ok((Some(Tensor::from_vec(dx, scores.shape(), scores.device())?), None))
    }
}

#[inline(always)]
fn softmax_rows_kernel(out: &mut [f32], scores: &[f32], key_bias: &[f32], scale: f32) {
    let keys = key_bias.len();
    for (row, input) in out.chunks_exact_mut(keys).zip(scores.chunks_exact(keys)) {
        let mut max = f32::NEG_INFINITY;
        for ((y, s), b) in row.iter_mut().zip(input).zip(key_bias) {
            *y = s * scale + b;
            max = max.max(*y);
        }
        row.iter_mut().for_each(|y| *y = exp(*y - max));
        let inverse = 1.0 / sum(row);
        row.iter_mut().for_each(|y| *y *= inverse);
    }
}

dispatch! {
    /// Softmax of `scale * scores + key_bias` for rows of one sequence.
    fn softmax_rows = softmax_rows_kernel(out: &mut [f32], scores: &[f32], key_bias: &[f32], scale: f32)
}

#[inline(always)]
fn softmax_backward_rows_kernel(dx: &mut [f32], y: &[f32], g: &[f32], keys: usize, scale: f32) {
    let rows = dx.chunks_exact_mut(keys).zip(y.chunks_exact(keys)).zip(g.chunks_exact(keys));
    for ((dx_row, y_row), g_row) in rows {
        let mut partial = [0f32; 8];
        let (mut y_chunks, mut g_chunks) = (y_row.chunks_exact(8), g_row.chunks_exact(8));
        for (y8, g8) in (&mut y_chunks).zip(&mut g_chunks) {
            for ((p, y), g) in partial.iter_mut().zip(y8).zip(g8) {
                *p += y * g;
            }
        }
        let tail: f32 = y_chunks.remainder().iter().zip(g_chunks.remainder()).map(|(y, g)| y * g).sum();
        let dot = partial.iter().sum::<f32>() + tail;
        for ((d, y), g) in dx_row.iter_mut().zip(y_row).zip(g_row) {
            *d = scale * y * (g - dot);
        }
    }
}

dispatch! {
    /// The gradient of the softmax for rows of `keys` probabilities `y`.
    fn softmax_backward_rows = softmax_backward_rows_kernel(dx: &mut [f32], y: &[f32], g: &[f32], keys: usize, scale: f32)
}

/// Softmax over the keys of `scale * scores + key_bias`; `scores` is
/// `(batch, heads, queries, keys)` and `key_bias` is `(batch, keys)`.
pub fn masked_softmax(scores: &Tensor, key_bias: &Tensor, scale: f64) -> Result<Tensor> {
    if scores.device().is_cpu() {
        scores.contiguous()?.apply_op2(&key_bias.contiguous()?, MaskedSoftmax { scale: scale as f32 })
    } else {
        composed::masked_softmax(scores, key_bias, scale)
    }
}
