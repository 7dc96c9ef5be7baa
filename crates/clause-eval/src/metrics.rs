//! Multi-label classification metrics and per-label decision thresholds.
//!
//! Everything here works on plain slices so that training (which holds
//! candle tensors) and offline evaluation (which holds JSON) can share one
//! definition of the scores that get reported.
//!
//! Conventions, chosen to match scikit-learn's `zero_division=0` so the
//! numbers are comparable with published LexGLUE results:
//!
//! * precision is 0 when nothing is predicted;
//! * recall is 0 when the support (true positives + false negatives) is 0;
//! * F1 is 0 when precision + recall is 0 (that is, when there is no true
//!   positive);
//! * every score is a fraction in `[0, 1]`, never a percentage;
//! * a NaN probability counts as 0.0, because a diverged model should score
//!   badly rather than abort an epoch.

use serde::{Deserialize, Serialize};

/// Name of the extra column that is true when an example has no label.
pub const NONE_LABEL: &str = "none";

/// Why predictions cannot be scored against the truth.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// Truth and predictions do not cover the same examples.
    #[error("truth has {truth} examples but predictions have {predicted}")]
    ExampleCount {
        /// Rows of truth.
        truth: usize,
        /// Rows of predictions.
        predicted: usize,
    },
    /// One row does not have one column per label.
    #[error("{which} row of example {example} has {actual} labels, expected {expected}")]
    LabelCount {
        /// `"truth"` or `"predicted"`.
        which: &'static str,
        /// Index of the offending example.
        example: usize,
        /// The number of label names.
        expected: usize,
        /// The row's length.
        actual: usize,
    },
    /// A grouping (for a bootstrap by document) does not name every example's group.
    #[error("{examples} examples but {groups} group assignments")]
    GroupCount {
        /// Rows of truth.
        examples: usize,
        /// Entries of the grouping.
        groups: usize,
    },
}

/// Counts and scores of one label (or of the "none" column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelMetrics {
    /// Label name.
    pub label: String,
    /// Examples that truly have the label (true positives + false negatives).
    pub support: usize,
    /// Examples predicted to have the label (true positives + false positives).
    pub predicted: usize,
    /// Examples both truly having and predicted to have the label.
    pub true_positives: usize,
    /// `true_positives / predicted`, 0 when nothing is predicted.
    pub precision: f64,
    /// `true_positives / support`, 0 when the support is 0.
    pub recall: f64,
    /// Harmonic mean of precision and recall, 0 when both are 0.
    pub f1: f64,
}

impl LabelMetrics {
    /// Scores from counts, applying the module's zero conventions.
    fn from_counts(label: &str, support: usize, predicted: usize, true_positives: usize) -> Self {
        let (precision, recall, f1) = scores(support, predicted, true_positives);
        Self { label: label.to_string(), support, predicted, true_positives, precision, recall, f1 }
    }
}

/// Scores of a set of predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of examples scored.
    pub examples: usize,
    /// Per-label scores, in label order.
    pub labels: Vec<LabelMetrics>,
    /// The "none" column: true when an example has no label, predicted when
    /// the model predicts no label.
    pub none: LabelMetrics,
    /// F1 of the pooled counts over the labels (not the none column).
    pub micro_f1: f64,
    /// Mean F1 over the labels (not the none column); 0 with no labels.
    pub macro_f1: f64,
    /// Mean F1 over the labels plus the none column, the LexGLUE UNFAIR-ToS
    /// convention, which otherwise would not reward getting fair clauses right.
    pub lexglue_macro_f1: f64,
    /// Precision of the pooled counts over the labels.
    pub micro_precision: f64,
    /// Recall of the pooled counts over the labels.
    pub micro_recall: f64,
}

/// Precision, recall and F1 from counts.
fn scores(support: usize, predicted: usize, true_positives: usize) -> (f64, f64, f64) {
    let ratio = |num: usize, den: usize| if den == 0 { 0.0 } else { num as f64 / den as f64 };
    let precision = ratio(true_positives, predicted);
    let recall = ratio(true_positives, support);
    // 2·tp / (predicted + support) equals the harmonic mean whenever tp > 0
    // and avoids the rounding of combining two already-rounded fractions;
    // tp = 0 is exactly the precision + recall = 0 case.
    (precision, recall, f1(support, predicted, true_positives))
}

/// F1 from counts: 2·tp / (predicted + support), 0 without a true positive.
pub(crate) fn f1(support: usize, predicted: usize, true_positives: usize) -> f64 {
    if true_positives == 0 { 0.0 } else { (2 * true_positives) as f64 / (predicted + support) as f64 }
}

