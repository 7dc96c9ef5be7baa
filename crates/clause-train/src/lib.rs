//! Fine-tune a pretrained encoder into a multi-label clause classifier.
//!
//! The training loop arrives with the training issue. What is here is the
//! class weighting that loop needs: rare labels are the point of this
//! project, and an unweighted loss lets a model ignore them.

/// Per-label `pos_weight` for binary cross-entropy: negatives / positives in
/// the training split, capped at `cap` so a label with a handful of examples
/// does not dominate the loss. A label with no positives gets `cap`.
pub fn pos_weights(positives: &[usize], examples: usize, cap: f32) -> Vec<f32> {
    positives
        .iter()
        .map(|&p| {
            if p == 0 {
                return cap;
            }
            let negatives = examples.saturating_sub(p) as f32;
            (negatives / p as f32).clamp(1.0, cap)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_ratio_capped_and_at_least_one() {
        let w = pos_weights(&[10, 1, 60, 0], 100, 30.0);
        assert_eq!(w, vec![9.0, 30.0, 1.0, 30.0]);
    }
}
