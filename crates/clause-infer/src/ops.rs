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
        for_row_chunks(&mut out, width, |_, rows| add_to_rows(rows, b));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let sums = with_host(grad, self.name(), |g| Ok(column_sums(g, b.elem_count())))?;
        Ok((Some(grad.clone()), Some(Tensor::from_vec(sums, b.shape(), b.device())?)))
    }
}

/// The sums of the columns of `rows`, rows of `width` elements: the
/// gradient of a bias added to every row.
fn column_sums(rows: &[f32], width: usize) -> Vec<f32> {
    let per_part = rows_per_chunk(width);
    let sums = run_parts(rows.chunks(per_part * width), per_part, width, 1, |_, rows, sums| {
        sum_rows_into(&mut sums[0], rows);
    });
    sums.into_iter().next().unwrap_or_default()
}

#[inline(always)]
fn add_to_rows_kernel(rows: &mut [f32], b: &[f32]) {
    for row in rows.chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(y, b)| *y += b);
    }
}

dispatch! {
    /// Add `b` to each row of `rows`, rows being as long as `b`.
    fn add_to_rows = add_to_rows_kernel(rows: &mut [f32], b: &[f32])
}

#[inline(always)]
fn sum_rows_into_kernel(sums: &mut [f32], rows: &[f32]) {
    for row in rows.chunks_exact(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
    }
}

dispatch! {
    /// Add each row of `rows` into `sums`, rows being as long as `sums`.
    fn sum_rows_into = sum_rows_into_kernel(sums: &mut [f32], rows: &[f32])
}

/// `x + b`, `b` a vector as long as `x`'s last dimension.
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() { x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd) } else { x.broadcast_add(b) }
}

/// A matrix for [`product_into`]: its elements in `values`, and where
/// element (i, j) lies (`i * row_stride + j * column_stride`), so that a
/// transpose is a view.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    values: &'a [f32],
    rows: usize,
    columns: usize,
    row_stride: usize,
    column_stride: usize,
}

impl<'a> Matrix<'a> {
    fn row_major(values: &'a [f32], rows: usize, columns: usize) -> Self {
        Self { values, rows, columns, row_stride: columns, column_stride: 1 }
    }

