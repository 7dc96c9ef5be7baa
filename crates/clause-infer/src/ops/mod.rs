//! Fused CPU kernels, each with a hand-written backward pass.
//!
//! Composed of candle's generic ops, one BERT training step spent most of its
//! time outside matrix multiplication: every broadcast allocates, and the
//! backward pass of a broadcast sums over leading dimensions with a strided
//! loop. These kernels do each step in one pass over contiguous rows, split
//! across rayon's thread pool. They run on CPU tensors only; the model
//! falls back to the composed ops on other devices, and the tests check the
//! two against each other, values and gradients.

use std::cell::Cell;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor, bail};

thread_local! {
    /// Set on threads that each run a whole forward pass of their own (see
    /// [`serially`]): the kernels then stay on the calling thread.
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

fn is_serial() -> bool {
    SERIAL.with(Cell::get)
}

/// Run `f` with this module's kernels, and inference matrix products, on the
/// calling thread only. For data parallelism: threads that each run their
/// own forward passes side by side use the cores better than one pass at a
/// time split across them, whose small steps each wait for every thread.
pub fn serially<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.with(|serial| serial.replace(true));
    let result = f();
    SERIAL.with(|serial| serial.set(before));
    result
}

/// Rows per parallel work item: about 16k elements, enough to amortise the
/// hand-off and small enough to balance two to sixteen threads.
fn rows_per_chunk(width: usize) -> usize {
    (16_384 / width.max(1)).max(1)
}

/// A part of the rows: its first row, its elements and its accumulators.
type Part<P> = Mutex<(usize, P, Vec<Vec<f32>>)>;

/// Run `f(first_row, part, sums)` over `parts` (consecutive chunks of
/// `rows_per_part` rows, mutable or not), in parallel on rayon's pool;
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
        n if is_serial() => (0..n).for_each(run),
        n => {
            use rayon::prelude::*;
            (0..n).into_par_iter().for_each(run);
        }
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

/// Whether this processor has AVX2 and FMA (checked once, then cached by
/// the standard library).
#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// `fn $name(args)` that runs the `#[inline(always)]` kernel `$kernel`
/// compiled for AVX2 and FMA where the processor has them, and as built
/// otherwise. The kernels are plain loops that the compiler vectorises; a
/// portable x86-64 build may only use SSE2 (4 lanes, no fused multiply-add)
/// where these give 8 lanes and FMA. The kernel is inlined into a copy built
/// with those features, so its loops are too.
macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident = $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        dispatch! { $(#[$doc])* fn $name = $kernel[][]($($arg: $ty),*) }
    };
    // `wide` and `narrow`: generic arguments of the kernel in each build.
    ($(#[$doc:meta])* fn $name:ident = $kernel:ident[$($wide:tt)*][$($narrow:tt)*]($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) {
                    $kernel$($wide)*($($arg),*)
                }
                if has_avx2_fma() {
                    // SAFETY: the processor has the features `wide` is
                    // compiled for, checked just above.
                    #[allow(unsafe_code)]
                    return unsafe { wide($($arg),*) };
                }
            }
            $kernel$($narrow)*($($arg),*)
        }
    };
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

/// Run `f(offset, part)` over parts of `values`, in parallel on rayon's
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
    with_hosts([tensor], op, |[values]| f(values))
}

/// Call `f` with the f32 contents of several CPU tensors at once: the
/// preamble of every backward pass, which reads its inputs and the gradient
/// side by side.
pub fn with_hosts<R, const N: usize>(
    tensors: [&Tensor; N],
    op: &str,
    f: impl FnOnce([&[f32]; N]) -> Result<R>,
) -> Result<R> {
    let contiguous = tensors.map(Tensor::contiguous);
    let mut owned = Vec::with_capacity(N);
    for tensor in contiguous {
        owned.push(tensor?);
    }
    let guards: Vec<_> = owned.iter().map(Tensor::storage_and_layout).collect();
    let mut values = Vec::with_capacity(N);
    for (storage, layout) in &guards {
        match &**storage {
            Storage::Cpu(cpu) => values.push(cpu_slice(cpu, layout, op)?),
            _ => bail!("{op}: expected a CPU tensor"),
        }
    }
    let values: [&[f32]; N] = values.try_into().map_err(|_| candle_core::Error::msg(format!("{op}: tensor count")))?;
    f(values)
}

fn last_dim(layout: &Layout) -> Result<usize> {
    layout.shape().dims().last().copied().filter(|&n| n > 0).ok_or_else(|| candle_core::Error::msg("empty last dim"))
}

/// e^x to within 2 ulp where it is a normal number, and 0 below that
/// (softmax masks with large negative numbers). libm's `expf` is a call per
/// element; this is branch-free arithmetic that the compiler vectorises in
/// the loops of softmax and GELU. Cephes' `expf`: x = n ln 2 + r, a degree-6
/// polynomial for e^r, and 2^n put into the exponent bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOWEST: f32 = -87.3; // e^LOWEST is just above the smallest normal f32.
    const HIGHEST: f32 = 88.3; // e^HIGHEST is just below f32::MAX.
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer
    // without the SSE4.1 rounding instruction.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let clamped = x.clamp(LOWEST, HIGHEST);
    let n = (clamped * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = clamped - n * LN2_HIGH - n * LN2_LOW;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    let two_to_n = f32::from_bits(((n as i32 + 127) << 23) as u32);
    if x < LOWEST { 0.0 } else { e_r * two_to_n }
}

/// The sum of `values` in eight interleaved partial sums, which vectorise
/// (a single running sum is a chain of dependent additions).
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut partial = [0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        partial.iter_mut().zip(chunk).for_each(|(p, v)| *p += v);
    }
    partial.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
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

mod attention;
mod gelu;
mod layer_norm;
mod linear;
mod softmax;
#[cfg(test)]
mod tests;

pub use attention::attention;
pub use gelu::gelu_erf;
pub use layer_norm::{layer_norm, residual_layer_norm};
pub use linear::{bias_add, linear};
pub use softmax::masked_softmax;