/// Evaluate boolean predictions against truth.
///
/// `truth[i][j]` / `predicted[i][j]`: example `i` has label `names[j]`. Every
/// row must have exactly one entry per name, and both sides the same number
/// of examples; otherwise the error names the first offending row.
pub fn evaluate(names: &[String], truth: &[Vec<bool>], predicted: &[Vec<bool>]) -> Result<Metrics, MetricsError> {
    if truth.len() != predicted.len() {
        return Err(MetricsError::ExampleCount { truth: truth.len(), predicted: predicted.len() });
    }
    let n = names.len();
    for (example, (t, p)) in truth.iter().zip(predicted).enumerate() {
        for (which, row) in [("truth", t), ("predicted", p)] {
            if row.len() != n {
                return Err(MetricsError::LabelCount { which, example, expected: n, actual: row.len() });
            }
        }
    }

    let mut support = vec![0usize; n];
    let mut predicted_count = vec![0usize; n];
    let mut true_positives = vec![0usize; n];
    let (mut none_support, mut none_predicted, mut none_tp) = (0usize, 0usize, 0usize);
    for (t, p) in truth.iter().zip(predicted) {
        for j in 0..n {
            support[j] += usize::from(t[j]);
            predicted_count[j] += usize::from(p[j]);
            true_positives[j] += usize::from(t[j] && p[j]);
        }
        let truly_none = !t.iter().any(|&x| x);
        let predicted_none = !p.iter().any(|&x| x);
        none_support += usize::from(truly_none);
        none_predicted += usize::from(predicted_none);
        none_tp += usize::from(truly_none && predicted_none);
    }

    let labels: Vec<LabelMetrics> = names
        .iter()
        .enumerate()
        .map(|(j, name)| LabelMetrics::from_counts(name, support[j], predicted_count[j], true_positives[j]))
        .collect();
    let none = LabelMetrics::from_counts(NONE_LABEL, none_support, none_predicted, none_tp);
    let (micro_precision, micro_recall, micro_f1) =
        scores(support.iter().sum(), predicted_count.iter().sum(), true_positives.iter().sum());
    let f1_sum: f64 = labels.iter().map(|l| l.f1).sum();
    let macro_f1 = if n == 0 { 0.0 } else { f1_sum / n as f64 };
    let lexglue_macro_f1 = (f1_sum + none.f1) / (n + 1) as f64;

    Ok(Metrics {
        examples: truth.len(),
        labels,
        none,
        micro_f1,
        macro_f1,
        lexglue_macro_f1,
        micro_precision,
        micro_recall,
    })
}

/// A probability with NaN replaced by 0.0, so comparisons and sorting are
/// total and a broken score is simply "not confident".
fn clean(p: f32) -> f32 {
    if p.is_nan() { 0.0 } else { p }
}

/// Apply per-label thresholds: label `j` is predicted when
/// `probabilities[i][j] >= thresholds[j]`.
///
/// Each output row has the length of its probability row; each cell is
/// [`crate::decision::flags`]. A column without a threshold (row longer than
/// `thresholds`) is never predicted, since there is no rule to apply and this
/// function has no error channel; [`evaluate`] then reports the shapes.
pub fn decide(probabilities: &[Vec<f32>], thresholds: &[f32]) -> Vec<Vec<bool>> {
    probabilities
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, &p)| thresholds.get(j).is_some_and(|&t| crate::decision::flags(p, t)))
                .collect()
        })
        .collect()
}

/// Per-label decision thresholds that maximise that label's F1 on the given
/// (validation) probabilities.
///
/// * The number of labels is the longest row of `probabilities` or `truth`;
///   examples are the first `min(probabilities.len(), truth.len())`. A missing
///   cell counts as probability 0.0 / not a positive, and NaN as 0.0.
/// * A label with fewer than `min_positives` positive examples gets
///   `fallback`, because a threshold tuned on one or two positives does not
///   generalise.
/// * Each distinct probability is a cut (predict positive when `p >= t`
///   for every score down to it), and its threshold is halfway between that
///   score and the next lower one (the score itself when none is lower). On
///   the scores tuned on, that decides exactly as the score would; but a
///   threshold equal to a validation score would flip that example on the
///   smallest numerical difference, as between the training loop's forward
///   pass and `clause eval`'s, so reported metrics would not reproduce.
/// * Ties in F1 (compared exactly, on counts) go to the threshold closest to
///   `fallback`, since with no evidence either way the prior default is the
///   safest guess; if two are equally close, the higher one wins, because it
///   predicts fewer labels.
/// * If the best achievable F1 is 0 (for instance no positives at all), the
///   label gets `fallback`.
///
/// Each label costs one sort and one sweep, O(n log n) in the examples.
pub fn tune_thresholds(
    probabilities: &[Vec<f32>],
    truth: &[Vec<bool>],
    min_positives: usize,
    fallback: f32,
) -> Vec<f32> {
    let labels = probabilities.iter().map(Vec::len).chain(truth.iter().map(Vec::len)).max().unwrap_or(0);
    let mut column: Vec<(f32, bool)> = Vec::with_capacity(probabilities.len().min(truth.len()));
    (0..labels)
        .map(|j| {
            column.clear();
            column.extend(
                probabilities
                    .iter()
                    .zip(truth)
                    .map(|(p, t)| (clean(p.get(j).copied().unwrap_or(0.0)), t.get(j).copied().unwrap_or(false))),
            );
            tune_one(&mut column, min_positives, fallback)
        })
        .collect()
}

