//! Learning-rate schedule: linear warm-up, then linear decay to zero.

/// The learning rate at optimizer step `step` (0-based) of `total`.
pub fn linear_warmup_decay(peak: f64, step: usize, total: usize, warmup: usize) -> f64 {
    if total == 0 {
        return peak;
    }
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    let span = total.saturating_sub(warmup).max(1) as f64;
    peak * (remaining / span).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays() {
        let lr: Vec<f64> = (0..10).map(|s| linear_warmup_decay(1.0, s, 10, 2)).collect();
        assert_eq!(lr[0], 0.5);
        assert_eq!(lr[1], 1.0);
        assert_eq!(lr[2], 1.0);
        assert!(lr.windows(2).skip(2).all(|w| w[1] < w[0]));
        assert!(lr[9] > 0.0 && lr[9] <= 0.125 + 1e-12);
        assert_eq!(linear_warmup_decay(1.0, 0, 10, 0), 1.0);
    }
}
