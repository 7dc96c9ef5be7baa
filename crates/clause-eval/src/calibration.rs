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
//! drawing fewer negatives made. Alone, the map is increasing, so it
//! reorders nothing: ranking figures are unchanged, and a threshold on
//! calibrated scores flags what the matching threshold on raw ones did.
//!
//! A model with a lexical stage (`clause_infer::lexical`) adds its margin
//! `m` for the label: `σ(slope · logit(p) + margin · m + intercept)`, a
//! logistic regression on the two readers' evidence, fitted the same way.
//! That does reorder examples: it is how the second reader is heard.

use serde::{Deserialize, Serialize};

/// Scores are clamped this far inside (0, 1) before the logit.
const EPSILON: f64 = 1e-6;

/// Positives a label needs in the fitting data for a fit of its own;
/// labels with fewer share one fit over all labels' scores (without the
/// lexical margin, whose weight is a label's own).
pub const MIN_POSITIVES_FOR_OWN_FIT: usize = 8;

/// One label's map from raw score (and lexical margin) to probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Platt {
    /// Multiplies the score's logit; below 1 softens overconfident scores.
    pub slope: f64,
    /// Added to the logit; negative where scores ran high.
    pub intercept: f64,
    /// Multiplies the lexical stage's margin for the label; 0 (and absent
    /// from `clause.json`) for a model without the stage.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub margin: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Platt {
    /// The calibrated probability of raw score `p` with lexical margin
    /// `margin` (0 without a stage). NaN stays NaN, so that the decision
    /// rule still never flags it.
    pub fn apply(&self, p: f32, margin: f32) -> f32 {
        if p.is_nan() {
            return p;
        }
        sigmoid(self.slope * logit(f64::from(p)) + self.margin * f64::from(margin) + self.intercept) as f32
    }

    /// Fit to `(score, truth)` pairs by maximum likelihood, with Platt's
    /// smoothed targets (`(n₊ + 1) / (n₊ + 2)` for positives, `1 / (n₋ + 2)`
    /// for negatives) so that separable data does not drive the slope to
    /// infinity. `None` when there is nothing to fit (no pairs, or only one
    /// class) or the fit does not settle. NaN scores are left out.
    pub fn fit(scores: &[f32], truth: &[bool]) -> Option<Self> {
        Self::fit_features(scores, None, truth)
    }

    /// [`Platt::fit`] with each pair's lexical margin as a second feature,
    /// whose weight is fitted too.
    pub fn fit_with_margins(scores: &[f32], margins: &[f32], truth: &[bool]) -> Option<Self> {
        Self::fit_features(scores, Some(margins), truth)
    }

    fn fit_features(scores: &[f32], margins: Option<&[f32]>, truth: &[bool]) -> Option<Self> {
        let rows: Vec<([f64; 3], bool)> = scores
            .iter()
            .zip(truth)
            .enumerate()
            .filter(|(_, (p, _))| !p.is_nan())
            .map(|(i, (&p, &t))| {
                let m = margins.map_or(0.0, |m| f64::from(m[i]));
                ([logit(f64::from(p)), 1.0, m], t)
            })
            .collect();
        let positives = rows.iter().filter(|(_, t)| *t).count();
        let negatives = rows.len() - positives;
        if positives == 0 || negatives == 0 {
            return None;
        }
        let high = (positives as f64 + 1.0) / (positives as f64 + 2.0);
        let low = 1.0 / (negatives as f64 + 2.0);
        let targets: Vec<([f64; 3], f64)> = rows.iter().map(|&(x, t)| (x, if t { high } else { low })).collect();
        let free = if margins.is_some() { 3 } else { 2 };
        let [slope, intercept, margin] = newton(&targets, free)?;
        (slope > 0.0).then_some(Self { slope, intercept, margin })
    }
}

