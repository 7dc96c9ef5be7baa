//! Scores that mean what they say: per-label Platt scaling, and the bands a
//! reviewer reads probabilities in.
//!
//! A fine-tuned classifier's sigmoid outputs are not probabilities. Training
//! weights positives up (`pos_weight`) and draws only some label-less
//! examples per epoch, so scores run high: on unseen treaties, labels scored
//! 0.50–0.80 were right about a quarter of the time. [`Platt`] maps a score
//! `p` to `σ(slope · logit(p) + intercept)`, fitted on scores of examples
//! the model did not train on, drawn as they come (validation or
//! out-of-fold), which also undoes the shift of the label prior that
//! drawing fewer negatives made. The map is increasing, so it reorders
//! nothing: ranking figures are unchanged, and a threshold on calibrated
//! scores flags what the matching threshold on raw ones did.

use serde::{Deserialize, Serialize};

/// Scores are clamped this far inside (0, 1) before the logit.
const EPSILON: f64 = 1e-6;

/// Positives a label needs in the fitting data for a fit of its own;
/// labels with fewer share one fit over all labels' scores.
pub const MIN_POSITIVES_FOR_OWN_FIT: usize = 8;

/// One label's map from raw score to probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Multiplies the score's logit; below 1 softens overconfident scores.
    pub slope: f64,
    /// Added to the logit; negative where scores ran high.
    pub intercept: f64,
}

impl Platt {
    /// The calibrated probability of raw score `p`. NaN stays NaN, so that
    /// the decision rule still never flags it.
    pub fn apply(&self, p: f32) -> f32 {
        if p.is_nan() {
            return p;
        }
        sigmoid(self.slope * logit(f64::from(p)) + self.intercept) as f32
    }

    /// Fit to `(score, truth)` pairs by maximum likelihood, with Platt's
    /// smoothed targets (`(n₊ + 1) / (n₊ + 2)` for positives, `1 / (n₋ + 2)`
    /// for negatives) so that separable data does not drive the slope to
    /// infinity. `None` when there is nothing to fit (no pairs, or only one
    /// class) or the fit does not settle. NaN scores are left out.
    pub fn fit(scores: &[f32], truth: &[bool]) -> Option<Self> {
        let pairs: Vec<(f64, bool)> =
            scores.iter().zip(truth).filter(|(p, _)| !p.is_nan()).map(|(&p, &t)| (logit(f64::from(p)), t)).collect();
        let positives = pairs.iter().filter(|(_, t)| *t).count();
        let negatives = pairs.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let high = (positives as f64 + 1.0) / (positives as f64 + 2.0);
        let low = 1.0 / (negatives as f64 + 2.0);
        let targets: Vec<(f64, f64)> = pairs.iter().map(|&(z, t)| (z, if t { high } else { low })).collect();
        newton(&targets)
    }
}

