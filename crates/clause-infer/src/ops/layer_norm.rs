//! Layer normalisation (and, for inference, of a residual sum), with its
//! backward pass.

use super::*;

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
        let (dx, sums) = with_hosts([x, gamma, grad], name, |[x, gamma, g]| {
            let mut dx = vec![0f32; x.len()];
            let sums = for_row_chunks_summing(&mut dx, width, 2, |first, rows, sums| {
                let span = first * width..first * width + rows.len();
                let [dgamma, dbeta] = sums else { return };
                let inputs = LayerNormRows { x: &x[span.clone()], gamma, eps: self.eps };
                layer_norm_backward_rows(rows, inputs, &g[span], dgamma, dbeta);
            });
            Ok((dx, sums))
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
    let out = with_hosts([x, residual, gamma, beta], name, |[x_values, r_values, gamma, beta]| {
        let width = gamma.len();
        if width == 0 || beta.len() != width || x_values.len() % width != 0 {
            bail!("{name}: scale/shift of {}/{} for rows of {:?}", gamma.len(), beta.len(), x.dims());
        }
        let mut out = vec![0f32; x_values.len()];
        for_row_chunks(&mut out, width, |first, rows| {
            let span = first * width..first * width + rows.len();
            residual_layer_norm_rows(rows, &x_values[span.clone()], &r_values[span], gamma, beta, eps as f32);
        });
        Ok(out)
    })?;
    Tensor::from_vec(out, x.shape(), x.device())
}