/// Newton's method on the logistic log-loss of weights `θ` over features
/// `x` (logit, 1, margin), the first `free` of them fitted and the rest
/// kept at 0, from the identity map, halving a step that does not lower the
/// loss. `None` when the fit does not settle on finite weights.
fn newton(targets: &[([f64; 3], f64)], free: usize) -> Option<[f64; 3]> {
    let dot = |theta: &[f64; 3], x: &[f64; 3]| theta.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
    let loss = |theta: &[f64; 3]| -> f64 {
        targets
            .iter()
            .map(|(x, y)| {
                let s = dot(theta, x);
                // log(1 + e^s) - y s, computed stably.
                s.max(0.0) + (-s.abs()).exp().ln_1p() - y * s
            })
            .sum()
    };
    let mut theta = [1.0f64, 0.0, 0.0];
    let mut current = loss(&theta);
    for _ in 0..100 {
        let mut gradient = [0.0f64; 3];
        let mut hessian = [[0.0f64; 3]; 3];
        for (x, y) in targets {
            let p = sigmoid(dot(&theta, x));
            let w = (p * (1.0 - p)).max(1e-12);
            for i in 0..free {
                gradient[i] += (p - y) * x[i];
                for j in 0..free {
                    hessian[i][j] += w * x[i] * x[j];
                }
            }
        }
        // A small ridge keeps the Hessian invertible when all scores are equal.
        for (i, row) in hessian.iter_mut().enumerate().take(free) {
            row[i] += 1e-9;
        }
        let Some(delta) = solve(hessian, gradient, free) else { break };
        let mut step = 1.0;
        let mut improved = false;
        while step > 1e-6 {
            let mut next = theta;
            for i in 0..free {
                next[i] -= step * delta[i];
            }
            let next_loss = loss(&next);
            if next_loss <= current {
                (theta, current, improved) = (next, next_loss, true);
                break;
            }
            step /= 2.0;
        }
        if !improved || delta.iter().map(|d| d.abs()).sum::<f64>() * step < 1e-10 {
            break;
        }
    }
    theta.iter().all(|t| t.is_finite()).then_some(theta)
}

/// The solution of the first `n` rows and columns of `a · x = b`, by
/// Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: [[f64; 3]; 3], mut b: [f64; 3], n: usize) -> Option<[f64; 3]> {
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-18 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..n {
            let factor = a[row][col] / pivot_row[col];
            for (x, p) in a[row][col..n].iter_mut().zip(&pivot_row[col..n]) {
                *x -= factor * p;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0f64; 3];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

/// One [`Platt`] map per label (`probabilities[example][label]`): a
/// label's own where it has at least [`MIN_POSITIVES_FOR_OWN_FIT`]
/// positives and negatives, with the lexical stage's margin as a feature
/// where `margins` (`[example][label]`, as the probabilities) has any; else
/// one fitted on all labels' scores pooled, without margins. `None` for a
/// label where no fit is possible, which leaves its scores as they are.
pub fn fit_per_label(probabilities: &[Vec<f32>], truth: &[Vec<bool>], margins: &[Vec<f32>]) -> Vec<Option<Platt>> {
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
            if !enough {
                return pooled;
            }
            let stacked = (!margins.is_empty()).then(|| {
                let column_margins: Vec<f32> = margins.iter().map(|row| row[j]).collect();
                Platt::fit_with_margins(&scores, &column_margins, &column)
            });
            stacked.flatten().or_else(|| Platt::fit(&scores, &column)).or(pooled)
        })
        .collect()
}

