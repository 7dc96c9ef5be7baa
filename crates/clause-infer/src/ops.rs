//! Fused CPU kernels, each with a hand-written backward pass.
//!
//! Composed of candle's generic ops, one BERT training step spent most of its
//! time outside matrix multiplication: every broadcast allocates, and the
//! backward pass of a broadcast sums over leading dimensions with a strided
//! loop. These kernels do each step in one pass over contiguous rows, split
//! across candle's thread pool. They run on CPU tensors only; the model
//! falls back to the composed ops on other devices, and the tests check the
//! two against each other, values and gradients.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor, bail};

/// Rows per parallel work item: about 16k elements, enough to amortise the
/// hand-off and small enough to balance two to sixteen threads.
fn rows_per_chunk(width: usize) -> usize {
    (16_384 / width.max(1)).max(1)
}

/// A part of the rows: its first row, its elements and its accumulators.
type Part<P> = Mutex<(usize, P, Vec<Vec<f32>>)>;

/// Run `f(first_row, part, sums)` over `parts` (consecutive chunks of
/// `rows_per_part` rows, mutable or not), in parallel on candle's CPU pool;
/// each part adds into its own `columns` accumulators of `width` elements,
/// whose totals are returned.
fn run_parts<P: Send>(
    parts: impl Iterator<Item = P>,
    rows_per_part: usize,
    width: usize,
    columns: usize,
    f: impl Fn(usize, &mut P, &mut [Vec<f32>]) + Sync,
) -> Vec<Vec<f32>> {
    let parts: Vec<Part<P>> = parts
        .enumerate()
        .map(|(i, part)| Mutex::new((i * rows_per_part, part, vec![vec![0f32; width]; columns])))
        .collect();
    let run = |i: usize| {
        let mut part = parts[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (first, rows, sums) = &mut *part;
        f(*first, rows, sums);
    };
    match parts.len() {
        0 => {}
        1 => run(0),
        n => candle_core::utils::barrier_pool().execute_chunked(n, |range| range.for_each(run)),
    }
    let mut total = vec![vec![0f32; width]; columns];
    for part in parts {
        let (_, _, sums) = part.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (acc, part) in total.iter_mut().zip(&sums) {
            acc.iter_mut().zip(part).for_each(|(a, p)| *a += p);
        }
    }
    total
}

/// Run `f(first_row, rows)` over chunks of `out`'s rows of `width` elements,
/// in parallel.
fn for_row_chunks(out: &mut [f32], width: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let per_part = rows_per_chunk(width);
    run_parts(out.chunks_mut(per_part * width), per_part, width, 0, |first, rows, _| f(first, rows));
}

/// Like [`for_row_chunks`], where each chunk also adds into `columns`
/// accumulators of `width` elements; returns their totals.
fn for_row_chunks_summing(
    out: &mut [f32],
    width: usize,
    columns: usize,
    f: impl Fn(usize, &mut [f32], &mut [Vec<f32>]) + Sync,
) -> Vec<Vec<f32>> {
    let per_part = rows_per_chunk(width);
    run_parts(out.chunks_mut(per_part * width), per_part, width, columns, |first, rows, sums| f(first, rows, sums))
}

/// Run `f(offset, part)` over parts of `values`, in parallel on candle's CPU
/// pool; `offset` is where `part` starts in `values`. For element-wise
/// kernels written outside this module (the optimizer's).
pub fn for_each_part(values: &mut [f32], f: impl Fn(usize, &mut [f32]) + Sync) {
    for_row_chunks(values, 1, f);
}

/// The contiguous f32 contents of a CPU storage, or an error naming `op`.
pub fn cpu_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { bail!("{op}: expected an f32 tensor") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: expected a contiguous tensor"),
    }
}

/// [`cpu_slice`] for a storage an in-place op writes.
pub fn cpu_slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = storage else { bail!("{op}: expected an f32 tensor") };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("{op}: expected a contiguous tensor"),
    }
}

/// Call `f` with the f32 contents of a CPU tensor.
pub fn with_host<R>(tensor: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let tensor = tensor.contiguous()?;
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => f(cpu_slice(cpu, layout, op)?),
        _ => bail!("{op}: expected a CPU tensor"),
    }
}

fn last_dim(layout: &Layout) -> Result<usize> {
    layout.shape().dims().last().copied().filter(|&n| n > 0).ok_or_else(|| candle_core::Error::msg("empty last dim"))
}