/// Best threshold of one label; `column` holds (probability without NaN,
/// is positive) and is reordered.
fn tune_one(column: &mut [(f32, bool)], min_positives: usize, fallback: f32) -> f32 {
    let positives = column.iter().filter(|(_, t)| *t).count();
    if positives == 0 || positives < min_positives {
        return fallback;
    }
    // Descending, so lowering the threshold to the next distinct score only
    // adds that score's examples to the predicted set.
    column.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let positives = positives as u128;
    // (true positives, predicted, threshold) of the best candidate so far.
    let mut best: Option<(u128, u128, f32)> = None;
    let (mut tp, mut i) = (0u128, 0usize);
    while i < column.len() {
        let score = column[i].0;
        // `==` rather than bitwise equality, so -0.0 and 0.0 (adjacent under
        // total_cmp) form one candidate, as they do for `p >= t`.
        while i < column.len() && column[i].0 == score {
            tp += u128::from(column[i].1);
            i += 1;
        }
        let predicted = i as u128;
        let threshold = column.get(i).map_or(score, |&(lower, _)| between(lower, score));
        let better = match best {
            None => true,
            Some((best_tp, best_predicted, best_threshold)) => {
                // F1 = 2tp / (predicted + positives); cross-multiplying keeps
                // the comparison exact so ties really are ties.
                let lhs = tp * (best_predicted + positives);
                let rhs = best_tp * (predicted + positives);
                if lhs != rhs {
                    lhs > rhs
                } else {
                    let distance = |t: f32| (f64::from(t) - f64::from(fallback)).abs();
                    // Strictly closer only: candidates come in descending
                    // order, so keeping the incumbent on equal distance
                    // keeps the higher threshold.
                    distance(threshold) < distance(best_threshold)
                }
            }
        };
        if better {
            best = Some((tp, predicted, threshold));
        }
    }
    match best {
        Some((best_tp, _, threshold)) if best_tp > 0 => threshold,
        _ => fallback,
    }
}