    fn t(self) -> Self {
        Self {
            rows: self.columns,
            columns: self.rows,
            row_stride: self.column_stride,
            column_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element the strides address lies in `values`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.columns == 0
            || (self.rows - 1) * self.row_stride + (self.columns - 1) * self.column_stride < self.values.len()
    }
}

/// `out = lhs rhs`, or `out += lhs rhs` when `accumulate`; `out` is row-major.
/// On rayon's thread pool, or on the calling thread under [`serially`].
fn product_into(out: &mut [f32], lhs: Matrix<'_>, rhs: Matrix<'_>, accumulate: bool) -> Result<()> {
    let (rows, columns, inner) = (lhs.rows, rhs.columns, lhs.columns);
    if rhs.rows != inner || out.len() != rows * columns || !lhs.in_bounds() || !rhs.in_bounds() {
        bail!(
            "matrix product of {}x{} by {}x{} into {} elements",
            lhs.rows,
            lhs.columns,
            rhs.rows,
            rhs.columns,
            out.len()
        );
    }
    if out.is_empty() {
        return Ok(());
    }
    if inner == 0 {
        if !accumulate {
            out.fill(0.0);
        }
        return Ok(());
    }
    let parallelism = match candle_core::utils::get_num_threads() {
        threads if threads > 1 && !is_serial() => gemm::Parallelism::Rayon(threads),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: `out` holds rows x columns elements, row-major, and is the only
    // mutable matrix; it aliases neither operand, which are shared borrows.
    // Every element the operands' strides address lies in their slices
    // (`in_bounds`), and the shapes agree (checked above). Strides fit in
    // isize since the slices exist.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            rows,
            columns,
            inner,
            out.as_mut_ptr(),
            1,
            columns as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs.column_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.column_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// `x W^T + b` over the last dimension of `x`: the bias is written first and
/// the product added onto it, with no copies of `W^T` or of a broadcast bias;
/// under [`serially`] everything runs on the calling thread.
struct LinearOp;

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "linear"
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
        let weight = cpu_slice(s2, l2, self.name())?;
        let bias = cpu_slice(s3, l3, self.name())?;
        let (outputs, inputs) = l2.shape().dims2()?;
        if last_dim(l1)? != inputs || bias.len() != outputs {
            bail!("linear: {:?} by a weight of {outputs} x {inputs} and a bias of {}", l1.shape(), bias.len());
        }
        let rows = x.len() / inputs;
        let mut out = Vec::with_capacity(rows * outputs);
        for _ in 0..rows {
            out.extend_from_slice(bias);
        }
        let weight = Matrix::row_major(weight, outputs, inputs);
        product_into(&mut out, Matrix::row_major(x, rows, inputs), weight.t(), true)?;
        let mut shape = l1.shape().dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = outputs;
        }
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (outputs, inputs) = weight.dims2()?;
        let name = self.name();
        let (dx, dweight, dbias) = with_host(x, name, |x| {
            with_host(weight, name, |w| {
                with_host(grad, name, |g| {
                    let rows = x.len() / inputs;
                    let (x, w, g) = (
                        Matrix::row_major(x, rows, inputs),
                        Matrix::row_major(w, outputs, inputs),
                        Matrix::row_major(g, rows, outputs),
                    );
                    let mut dx = vec![0f32; rows * inputs];
                    product_into(&mut dx, g, w, false)?;
                    let mut dweight = vec![0f32; outputs * inputs];
                    product_into(&mut dweight, g.t(), x, false)?;
                    Ok((dx, dweight, column_sums(g.values, outputs)))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dweight, weight.shape(), weight.device())?),
            Some(Tensor::from_vec(dbias, bias.shape(), bias.device())?),
        ))
    }
}

/// `x W^T + b` over the last dimension of `x`, on CPU: `weight` is
/// `(outputs, inputs)`, `bias` `(outputs)`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LinearOp)
}

/// Layer normalisation over the last dimension, with a scale and a shift.
struct LayerNormOp {
    eps: f32,
}

/// Mean and reciprocal standard deviation of a row (two passes, as PyTorch).
#[inline(always)]
fn row_moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut squares = [0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        squares.iter_mut().zip(chunk).for_each(|(s, x)| *s += (x - mean) * (x - mean));
    }
    let variance =
        (squares.iter().sum::<f32>() + chunks.remainder().iter().map(|x| (x - mean) * (x - mean)).sum::<f32>()) / n;
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
            layer_norm_rows(rows, &x[first * width..][..rows.len()], gamma, beta, self.eps);
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
                        let span = first * width..first * width + rows.len();
                        let [dgamma, dbeta] = sums else { return };
                        let inputs = LayerNormRows { x: &x[span.clone()], gamma, eps: self.eps };
                        layer_norm_backward_rows(rows, inputs, &g[span], dgamma, dbeta);
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

#[inline(always)]
fn layer_norm_rows_kernel(out: &mut [f32], x: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    for (row, input) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
        let (mean, rstd) = row_moments(input, eps);
        for (((y, x), g), b) in row.iter_mut().zip(input).zip(gamma).zip(beta) {
            *y = (x - mean) * rstd * g + b;
        }
    }
}

dispatch! {
    /// Normalise each row of `x` into `out`, rows being as long as `gamma`.
    fn layer_norm_rows = layer_norm_rows_kernel(out: &mut [f32], x: &[f32], gamma: &[f32], beta: &[f32], eps: f32)
}

/// The forward inputs of some rows of a layer norm, for its backward pass.
#[derive(Clone, Copy)]
struct LayerNormRows<'a> {
    x: &'a [f32],
    gamma: &'a [f32],
    eps: f32,
}