/// Newton's method on the two parameters of the logistic log-loss, from
/// the identity map, halving a step that does not lower the loss.
fn newton(targets: &[(f64, f64)]) -> Option<Platt> {
    let loss = |a: f64, b: f64| -> f64 {
        targets
            .iter()
            .map(|&(z, y)| {
                let s = a * z + b;
                // log(1 + e^s) - y s, computed stably.
                s.max(0.0) + (-s.abs()).exp().ln_1p() - y * s
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut current = loss(a, b);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(z, y) in targets {
            let p = sigmoid(a * z + b);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += (p - y) * z;
            gb += p - y;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        // A small ridge keeps the Hessian invertible when all scores are equal.
        let (haa, hbb) = (haa + 1e-9, hbb + 1e-9);
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-6 {
            let (na, nb) = (a - step * da, b - step * db);
            let next = loss(na, nb);
            if next <= current {
                (a, b, current, improved) = (na, nb, next, true);
                break;
            }
            step /= 2.0;
        }
        if !improved || (da.abs() + db.abs()) * step < 1e-10 {
            break;
        }
    }
    (a.is_finite() && b.is_finite() && a > 0.0).then_some(Platt { slope: a, intercept: b })
}

/// One [`Platt`] map per label (`probabilities[example][label]`): a
/// label's own where it has at least [`MIN_POSITIVES_FOR_OWN_FIT`]
/// positives and negatives, else one fitted on all labels' scores pooled.
/// `None` for a label where no fit is possible, which leaves its scores as
/// they are.
pub fn fit_per_label(probabilities: &[Vec<f32>], truth: &[Vec<bool>]) -> Vec<Option<Platt>> {
    let labels = truth.first().map_or(0, Vec::len);
    let pooled_scores: Vec<f32> = probabilities.iter().flatten().copied().collect();
    let pooled_truth: Vec<bool> = truth.iter().flatten().copied().collect();
    let pooled = Platt::fit(&pooled_scores, &pooled_truth);
    (0..labels)
        .map(|j| {
            let scores: Vec<f32> = probabilities.iter().map(|row| row[j]).collect();
            let column: Vec<bool> = truth.iter().map(|row| row[j]).collect();
            let positives = column.iter().filter(|&&t| t).count();
            let enough =
                positives >= MIN_POSITIVES_FOR_OWN_FIT && column.len() - positives >= MIN_POSITIVES_FOR_OWN_FIT;
            if enough { Platt::fit(&scores, &column).or(pooled) } else { pooled }
        })
        .collect()
}

/// Apply each label's map (where it has one) to every row.
pub fn apply_per_label(probabilities: &mut [Vec<f32>], maps: &[Option<Platt>]) {
    for row in probabilities {
        for (p, map) in row.iter_mut().zip(maps) {
            if let Some(map) = map {
                *p = map.apply(*p);
            }
        }
    }
}

/// The score bands a reviewer reads: "possible", "likely", "near certain".
pub const REVIEW_BANDS: [(f64, f64); 3] = [(0.50, 0.80), (0.80, 0.95), (0.95, 1.0)];

/// How often scores in one band are right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Lower edge (inclusive).
    pub low: f64,
    /// Upper edge (exclusive, except 1.0, which is included).
    pub high: f64,
    /// (example, label) pairs scored in the band.
    pub count: usize,
    /// Their mean score; NaN when the band is empty.
    pub mean_score: f64,
    /// The share of them that carry the label; NaN when the band is empty.
    pub share_true: f64,
}

/// [`Band`]s of `probabilities` against `truth`, pooling the labels.
pub fn bands(probabilities: &[Vec<f32>], truth: &[Vec<bool>], edges: &[(f64, f64)]) -> Vec<Band> {
    edges
        .iter()
        .map(|&(low, high)| {
            let (mut count, mut sum, mut hits) = (0usize, 0.0f64, 0usize);
            for (row, truth_row) in probabilities.iter().zip(truth) {
                for (&p, &t) in row.iter().zip(truth_row) {
                    let p = f64::from(p);
                    if p >= low && (p < high || (high >= 1.0 && p <= 1.0)) {
                        count += 1;
                        sum += p;
                        hits += usize::from(t);
                    }
                }
            }
            let n = count as f64;
            Band { low, high, count, mean_score: sum / n, share_true: hits as f64 / n }
        })
        .collect()
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(EPSILON, 1.0 - EPSILON);
    (p / (1.0 - p)).ln()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores whose truth is drawn so that the share of positives at score
    /// s is `true_share(s)`: deterministic, many per score.
    fn sample(true_share: impl Fn(f64) -> f64) -> (Vec<f32>, Vec<bool>) {
        let (mut scores, mut truth) = (Vec::new(), Vec::new());
        for k in 1..20 {
            let s = k as f64 / 20.0;
            let positives = (true_share(s) * 200.0).round() as usize;
            for i in 0..200 {
                scores.push(s as f32);
                truth.push(i < positives);
            }
        }
        (scores, truth)
    }

    #[test]
    fn scores_that_are_already_probabilities_keep_nearly_the_identity() {
        let (scores, truth) = sample(|s| s);
        let map = Platt::fit(&scores, &truth).expect("fit");
        assert!((map.slope - 1.0).abs() < 0.05 && map.intercept.abs() < 0.05, "{map:?}");
    }

    #[test]
    fn scores_that_run_high_are_brought_down_to_their_hit_rate() {
        // True share is sigmoid(0.5 logit(s) - 1): scores overconfident and high.
        let (scores, truth) = sample(|s| sigmoid(0.5 * logit(s) - 1.0));
        let map = Platt::fit(&scores, &truth).expect("fit");
        assert!((map.slope - 0.5).abs() < 0.05 && (map.intercept + 1.0).abs() < 0.05, "{map:?}");
        let calibrated: Vec<Vec<f32>> = scores.iter().map(|&s| vec![map.apply(s)]).collect();
        let truth_rows: Vec<Vec<bool>> = truth.iter().map(|&t| vec![t]).collect();
        let raw_rows: Vec<Vec<f32>> = scores.iter().map(|&s| vec![s]).collect();
        let gap = |rows: &[Vec<f32>]| {
            bands(rows, &truth_rows, &REVIEW_BANDS)
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| (b.mean_score - b.share_true).abs())
                .fold(0.0, f64::max)
        };
        assert!(gap(&raw_rows) > 0.3 && gap(&calibrated) < 0.05, "{} {}", gap(&raw_rows), gap(&calibrated));
        // Increasing: the order of scores is kept.
        assert!(map.apply(0.3) < map.apply(0.6) && map.apply(0.6) < map.apply(0.9));
        assert!(map.apply(f32::NAN).is_nan());
    }

    #[test]
    fn separable_or_one_class_data_stays_finite_or_has_no_fit() {
        let scores = [0.1f32, 0.2, 0.8, 0.9];
        let map = Platt::fit(&scores, &[false, false, true, true]).expect("fit");
        assert!(map.slope.is_finite() && map.slope > 0.0);
        assert!(map.apply(0.9) < 1.0 && map.apply(0.1) > 0.0);
        assert_eq!(Platt::fit(&scores, &[true; 4]), None);
        assert_eq!(Platt::fit(&[], &[]), None);
        assert_eq!(Platt::fit(&[f32::NAN, 0.5], &[true, false]), None);
    }

    #[test]
    fn rare_labels_share_the_pooled_fit() {
        let (scores, truth) = sample(|s| sigmoid(0.5 * logit(s) - 1.0));
        // Label 0 as sampled; label 1 with one positive only.
        let probabilities: Vec<Vec<f32>> = scores.iter().map(|&s| vec![s, s]).collect();
        let rows: Vec<Vec<bool>> = truth.iter().enumerate().map(|(i, &t)| vec![t, i == 0]).collect();
        let maps = fit_per_label(&probabilities, &rows);
        let pooled_scores: Vec<f32> = probabilities.iter().flatten().copied().collect();
        let pooled_truth: Vec<bool> = rows.iter().flatten().copied().collect();
        assert_eq!(maps[1], Platt::fit(&pooled_scores, &pooled_truth));
        assert_ne!(maps[0], maps[1]);
        let mut calibrated = probabilities.clone();
        apply_per_label(&mut calibrated, &maps);
        assert_eq!(calibrated[5][0], maps[0].expect("fit").apply(probabilities[5][0]));
    }

    #[test]
    fn bands_count_their_pairs_and_include_one() {
        let probabilities = vec![vec![0.55, 1.0], vec![0.85, 0.2], vec![0.97, 0.79]];
        let truth = vec![vec![false, true], vec![true, false], vec![true, true]];
        let bands = bands(&probabilities, &truth, &REVIEW_BANDS);
        assert_eq!(bands.iter().map(|b| b.count).collect::<Vec<_>>(), [2, 1, 2]);
        assert!((bands[0].share_true - 0.5).abs() < 1e-9);
        assert!((bands[2].mean_score - 0.985).abs() < 1e-6);
    }
}