/// A threshold above `lower` and at most `upper` (`lower < upper`): their
/// midpoint, or `upper` where the two are so close that the midpoint rounds
/// to `lower`.
fn between(lower: f32, upper: f32) -> f32 {
    let middle = ((f64::from(lower) + f64::from(upper)) / 2.0) as f32;
    if middle > lower && middle <= upper { middle } else { upper }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_predictions_score_one() {
        let truth = vec![vec![true, false], vec![false, true], vec![false, false], vec![true, true]];
        let m = evaluate(&names(&["a", "b"]), &truth, &truth).expect("evaluate");
        assert_eq!(m.examples, 4);
        for l in m.labels.iter().chain([&m.none]) {
            assert_eq!((l.precision, l.recall, l.f1), (1.0, 1.0, 1.0), "{}", l.label);
        }
        assert_eq!(m.none.support, 1);
        assert_eq!((m.micro_f1, m.macro_f1, m.lexglue_macro_f1), (1.0, 1.0, 1.0));
        assert_eq!((m.micro_precision, m.micro_recall), (1.0, 1.0));
    }

    #[test]
    fn worked_two_label_example() {
        // example  truth(a,b)  pred(a,b)   outcome
        //   0        1 0         1 0       a tp
        //   1        1 1         0 1       a fn, b tp
        //   2        0 0         1 0       a fp, none fn
        //   3        0 1         0 0       b fn, none fp
        //   4        0 0         0 0       none tp
        // a:    tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
        // b:    tp 1, predicted 1, support 2 -> P 1,   R 1/2, F1 2/3
        // none: tp 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
        // micro: tp 2, predicted 3, support 4 -> P 2/3, R 1/2, F1 4/7
        // macro: (1/2 + 2/3) / 2 = 7/12
        // LexGLUE: (1/2 + 2/3 + 1/2) / 3 = 5/9
        let truth =
            vec![vec![true, false], vec![true, true], vec![false, false], vec![false, true], vec![false, false]];
        let pred =
            vec![vec![true, false], vec![false, true], vec![true, false], vec![false, false], vec![false, false]];
        let m = evaluate(&names(&["a", "b"]), &truth, &pred).expect("evaluate");
        let a = &m.labels[0];
        assert_eq!((a.label.as_str(), a.true_positives, a.predicted, a.support), ("a", 1, 2, 2));
        assert!(close(a.precision, 0.5) && close(a.recall, 0.5) && close(a.f1, 0.5));
        let b = &m.labels[1];
        assert_eq!((b.label.as_str(), b.true_positives, b.predicted, b.support), ("b", 1, 1, 2));
        assert!(close(b.precision, 1.0) && close(b.recall, 0.5) && close(b.f1, 2.0 / 3.0));
        let none = &m.none;
        assert_eq!((none.label.as_str(), none.true_positives, none.predicted, none.support), ("none", 1, 2, 2));
        assert!(close(none.f1, 0.5));
        assert!(close(m.micro_precision, 2.0 / 3.0));
        assert!(close(m.micro_recall, 0.5));
        assert!(close(m.micro_f1, 4.0 / 7.0));
        assert!(close(m.macro_f1, 7.0 / 12.0));
        assert!(close(m.lexglue_macro_f1, 5.0 / 9.0));
    }

    #[test]
    fn none_column_and_zero_conventions() {
        // Nothing true, nothing predicted: only the none column scores.
        let rows = vec![vec![false, false]; 3];
        let m = evaluate(&names(&["a", "b"]), &rows, &rows).expect("evaluate");
        assert_eq!((m.none.true_positives, m.none.support, m.none.predicted), (3, 3, 3));
        assert_eq!(m.none.f1, 1.0);
        for l in &m.labels {
            assert_eq!((l.precision, l.recall, l.f1), (0.0, 0.0, 0.0));
        }
        assert_eq!((m.micro_precision, m.micro_recall, m.micro_f1, m.macro_f1), (0.0, 0.0, 0.0, 0.0));
        assert!(close(m.lexglue_macro_f1, 1.0 / 3.0));
    }

    #[test]
    fn serde_round_trip() {
        let truth = vec![vec![true], vec![false]];
        let m = evaluate(&names(&["a"]), &truth, &truth).expect("evaluate");
        let json = serde_json::to_string(&m).expect("serialize");
        let back: Metrics = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, m);
    }

    #[test]
    fn length_mismatches_name_the_row() {
        let n = names(&["a", "b"]);
        let ok = vec![vec![true, false], vec![false, false]];
        let err = evaluate(&n, &ok, &ok[..1]).expect_err("example count");
        assert_eq!(err, MetricsError::ExampleCount { truth: 2, predicted: 1 });
        let short = vec![vec![true, false], vec![false]];
        let err = evaluate(&n, &ok, &short).expect_err("label count");
        assert_eq!(err, MetricsError::LabelCount { which: "predicted", example: 1, expected: 2, actual: 1 });
        assert!(err.to_string().contains("example 1"), "{err}");
        let err = evaluate(&n, &short, &ok).expect_err("label count");
        assert!(matches!(err, MetricsError::LabelCount { which: "truth", example: 1, .. }));
    }

    #[test]
    fn decide_applies_per_label_thresholds() {
        let probs = vec![vec![0.4, 0.2, 0.9], vec![0.3, 0.5, f32::NAN], vec![0.1, 0.7, 0.0]];
        let got = decide(&probs, &[0.3, 0.5, 0.0]);
        // NaN is never predicted, not even at a 0.0 threshold (decision::flags).
        assert_eq!(got, vec![vec![true, false, true], vec![true, true, false], vec![false, true, true]]);
        assert_eq!(decide(&[vec![f32::NAN]], &[0.5]), vec![vec![false]]);
        // A column without a threshold is never predicted.
        assert_eq!(decide(&[vec![0.9, 0.9]], &[0.5]), vec![vec![true, false]]);
        assert!(decide(&[], &[0.5]).is_empty());
    }

    #[test]
    fn tune_finds_separating_threshold() {
        // Label 0 separable: positives 0.3..0.4, negatives below 0.2 (and one
        // NaN, which counts as 0.0). Label 1 has a single positive.
        let probs = vec![
            vec![0.30, 0.9],
            vec![0.35, 0.1],
            vec![0.40, 0.2],
            vec![0.10, 0.3],
            vec![0.15, 0.4],
            vec![0.05, 0.5],
            vec![f32::NAN, 0.6],
        ];
        let truth: Vec<Vec<bool>> = [
            (true, true),
            (true, false),
            (true, false),
            (false, false),
            (false, false),
            (false, false),
            (false, false),
        ]
        .iter()
        .map(|&(a, b)| vec![a, b])
        .collect();
        let t = tune_thresholds(&probs, &truth, 2, 0.5);
        assert_eq!(t.len(), 2);
        assert!(t[0] > 0.2 && t[0] <= 0.3, "{t:?}");
        // Only one positive for label 1, below min_positives.
        assert_eq!(t[1], 0.5);
        let m = evaluate(&names(&["a", "b"]), &truth, &decide(&probs, &t)).expect("evaluate");
        assert_eq!(m.labels[0].f1, 1.0);
        // With min_positives 1 the single positive (0.9) is separable, halfway
        // to the next score (0.6).
        assert_eq!(tune_thresholds(&probs, &truth, 1, 0.5)[1], 0.75);
    }

    #[test]
    fn tune_falls_back_without_positives() {
        let probs = vec![vec![0.9], vec![0.1], vec![f32::NAN]];
        let truth = vec![vec![false]; 3];
        assert_eq!(tune_thresholds(&probs, &truth, 0, 0.5), vec![0.5]);
        assert_eq!(tune_thresholds(&probs, &truth, 1, 0.25), vec![0.25]);
        assert!(tune_thresholds(&[], &[], 1, 0.5).is_empty());
    }

    #[test]
    fn tune_breaks_ties_towards_fallback_then_higher() {
        // 3 positives. Cuts, their thresholds (halfway to the next score) and
        // F1 = 2tp / (predicted + 3):
        //   0.875  -> 0.8125  tp 1, predicted 1 -> 2/4 = 1/2
        //   0.75   -> 0.71875 tp 1, predicted 2 -> 2/5
        //   0.6875 -> 0.65625 tp 1, predicted 3 -> 2/6
        //   0.625  -> 0.5625  tp 1, predicted 4 -> 2/7
        //   0.5    -> 0.3125  tp 2, predicted 5 -> 4/8 = 1/2
        //   0.125  -> 0.125   tp 3, predicted 9 -> 6/12 = 1/2 (no lower score)
        // Three-way tie at 1/2; values are dyadic so distances are exact.
        let scores = [
            (0.875, true),
            (0.75, false),
            (0.6875, false),
            (0.625, false),
            (0.5, true),
            (0.125, true),
            (0.125, false),
            (0.125, false),
            (0.125, false),
        ];
        let probs: Vec<Vec<f32>> = scores.iter().map(|&(p, _)| vec![p]).collect();
        let truth: Vec<Vec<bool>> = scores.iter().map(|&(_, t)| vec![t]).collect();
        let tune = |fallback| tune_thresholds(&probs, &truth, 1, fallback)[0];
        assert_eq!(tune(0.5), 0.3125);
        assert_eq!(tune(0.0), 0.125);
        assert_eq!(tune(1.0), 0.8125);
        // 0.5625 is 0.25 from both 0.8125 and 0.3125: the higher one wins.
        assert_eq!(tune(0.5625), 0.8125);
    }

    #[test]
    fn tuned_thresholds_keep_off_the_scores_they_separate() {
        // Positives at 0.97 and 0.95, negatives at 0.9 and below: the cut
        // falls between 0.95 and 0.9, not on 0.95, so a positive whose score
        // is recomputed a hair lower is still predicted.
        let scores = [(0.97f32, true), (0.95, true), (0.9, false), (0.5, false), (0.2, false)];
        let probs: Vec<Vec<f32>> = scores.iter().map(|&(p, _)| vec![p]).collect();
        let truth: Vec<Vec<bool>> = scores.iter().map(|&(_, t)| vec![t]).collect();
        let t = tune_thresholds(&probs, &truth, 1, 0.5)[0];
        assert!(t > 0.9 && t < 0.95, "{t}");
        assert_eq!(decide(&probs, &[t]), truth, "the tuned split decides as tuned");
        let nudged: Vec<Vec<f32>> = probs.iter().map(|row| vec![row[0] - 1e-6]).collect();
        assert_eq!(decide(&nudged, &[t]), truth, "a hair's difference flips nothing");
        // Scores one ulp apart have no midpoint: the upper one is the cut.
        let upper = 0.5f32;
        let lower = f32::from_bits(upper.to_bits() - 1);
        assert_eq!(between(lower, upper), upper);
        assert_eq!(between(0.25, 0.75), 0.5);
    }
}