#[inline(always)]
fn layer_norm_backward_rows_kernel(
    dx: &mut [f32],
    forward: LayerNormRows<'_>,
    g: &[f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let LayerNormRows { x, gamma, eps } = forward;
    let width = gamma.len();
    let mut scaled = vec![0f32; width];
    let rows = dx.chunks_exact_mut(width).zip(x.chunks_exact(width)).zip(g.chunks_exact(width));
    for ((dx_row, input), g_row) in rows {
        let (mean, rstd) = row_moments(input, eps);
        let (mut mean_scaled, mut mean_scaled_xhat) = (0f32, 0f32);
        for j in 0..width {
            let xhat = (input[j] - mean) * rstd;
            scaled[j] = g_row[j] * gamma[j];
            mean_scaled += scaled[j];
            mean_scaled_xhat += scaled[j] * xhat;
            dgamma[j] += g_row[j] * xhat;
            dbeta[j] += g_row[j];
        }
        mean_scaled /= width as f32;
        mean_scaled_xhat /= width as f32;
        for j in 0..width {
            let xhat = (input[j] - mean) * rstd;
            dx_row[j] = rstd * (scaled[j] - mean_scaled - xhat * mean_scaled_xhat);
        }
    }
}

dispatch! {
    /// The gradient of a layer norm for some rows: `dx` from the upstream
    /// gradient `g`, and the rows' parts of the scale's and shift's gradients
    /// added into `dgamma` and `dbeta`.
    fn layer_norm_backward_rows = layer_norm_backward_rows_kernel(
        dx: &mut [f32],
        forward: LayerNormRows<'_>,
        g: &[f32],
        dgamma: &mut [f32],
        dbeta: &mut [f32],
    )
}

/// Layer normalisation of `x` over its last dimension.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, LayerNormOp { eps: eps as f32 })
    } else {
        composed::layer_norm(x, gamma, beta, eps)
    }
}