/// Apply each label's map (where it has one) to every row, with the
/// lexical stage's margins (`[example][label]`; empty without a stage).
pub fn apply_per_label(probabilities: &mut [Vec<f32>], maps: &[Option<Platt>], margins: &[Vec<f32>]) {
    for (i, row) in probabilities.iter_mut().enumerate() {
        let margin_row = margins.get(i);
        for (j, (p, map)) in row.iter_mut().zip(maps).enumerate() {
            if let Some(map) = map {
                *p = map.apply(*p, margin_row.map_or(0.0, |m| m[j]));
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
        let calibrated: Vec<Vec<f32>> = scores.iter().map(|&s| vec![map.apply(s, 0.0)]).collect();
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
        assert!(map.apply(0.3, 0.0) < map.apply(0.6, 0.0) && map.apply(0.6, 0.0) < map.apply(0.9, 0.0));
        assert!(map.apply(f32::NAN, 0.0).is_nan());
    }

    #[test]
    fn separable_or_one_class_data_stays_finite_or_has_no_fit() {
        let scores = [0.1f32, 0.2, 0.8, 0.9];
        let map = Platt::fit(&scores, &[false, false, true, true]).expect("fit");
        assert!(map.slope.is_finite() && map.slope > 0.0);
        assert!(map.apply(0.9, 0.0) < 1.0 && map.apply(0.1, 0.0) > 0.0);
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
        let maps = fit_per_label(&probabilities, &rows, &[]);
        let pooled_scores: Vec<f32> = probabilities.iter().flatten().copied().collect();
        let pooled_truth: Vec<bool> = rows.iter().flatten().copied().collect();
        assert_eq!(maps[1], Platt::fit(&pooled_scores, &pooled_truth));
        assert_ne!(maps[0], maps[1]);
        let mut calibrated = probabilities.clone();
        apply_per_label(&mut calibrated, &maps, &[]);
        assert_eq!(calibrated[5][0], maps[0].expect("fit").apply(probabilities[5][0], 0.0));
    }

    #[test]
    fn a_margin_that_carries_evidence_gets_weight_and_one_that_does_not_gets_none() {
        // Truth follows the margin as much as the score: true share
        // sigmoid(logit(s) + 2 m - 1) over a grid of scores and margins.
        let (mut scores, mut margins, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for k in 1..10 {
            for m in [-1.0f64, -0.5, 0.0, 0.5, 1.0] {
                let s = k as f64 / 10.0;
                let positives = (sigmoid(logit(s) + 2.0 * m - 1.0) * 400.0).round() as usize;
                for i in 0..400 {
                    scores.push(s as f32);
                    margins.push(m as f32);
                    truth.push(i < positives);
                }
            }
        }
        let map = Platt::fit_with_margins(&scores, &margins, &truth).expect("fit");
        assert!((map.slope - 1.0).abs() < 0.05, "{map:?}");
        assert!((map.margin - 2.0).abs() < 0.05 && (map.intercept + 1.0).abs() < 0.05, "{map:?}");
        assert!(map.apply(0.5, 1.0) > map.apply(0.5, 0.0));
        // Margins unrelated to truth: weight near 0, the plain fit's map.
        let noise: Vec<f32> = (0..scores.len()).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let (scores, truth) = sample(|s| sigmoid(0.5 * logit(s) - 1.0));
        let noise = &noise[..scores.len()];
        let with = Platt::fit_with_margins(&scores, noise, &truth).expect("fit");
        let without = Platt::fit(&scores, &truth).expect("fit");
        assert!(with.margin.abs() < 0.05 && (with.slope - without.slope).abs() < 0.05, "{with:?} {without:?}");
        assert_eq!(without.margin, 0.0);
        // Per label: margins where given; rows apply their own.
        let probabilities: Vec<Vec<f32>> = scores.iter().map(|&s| vec![s]).collect();
        let rows: Vec<Vec<bool>> = truth.iter().map(|&t| vec![t]).collect();
        let margin_rows: Vec<Vec<f32>> = noise.iter().map(|&m| vec![m]).collect();
        let maps = fit_per_label(&probabilities, &rows, &margin_rows);
        assert_eq!(maps[0], Some(with));
        let mut calibrated = probabilities.clone();
        apply_per_label(&mut calibrated, &maps, &margin_rows);
        assert_eq!(calibrated[3][0], with.apply(probabilities[3][0], noise[3]));
    }

    #[test]
    fn a_card_without_a_margin_weight_reads_as_zero_and_writes_none() {
        let map: Platt = serde_json::from_str(r#"{"slope": 0.5, "intercept": -1.0}"#).expect("parse");
        assert_eq!(map.margin, 0.0);
        assert_eq!(serde_json::to_string(&map).expect("write"), r#"{"slope":0.5,"intercept":-1.0}"#);
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
