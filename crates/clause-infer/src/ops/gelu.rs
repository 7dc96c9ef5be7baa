//! GELU (the erf form BERT uses), with its backward pass.

use super::*;

/// erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26), branch-free but for
/// the sign, so the loops over it stay simple.
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
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
        let dx = with_hosts([x, grad], name, |[x, g]| {
            let mut dx = vec![0f32; x.len()];
            for_row_chunks(&mut dx, 1, |first, values| gelu_backward_values(values, &x[first..], &g[first..]));
            Ok(dx)
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