/// `x + b` with `b` broadcast along the rows of `x`'s last dimension.
struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "bias-add"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s1, l1, self.name())?;
        let b = cpu_slice(s2, l2, self.name())?;
        let width = last_dim(l1)?;
        if b.len() != width {
            bail!("bias-add: bias of {} for rows of {width}", b.len());
        }
        let mut out = x.to_vec();
        for_row_chunks(&mut out, width, |_, rows| {
            for row in rows.chunks_exact_mut(width) {
                row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let width = b.elem_count();
        let sums = with_host(grad, self.name(), |g| {
            let per_part = rows_per_chunk(width);
            Ok(run_parts(g.chunks(per_part * width), per_part, width, 1, |_, rows, sums| {
                for row in rows.chunks_exact(width) {
                    sums[0].iter_mut().zip(row).for_each(|(s, g)| *s += g);
                }
            }))
        })?;
        let grad_b = Tensor::from_vec(sums.into_iter().next().unwrap_or_default(), b.shape(), b.device())?;
        Ok((Some(grad.clone()), Some(grad_b)))
    }
}

/// `x + b`, `b` a vector as long as `x`'s last dimension.
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() { x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd) } else { x.broadcast_add(b) }
}

/// Layer normalisation over the last dimension, with a scale and a shift.
struct LayerNormOp {
    eps: f32,
}

/// Mean and reciprocal standard deviation of a row (two passes, as PyTorch).
fn row_moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let variance = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
    (mean, 1.0 / (variance + eps).sqrt())
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = cpu_slice(s1, l1, self.name())?;
        let gamma = cpu_slice(s2, l2, self.name())?;
        let beta = cpu_slice(s3, l3, self.name())?;
        let width = last_dim(l1)?;
        if gamma.len() != width || beta.len() != width {
            bail!("layer-norm: scale/shift of {}/{} for rows of {width}", gamma.len(), beta.len());
        }
        let mut out = vec![0f32; x.len()];
        for_row_chunks(&mut out, width, |first, rows| {
            for (i, row) in rows.chunks_exact_mut(width).enumerate() {
                let input = &x[(first + i) * width..(first + i + 1) * width];
                let (mean, rstd) = row_moments(input, self.eps);
                for (((y, x), g), b) in row.iter_mut().zip(input).zip(gamma).zip(beta) {
                    *y = (x - mean) * rstd * g + b;
                }
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let width = gamma.elem_count();
        let name = self.name();
        let (dx, sums) = with_host(x, name, |x| {
            with_host(gamma, name, |gamma| {
                with_host(grad, name, |g| {
                    let mut dx = vec![0f32; x.len()];
                    let sums = for_row_chunks_summing(&mut dx, width, 2, |first, rows, sums| {
                        let mut scaled = vec![0f32; width];
                        for (i, dx_row) in rows.chunks_exact_mut(width).enumerate() {
                            let span = (first + i) * width..(first + i + 1) * width;
                            let (input, g_row) = (&x[span.clone()], &g[span]);
                            let (mean, rstd) = row_moments(input, self.eps);
                            let (mut mean_scaled, mut mean_scaled_xhat) = (0f32, 0f32);
                            for j in 0..width {
                                let xhat = (input[j] - mean) * rstd;
                                scaled[j] = g_row[j] * gamma[j];
                                mean_scaled += scaled[j];
                                mean_scaled_xhat += scaled[j] * xhat;
                                sums[0][j] += g_row[j] * xhat;
                                sums[1][j] += g_row[j];
                            }
                            mean_scaled /= width as f32;
                            mean_scaled_xhat /= width as f32;
                            for j in 0..width {
                                let xhat = (input[j] - mean) * rstd;
                                dx_row[j] = rstd * (scaled[j] - mean_scaled - xhat * mean_scaled_xhat);
                            }
                        }
                    });
                    Ok((dx, sums))
                })
            })
        })?;
        let mut sums = sums.into_iter();
        let mut vector = |t: &Tensor| Tensor::from_vec(sums.next().unwrap_or_default(), t.shape(), t.device());
        let dgamma = vector(gamma)?;
        let dbeta = vector(beta)?;
        Ok((Some(Tensor::from_vec(dx, x.shape(), x.device())?), Some(dgamma), Some(dbeta)))
    }
}

/// Layer normalisation of `x` over its last dimension.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, LayerNormOp { eps: eps as f32 })
    } else {
        composed::layer_norm(x, gamma, beta, eps)
    }
}

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
            for (i, row) in rows.chunks_exact_mut(keys).enumerate() {
                let r = first + i;
                let key_bias = &bias[(r / rows_per_sequence) * keys..][..keys];
                let input = &scores[r * keys..(r + 1) * keys];
                let mut max = f32::NEG_INFINITY;
                for ((y, s), b) in row.iter_mut().zip(input).zip(key_bias) {
                    *y = s * self.scale + b;
                    max = max.max(*y);
                }
                let mut sum = 0f32;
                for y in row.iter_mut() {
                    *y = (*y - max).exp();
                    sum += *y;
                }
                let inverse = 1.0 / sum;
                row.iter_mut().for_each(|y| *y *= inverse);
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
        let dx = with_host(res, name, |y| {
            with_host(grad, name, |g| {
                let mut dx = vec![0f32; y.len()];
                for_row_chunks(&mut dx, keys, |first, rows| {
                    for (i, dx_row) in rows.chunks_exact_mut(keys).enumerate() {
                        let span = (first + i) * keys..(first + i + 1) * keys;
                        let (y_row, g_row) = (&y[span.clone()], &g[span]);
                        let dot: f32 = y_row.iter().zip(g_row).map(|(y, g)| y * g).sum();
                        for ((d, y), g) in dx_row.iter_mut().zip(y_row).zip(g_row) {
                            *d = self.scale * y * (g - dot);
                        }
                    }
                });
                Ok(dx)
            })
        })?;
        Ok((Some(Tensor::from_vec(dx, scores.shape(), scores.device())?), None))
    }
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

/// erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26), branch-free but for
/// the sign, so the loops over it stay simple.
fn erf(x: f32) -> f32 {
    erf_given(x, (-x * x).exp())
}

/// [`erf`] from `exp(-x^2)` already at hand: GELU's gradient needs that
/// exponential for the normal density too.
fn erf_given(x: f32, exp_neg_square: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [0.254_829_6, -0.284_496_74, 1.421_413_7, -1.453_152_1, 1.061_405_4];
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    (1.0 - poly * exp_neg_square).copysign(x)
}

/// The exact (erf) GELU, as BERT's `hidden_act = "gelu"`.
struct GeluErf;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi)
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_slice(storage, layout, self.name())?;
        let mut out = vec![0f32; x.len()];
        for_row_chunks(&mut out, 1, |first, values| {
            for (y, x) in values.iter_mut().zip(&x[first..]) {
                *y = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let name = self.name();
        let dx = with_host(x, name, |x| {
            with_host(grad, name, |g| {
                let mut dx = vec![0f32; x.len()];
                for_row_chunks(&mut dx, 1, |first, values| {
                    for ((d, x), g) in values.iter_mut().zip(&x[first..]).zip(&g[first..]) {
                        // exp(-x^2 / 2) serves both erf(x / sqrt 2) and the density.
                        let gaussian = (-0.5 * x * x).exp();
                        let cdf = 0.5 * (1.0 + erf_given(x * FRAC_1_SQRT_2, gaussian));
                        let pdf = FRAC_1_SQRT_2PI * gaussian;
                        *d = g * (cdf + x * pdf);
                    }
                });
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

/// The exact GELU, `x * Phi(x)`.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() { x.contiguous()?.apply_op1(GeluErf) } else { x.gelu_erf() }
}

/// The same functions composed of candle's differentiable ops: the fallback
/// on devices without a fused kernel, and the reference the kernels are
/// tested against.
pub mod composed {
    use candle_core::{D, Result, Tensor};

    /// Layer normalisation over the last dimension.
    pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normalised = centred.broadcast_div(&(variance + eps)?.sqrt()?)?;
        normalised.broadcast_mul(gamma)?.broadcast_add(beta)
    }

    /// Softmax over the last dimension; the maximum is detached, which leaves
    /// the gradient unchanged since softmax is shift-invariant.
    pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
        let max = x.max_keepdim(D::Minus1)?.detach();
        let exp = x.broadcast_sub(&max)?.exp()?;
        let sum = exp.sum_keepdim(D::Minus1)?;
        exp.broadcast_div(&sum)
    }

    /// See [`super::masked_softmax`].
    pub fn masked_softmax(scores: &Tensor, key_bias: &Tensor, scale: f64) -> Result<Tensor> {
        let (batch, keys) = key_bias.dims2()?;
        softmax_last_dim(&(scores * scale)?.broadcast_add(&key_bias.reshape((batch, 1, 1, keys))?)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Var};

    use super::*;
    use crate::rng::SplitMix64;

    fn random(shape: &[usize], scale: f32, seed: u64) -> Var {
        let mut rng = SplitMix64::new(seed);
        let values: Vec<f32> = (0..shape.iter().product()).map(|_| rng.next_normal() * scale).collect();
        Var::from_vec(values, shape, &Device::Cpu).expect("var")
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .expect("sub")
            .abs()
            .expect("abs")
            .flatten_all()
            .expect("flat")
            .max(0)
            .expect("max")
            .to_scalar()
            .expect("s")
    }

    /// Check values and the gradients of a weighted sum of the outputs (so
    /// that every output element gets a different upstream gradient).
    fn check(fused: &Tensor, composed: &Tensor, inputs: &[&Var], tolerance: f32) {
        assert!(max_difference(fused, composed) < tolerance, "values differ by {}", max_difference(fused, composed));
        let weights = random(fused.dims(), 1.0, 99);
        let fused_grads = (fused * weights.as_tensor()).expect("mul").sum_all().expect("sum").backward().expect("bwd");
        let composed_grads =
            (composed * weights.as_tensor()).expect("mul").sum_all().expect("sum").backward().expect("bwd");
        for (i, input) in inputs.iter().enumerate() {
            let a = fused_grads.get(input.as_tensor()).expect("fused grad");
            let b = composed_grads.get(input.as_tensor()).expect("composed grad");
            let difference = max_difference(a, b);
            assert!(difference < tolerance, "gradient of input {i} differs by {difference}");
        }
    }

    #[test]
    fn bias_add_matches_broadcast_add() {
        // Enough rows to be split across threads.
        let x = random(&[3, 200, 96], 1.0, 1);
        let b = random(&[96], 1.0, 2);
        let fused = bias_add(x.as_tensor(), b.as_tensor()).expect("fused");
        let composed = x.as_tensor().broadcast_add(b.as_tensor()).expect("composed");
        check(&fused, &composed, &[&x, &b], 1e-4);
    }

    #[test]
    fn layer_norm_matches_composition() {
        let x = random(&[4, 300, 64], 3.0, 3);
        let gamma = random(&[64], 1.0, 4);
        let beta = random(&[64], 1.0, 5);
        let fused = layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-12).expect("fused");
        let composed =
            composed::layer_norm(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-12).expect("composed");
        check(&fused, &composed, &[&x, &gamma, &beta], 1e-4);
    }

    #[test]
    fn masked_softmax_matches_composition() {
        let (batch, heads, length) = (3, 4, 37);
        let scores = random(&[batch, heads, length, length], 2.0, 6);
        // The last sequence is padded after 20 tokens.
        let bias: Vec<f32> = (0..batch * length).map(|i| if i >= 2 * length + 20 { -1e9 } else { 0.0 }).collect();
        let bias = Tensor::from_vec(bias, (batch, length), &Device::Cpu).expect("bias");
        let scale = 0.125;
        let fused = masked_softmax(scores.as_tensor(), &bias, scale).expect("fused");
        let composed = composed::masked_softmax(scores.as_tensor(), &bias, scale).expect("composed");
        check(&fused, &composed, &[&scores], 1e-5);
        let padded = fused.get(2).expect("seq").narrow(D::Minus1, 20, length - 20).expect("pad");
        assert_eq!(padded.sum_all().expect("sum").to_scalar::<f32>().expect("s"), 0.0);
    }

    #[test]
    fn gelu_matches_candle_and_its_gradient_matches_finite_differences() {
        let x = random(&[5, 1000], 3.0, 7);
        let fused = gelu_erf(x.as_tensor()).expect("fused");
        let reference = x.as_tensor().gelu_erf().expect("candle");
        assert!(max_difference(&fused, &reference) < 1e-6, "{}", max_difference(&fused, &reference));
        let grads = fused.sum_all().expect("sum").backward().expect("bwd");
        let analytic = grads.get(x.as_tensor()).expect("grad");
        let h = 1e-2;
        let numeric = (((x.as_tensor() + h).expect("+").gelu_erf().expect("g")
            - (x.as_tensor() - h).expect("-").gelu_erf().expect("g"))
        .expect("diff")
            / (2.0 * h))
            .expect("div");
        assert!(max_difference(analytic, &numeric) < 1e-3, "{}", max_difference(analytic, &numeric));
    }

    #[test]
    fn erf_is_accurate() {
        let candle_erf = |x: f32| candle_core::cpu::erf::erf_f64(f64::from(x)) as f32;
        let worst = (-600..=600).map(|i| i as f32 / 100.0).map(|x| (erf(x) - candle_erf(x)).abs()).fold(0f32, f32::max);
        assert!(worst < 3e-7, "erf error {worst}");
    }
}
