//! Binary cross-entropy on logits with per-label positive weights.

use candle_core::{Result, Tensor};

/// Mean over examples and labels of
/// `-(w·y·log σ(x) + (1-y)·log(1-σ(x)))`, `w` the label's positive weight,
/// in the stable form `(1-y)·x + (1+(w-1)·y)·softplus(-x)` with
/// `softplus(-x) = log(1+e^{-|x|}) + max(-x, 0)`: no `log(σ(x))` is ever
/// taken, so large logits neither overflow nor give `log(0)` (candle's
/// `binary_cross_entropy_with_logit` does take it).
pub fn weighted_bce_with_logits(logits: &Tensor, targets: &Tensor, pos_weight: &Tensor) -> Result<Tensor> {
    let softplus_neg = ((logits.abs()?.neg()?.exp()? + 1.0)?.log()? + logits.neg()?.relu()?)?;
    let weight = (targets.broadcast_mul(&(pos_weight - 1.0)?)? + 1.0)?;
    let negative_part = ((targets.ones_like()? - targets)? * logits)?;
    (negative_part + (weight * softplus_neg)?)?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn naive(x: f64, y: f64, w: f64) -> f64 {
        let s = 1.0 / (1.0 + (-x).exp());
        -(w * y * s.ln() + (1.0 - y) * (1.0 - s).ln())
    }

    #[test]
    fn matches_the_definition_and_stays_finite() {
        let device = Device::Cpu;
        let xs = [[-3.0f32, 0.5], [2.0, -0.25]];
        let ys = [[1.0f32, 0.0], [0.0, 1.0]];
        let ws = [4.0f32, 1.5];
        let loss: f32 = weighted_bce_with_logits(
            &Tensor::new(&xs, &device).expect("x"),
            &Tensor::new(&ys, &device).expect("y"),
            &Tensor::new(&ws, &device).expect("w"),
        )
        .expect("loss")
        .to_scalar()
        .expect("scalar");
        let mut expected = 0.0;
        for i in 0..2 {
            for j in 0..2 {
                expected += naive(f64::from(xs[i][j]), f64::from(ys[i][j]), f64::from(ws[j]));
            }
        }
        assert!((f64::from(loss) - expected / 4.0).abs() < 1e-5, "{loss} vs {}", expected / 4.0);

        let extreme = Tensor::new(&[[200.0f32, -200.0]], &device).expect("x");
        let targets = Tensor::new(&[[0.0f32, 1.0]], &device).expect("y");
        let weights = Tensor::new(&[1.0f32, 1.0], &device).expect("w");
        let loss: f32 = weighted_bce_with_logits(&extreme, &targets, &weights).expect("loss").to_scalar().expect("s");
        assert!((loss - 200.0).abs() < 1e-3, "{loss}");
    }
}
