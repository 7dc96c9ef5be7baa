//! The one rule that turns a label's probability into a flag. Training
//! (threshold tuning and metrics), `clause eval`, `classify`, `report`,
//! `diff` and `serve` all decide through it, so a figure measured in one
//! place is the behaviour seen in another.

/// Whether a label scored `probability` is flagged at `threshold`: when the
/// probability reaches the threshold. A NaN probability is never flagged,
/// whatever the threshold: a broken score is no evidence of a label.
pub fn flags(probability: f32, threshold: f32) -> bool {
    !probability.is_nan() && probability >= threshold
}

/// Indices of the labels of one row whose probability reaches its
/// threshold. A label without a threshold (a row longer than `thresholds`)
/// is never flagged.
pub fn flagged(probabilities: &[f32], thresholds: &[f32]) -> Vec<usize> {
    probabilities.iter().zip(thresholds).enumerate().filter(|(_, (p, t))| flags(**p, **t)).map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_flagged_at_or_above_its_own_threshold() {
        assert_eq!(flagged(&[0.4, 0.2, 0.9], &[0.3, 0.5, 0.9]), [0, 2]);
        assert_eq!(flagged(&[0.9, 0.9], &[0.5]), [0], "no threshold, no flag");
    }

    #[test]
    fn nan_is_never_flagged_even_at_threshold_zero() {
        assert!(!flags(f32::NAN, 0.0));
        assert!(flags(0.0, 0.0));
        assert_eq!(flagged(&[f32::NAN, 0.0], &[0.0, 0.0]), [1]);
    }
}
