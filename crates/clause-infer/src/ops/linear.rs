//! Linear layers (`x W^T + b`) and bias additions, with their backward
//! passes; the matrix products are the `gemm` crate's.

use super::*;

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
pub(super) struct Matrix<'a> {
    pub(super) values: &'a [f32],
    pub(super) rows: usize,
    pub(super) columns: usize,
    pub(super) row_stride: usize,
    pub(super) column_stride: usize,
}

impl<'a> Matrix<'a> {
    pub(super) fn row_major(values: &'a [f32], rows: usize, columns: usize) -> Self {
        Self { values, rows, columns, row_stride: columns, column_stride: 1 }
    }

    pub(super) fn t(self) -> Self {
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
pub(super) fn product_into(out: &mut [f32], lhs: Matrix<'_>, rhs: Matrix<'_>, accumulate: bool) -> Result<()> {
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
        let (dx, dweight, dbias) = with_hosts([x, weight, grad], name, |[x, w, g]| {
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