#[inline(always)]
fn residual_layer_norm_rows_kernel(
    out: &mut [f32],
    x: &[f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = gamma.len();
    let rows = out.chunks_exact_mut(width).zip(x.chunks_exact(width)).zip(residual.chunks_exact(width));
    for ((row, x), residual) in rows {
        row.iter_mut().zip(x).zip(residual).for_each(|((y, x), r)| *y = x + r);
        let (mean, rstd) = row_moments(row, eps);
        for ((y, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *y = (*y - mean) * rstd * g + b;
        }
    }
}

dispatch! {
    /// Normalise each row of `x + residual` into `out`, rows being as long
    /// as `gamma`.
    fn residual_layer_norm_rows = residual_layer_norm_rows_kernel(
        out: &mut [f32],
        x: &[f32],
        residual: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
    )
}

/// Layer normalisation of `x + residual` over the last dimension. For
/// inference on CPU (nothing to differentiate) in one pass, without the
/// sum as a tensor of its own; otherwise composed of the differentiable ops.
pub fn residual_layer_norm(x: &Tensor, residual: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let untracked = ![x, residual, gamma, beta].iter().any(|t| t.track_op());
    if !(untracked && x.device().is_cpu() && x.shape() == residual.shape()) {
        return layer_norm(&(x + residual)?, gamma, beta, eps);
    }
    let name = "residual-layer-norm";
    let out = with_host(x, name, |x_values| {
        with_host(residual, name, |r_values| {
            with_host(gamma, name, |gamma| {
                with_host(beta, name, |beta| {
                    let width = gamma.len();
                    if width == 0 || beta.len() != width || x_values.len() % width != 0 {
                        bail!("{name}: scale/shift of {}/{} for rows of {:?}", gamma.len(), beta.len(), x.dims());
                    }
                    let mut out = vec![0f32; x_values.len()];
                    for_row_chunks(&mut out, width, |first, rows| {
                        let span = first * width..first * width + rows.len();
                        residual_layer_norm_rows(
                            rows,
                            &x_values[span.clone()],
                            &r_values[span],
                            gamma,
                            beta,
                            eps as f32,
                        );
                    });
                    Ok(out)
                })
            })
        })
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
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
        let dx = with_host(res, name, |y| {
            with_host(grad, name, |g| {
                let mut dx = vec![0f32; y.len()];
                for_row_chunks(&mut dx, keys, |first, rows| {
                    let span = first * keys..first * keys + rows.len();
                    softmax_backward_rows(rows, &y[span.clone()], &g[span], keys, self.scale);
                });
                Ok(dx)
            })
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

/// The shape of a fused attention: `heads` heads of `head_dim` over
/// sequences of `length` tokens.
#[derive(Clone, Copy)]
struct AttentionShape {
    length: usize,
    heads: usize,
    head_dim: usize,
    scale: f32,
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

#[inline(always)]
fn attention_rows_kernel<const FUSED: bool>(
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

/// erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26), branch-free but for
/// the sign, so the loops over it stay simple.
#[inline(always)]
fn erf(x: f32) -> f32 {
    erf_given(x, exp(-x * x))
}

/// [`erf`] from `exp(-x^2)` already at hand: GELU's gradient needs that
/// exponential for the normal density too.
#[inline(always)]
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
        for_row_chunks(&mut out, 1, |first, values| gelu_values(values, &x[first..]));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let name = self.name();
        let dx = with_host(x, name, |x| {
            with_host(grad, name, |g| {
                let mut dx = vec![0f32; x.len()];
                for_row_chunks(&mut dx, 1, |first, values| gelu_backward_values(values, &x[first..], &g[first..]));
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}

#[inline(always)]
fn gelu_values_kernel(out: &mut [f32], x: &[f32]) {
    for (y, x) in out.iter_mut().zip(x) {
        *y = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
    }
}

dispatch! {
    /// GELU of `x` into `out`, as far as `out` goes.
    fn gelu_values = gelu_values_kernel(out: &mut [f32], x: &[f32])
}

#[inline(always)]
fn gelu_backward_values_kernel(dx: &mut [f32], x: &[f32], g: &[f32]) {
    for ((d, x), g) in dx.iter_mut().zip(x).zip(g) {
        // exp(-x^2 / 2) serves both erf(x / sqrt 2) and the density.
        let gaussian = exp(-0.5 * x * x);
        let cdf = 0.5 * (1.0 + erf_given(x * FRAC_1_SQRT_2, gaussian));
        let pdf = FRAC_1_SQRT_2PI * gaussian;
        *d = g * (cdf + x * pdf);
    }
}

dispatch! {
    /// GELU's gradient at `x` times the upstream gradient `g`, into `dx`.
    fn gelu_backward_values = gelu_backward_values_kernel(dx: &mut [f32], x: &[f32], g: &[f32])
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
    fn linear_matches_matmul_in_parallel_and_serially() {
        let x = random(&[3, 70, 48], 1.0, 11);
        let weight = random(&[40, 48], 1.0, 12);
        let bias = random(&[40], 1.0, 13);
        let reference = x
            .as_tensor()
            .broadcast_matmul(&weight.as_tensor().t().expect("t"))
            .and_then(|p| p.broadcast_add(bias.as_tensor()))
            .expect("reference");
        let parallel = linear(x.as_tensor(), weight.as_tensor(), bias.as_tensor()).expect("parallel");
        assert_eq!(parallel.dims(), [3, 70, 40]);
        check(&parallel, &reference, &[&x, &weight, &bias], 1e-4);
        // The backward pass runs under `serially` too, as a training thread
        // runs it.
        serially(|| {
            let serial = linear(x.as_tensor(), weight.as_tensor(), bias.as_tensor()).expect("serial");
            check(&serial, &reference, &[&x, &weight, &bias], 1e-4);
        });
        assert!(!is_serial(), "serially restores the flag");
    }

    #[test]
    fn product_into_refuses_shapes_that_disagree() {
        let values = [1f32; 6];
        let a = Matrix::row_major(&values, 2, 3);
        let mut out = [0f32; 4];
        assert!(product_into(&mut out, a, a, false).is_err(), "2x3 by 2x3");
        assert!(product_into(&mut out, a, a.t(), false).is_ok());
        assert_eq!(out, [3.0; 4]);
        product_into(&mut out, a, a.t(), true).expect("accumulate");
        assert_eq!(out, [6.0; 4]);
        let too_long = Matrix { rows: 3, ..a };
        assert!(product_into(&mut [0f32; 6], too_long, a.t(), false).is_err(), "reads past the values");
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
    fn residual_layer_norm_matches_the_sum_then_the_norm() {
        let x = random(&[3, 50, 64], 2.0, 21).as_tensor().detach();
        let residual = random(&[3, 50, 64], 2.0, 22).as_tensor().detach();
        let gamma = random(&[64], 1.0, 23).as_tensor().detach();
        let beta = random(&[64], 1.0, 24).as_tensor().detach();
        let fused = residual_layer_norm(&x, &residual, &gamma, &beta, 1e-12).expect("fused");
        let sum = (&x + &residual).expect("sum");
        let composed = composed::layer_norm(&sum, &gamma, &beta, 1e-12).expect("composed");
        assert!(max_difference(&fused, &composed) < 1e-5, "{}", max_difference(&fused, &composed));
        let serial = serially(|| residual_layer_norm(&x, &residual, &gamma, &beta, 1e-12)).expect("serial");
        assert!(max_difference(&serial, &composed) < 1e-5, "{}", max_difference(&serial, &composed));
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
    fn fused_attention_matches_the_composed_heads() {
        // The second sequence is padded after 20 tokens, any later ones
        // after 5 (a sequence always has a token: [CLS]). With 2 sequences, parts are 32 rows and start inside a
        // sequence; with 9, a part is a sequence. 3 heads of 20 dimensions
        // make a register block of 8 and a remainder.
        for batch in [2, 9] {
            check_fused_attention(batch, 37, 3, 20);
        }
        // Blocks of 32 keys and 32 dimensions, as in MiniLM and BERT.
        check_fused_attention(3, 71, 2, 40);
    }

    fn check_fused_attention(batch: usize, length: usize, heads: usize, head_dim: usize) {
        let hidden = heads * head_dim;
        let qkv = random(&[batch, length, 3 * hidden], 1.5, 8);
        let tokens = |sequence: usize| match sequence {
            0 => length,
            1 => 20,
            _ => 5,
        };
        let bias: Vec<f32> =
            (0..batch * length).map(|i| if i % length >= tokens(i / length) { -1e4 } else { 0.0 }).collect();
        let bias = Tensor::from_vec(bias, (batch, length), &Device::Cpu).expect("bias");
        let scale = 1.0 / (head_dim as f64).sqrt();
        let fused = attention(qkv.as_tensor(), &bias, heads, scale).expect("fused");
        let split = qkv
            .as_tensor()
            .reshape((batch, length, 3, heads, head_dim))
            .and_then(|t| t.permute((2, 0, 3, 1, 4)))
            .and_then(|t| t.contiguous())
            .expect("split");
        let (q, k, v) = (split.get(0).expect("q"), split.get(1).expect("k"), split.get(2).expect("v"));
        let scores = q.matmul(&k.t().expect("t")).expect("scores");
        let probs = composed::masked_softmax(&scores, &bias, scale).expect("probs");
        let composed = probs
            .matmul(&v)
            .and_then(|c| c.transpose(1, 2))
            .and_then(|c| c.reshape((batch, length, hidden)))
            .expect("context");
        let difference = max_difference(&fused, &composed);
        assert!(difference < 1e-5, "fused attention differs by {difference} (batch {batch})");
        // The build without AVX2 and FMA, which this machine may not run
        // through the dispatch.
        let shape = AttentionShape { length, heads, head_dim, scale: scale as f32 };
        let mut narrow = vec![0f32; batch * length * hidden];
        let qkv_values = qkv.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("qkv");
        let bias_values = bias.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("bias");
        attention_rows_kernel::<false>(&mut narrow, &qkv_values, &bias_values, 0, shape);
        let narrow = Tensor::from_vec(narrow, (batch, length, hidden), &Device::Cpu).expect("narrow");
        let difference = max_difference(&narrow, &composed);
        assert!(difference < 1e-5, "narrow attention differs by {difference} (batch {batch})");
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
    fn exp_is_accurate_and_zero_below_the_normal_range() {
        let mut worst = 0f32;
        for i in -87_000..=88_000 {
            let x = i as f32 / 1000.0 + 0.000_37;
            let exact = f64::from(x).exp();
            worst = worst.max(((f64::from(exp(x)) - exact) / exact).abs() as f32);
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        for x in [-87.4, -1e4, -1e9, f32::NEG_INFINITY] {
            assert_eq!(exp(x), 0.0, "{x}");
        }
        assert!(exp(88.3).is_finite());
    }

    #[test]
    fn erf_is_accurate() {
        let candle_erf = |x: f32| candle_core::cpu::erf::erf_f64(f64::from(x)) as f32;
        let worst = (-600..=600).map(|i| i as f32 / 100.0).map(|x| (erf(x) - candle_erf(x)).abs()).fold(0f32, f32::max);
        assert!(worst < 3e-7, "erf error {worst}");
    }
}
