//! Threshold-free and uncertainty figures reported beside [`crate::metrics`].
//!
//! The F1 scores in [`crate::metrics`] depend on the chosen decision
//! thresholds and say nothing about how much they would move on another test
//! set of the same size. This module adds:
//!
//! * ranking quality per label, independent of any threshold: area under the
//!   ROC curve ([`roc_auc`]) and average precision ([`average_precision`]),
//!   both defined as scikit-learn defines them, tied scores included;
//! * calibration: a reliability table and the expected calibration error
//!   ([`calibration`], [`expected_calibration_error`]);
//! * percentile bootstrap confidence intervals for micro-, macro- and LexGLUE
//!   macro-F1 ([`bootstrap_intervals`]).
//!
//! As in [`crate::metrics`], a NaN probability counts as 0.0, so a diverged
//! model scores badly rather than aborting the report.

use serde::{Deserialize, Serialize};

use crate::metrics::{self, MetricsError};
use clause_rng::SplitMix64;

/// Lower percentile of a bootstrap interval (a central 95 % interval).
pub const INTERVAL_LOW: f64 = 0.025;
/// Upper percentile of a bootstrap interval.
pub const INTERVAL_HIGH: f64 = 0.975;

/// A probability with NaN replaced by 0.0, matching `metrics::decide`.
fn clean(p: f32) -> f32 {
    if p.is_nan() { 0.0 } else { p }
}

/// Cumulative (true positives, false positives) after each group of tied
/// scores, walking from the highest score down: the points of the ROC and
/// precision–recall curves, one per distinct threshold.
fn cumulative_counts(scores: &[f32], truth: &[bool]) -> Vec<(u128, u128)> {
    let mut pairs: Vec<(f32, bool)> = scores.iter().map(|&s| clean(s)).zip(truth.iter().copied()).collect();
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::new();
    let (mut tp, mut fp, mut i) = (0u128, 0u128, 0usize);
    while i < pairs.len() {
        let threshold = pairs[i].0;
        // `==` rather than bitwise equality, so -0.0 and 0.0 (adjacent under
        // total_cmp) form one threshold, as they would for `p >= t`.
        while i < pairs.len() && pairs[i].0 == threshold {
            if pairs[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push((tp, fp));
    }
    points
}

/// Area under the ROC curve of one label.
///
/// `scores[i]` is the probability of example `i`, `truth[i]` whether it truly
/// has the label. Tied scores form one threshold and the curve is joined by
/// straight lines (trapezoids), as in scikit-learn's `roc_auc_score`; this
/// equals the Mann–Whitney statistic with average ranks, so a tie between a
/// positive and a negative counts one half.
///
/// `None` when the slices differ in length or the truth has no positive or
/// no negative (the curve is then undefined). O(n log n).
pub fn roc_auc(scores: &[f32], truth: &[bool]) -> Option<f64> {
    if scores.len() != truth.len() {
        return None;
    }
    let positives = truth.iter().filter(|&&t| t).count() as u128;
    let negatives = truth.len() as u128 - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Twice the unnormalised area, kept in integers so ties and sums are
    // exact and only the final division rounds.
    let (mut twice_area, mut tp_before, mut fp_before) = (0u128, 0u128, 0u128);
    for (tp, fp) in cumulative_counts(scores, truth) {
        twice_area += (fp - fp_before) * (tp + tp_before);
        (tp_before, fp_before) = (tp, fp);
    }
    Some(twice_area as f64 / (2 * positives * negatives) as f64)
}

/// Average precision of one label, scikit-learn's `average_precision_score`:
/// the sum over distinct thresholds, from the highest score down, of
/// `(R_n − R_{n−1}) · P_n`, where `P_n` and `R_n` are the precision and
/// recall of predicting every example scoring at least the `n`-th threshold.
/// Tied scores form one threshold, so their order does not matter. There is
/// no interpolation.
///
/// `None` when the slices differ in length or the truth has no positive
/// (recall is then undefined). O(n log n).
pub fn average_precision(scores: &[f32], truth: &[bool]) -> Option<f64> {
    if scores.len() != truth.len() {
        return None;
    }
    let positives = truth.iter().filter(|&&t| t).count();
    if positives == 0 {
        return None;
    }
    let mut sum = 0.0f64;
    let mut tp_before = 0u128;
    for (tp, fp) in cumulative_counts(scores, truth) {
        if tp > tp_before {
            // R_n − R_{n−1} = Δtp / positives; the division by positives is
            // done once at the end.
            sum += (tp - tp_before) as f64 * (tp as f64 / (tp + fp) as f64);
        }
        tp_before = tp;
    }
    Some(sum / positives as f64)
}

/// Ranking quality of one label, independent of its decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    /// Label name.
    pub label: String,
    /// Area under the ROC curve; `None` when the label has no positive or no
    /// negative example.
    pub roc_auc: Option<f64>,
    /// Average precision; `None` when the label has no positive example.
    pub average_precision: Option<f64>,
}

/// Check that probabilities and truth both have one row per example and one
/// column per label.
fn check_probability_shapes(
    labels: usize,
    probabilities: &[Vec<f32>],
    truth: &[Vec<bool>],
) -> Result<(), MetricsError> {
    if truth.len() != probabilities.len() {
        return Err(MetricsError::ExampleCount { truth: truth.len(), predicted: probabilities.len() });
    }
    for (example, (t, p)) in truth.iter().zip(probabilities).enumerate() {
        if t.len() != labels {
            return Err(MetricsError::LabelCount { which: "truth", example, expected: labels, actual: t.len() });
        }
        if p.len() != labels {
            return Err(MetricsError::LabelCount {
                which: "probabilities",
                example,
                expected: labels,
                actual: p.len(),
            });
        }
    }
    Ok(())
}

/// [`roc_auc`] and [`average_precision`] of every label column, in label
/// order.
///
/// `probabilities[i][j]` / `truth[i][j]`: the probability that example `i`
/// has label `names[j]`, and whether it does. Shapes are checked as in
/// [`metrics::evaluate`]; a probability row of the wrong length is reported
/// with `which: "probabilities"`.
pub fn ranking_metrics(
    names: &[String],
    probabilities: &[Vec<f32>],
    truth: &[Vec<bool>],
) -> Result<Vec<RankingMetrics>, MetricsError> {
    check_probability_shapes(names.len(), probabilities, truth)?;
    let mut scores = Vec::with_capacity(truth.len());
    let mut column = Vec::with_capacity(truth.len());
    Ok(names
        .iter()
        .enumerate()
        .map(|(j, name)| {
            scores.clear();
            scores.extend(probabilities.iter().map(|row| row[j]));
            column.clear();
            column.extend(truth.iter().map(|row| row[j]));
            RankingMetrics {
                label: name.clone(),
                roc_auc: roc_auc(&scores, &column),
                average_precision: average_precision(&scores, &column),
            }
        })
        .collect())
}

/// One row of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the bin (inclusive).
    pub low: f64,
    /// Upper edge of the bin (exclusive, except for the last bin, which
    /// includes 1.0).
    pub high: f64,
    /// (example, label) pairs whose probability falls in the bin.
    pub count: usize,
    /// Mean probability of those pairs; 0 when the bin is empty.
    pub mean_probability: f64,
    /// Fraction of those pairs that are true; 0 when the bin is empty.
    pub fraction_positive: f64,
}

/// Reliability table and expected calibration error of a set of
/// probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Equal-width bins covering [0, 1], in increasing order.
    pub bins: Vec<CalibrationBin>,
    /// (example, label) pairs counted, the sum of the bin counts.
    pub total: usize,
    /// Sum over bins of `count / total · |mean_probability −
    /// fraction_positive|`; 0 when there is nothing to count.
    pub expected_calibration_error: f64,
}

/// Reliability table and expected calibration error over all (example,
/// label) pairs, pooling the labels.
///
/// The bins are `bins` equal-width intervals `[k/bins, (k+1)/bins)` on
/// [0, 1], the last one closed so that a probability of exactly 1.0 counts.
/// `bins` is taken as at least 1. A NaN probability counts as 0.0, and a
/// value outside [0, 1] is clamped into it, since only a probability has a
/// bin. Every row must have the length of the first truth row, and both sides
/// the same number of examples.
pub fn calibration(probabilities: &[Vec<f32>], truth: &[Vec<bool>], bins: usize) -> Result<Calibration, MetricsError> {
    let labels = truth.first().map_or(0, Vec::len);
    check_probability_shapes(labels, probabilities, truth)?;
    let bins = bins.max(1);
    let mut count = vec![0usize; bins];
    let mut probability_sum = vec![0.0f64; bins];
    let mut positives = vec![0usize; bins];
    for (p_row, t_row) in probabilities.iter().zip(truth) {
        for (&p, &t) in p_row.iter().zip(t_row) {
            let p = f64::from(clean(p).clamp(0.0, 1.0));
            // An f32 times a bin count below 2^29 is exact in f64, so the
            // floor never pushes a value across a bin edge by rounding.
            let k = ((p * bins as f64) as usize).min(bins - 1);
            count[k] += 1;
            probability_sum[k] += p;
            positives[k] += usize::from(t);
        }
    }
    let total: usize = count.iter().sum();
    let table: Vec<CalibrationBin> = (0..bins)
        .map(|k| {
            let (mean_probability, fraction_positive) = if count[k] == 0 {
                (0.0, 0.0)
            } else {
                (probability_sum[k] / count[k] as f64, positives[k] as f64 / count[k] as f64)
            };
            CalibrationBin {
                low: k as f64 / bins as f64,
                high: (k + 1) as f64 / bins as f64,
                count: count[k],
                mean_probability,
                fraction_positive,
            }
        })
        .collect();
    let expected_calibration_error = if total == 0 {
        0.0
    } else {
        table.iter().map(|b| b.count as f64 / total as f64 * (b.mean_probability - b.fraction_positive).abs()).sum()
    };
    Ok(Calibration { bins: table, total, expected_calibration_error })
}

/// The expected calibration error of [`calibration`], without the table.
pub fn expected_calibration_error(
    probabilities: &[Vec<f32>],
    truth: &[Vec<bool>],
    bins: usize,
) -> Result<f64, MetricsError> {
    calibration(probabilities, truth, bins).map(|c| c.expected_calibration_error)
}

/// Each label's expected calibration error, its scores alone (`bins`
/// equal-width bins): pooled over labels, the many scores near 0 that are
/// right would hide a badly calibrated label.
pub fn expected_calibration_error_per_label(
    probabilities: &[Vec<f32>],
    truth: &[Vec<bool>],
    bins: usize,
) -> Result<Vec<f64>, MetricsError> {
    let labels = truth.first().map_or(0, Vec::len);
    (0..labels)
        .map(|j| {
            let scores: Vec<Vec<f32>> = probabilities.iter().map(|row| vec![row[j]]).collect();
            let column: Vec<Vec<bool>> = truth.iter().map(|row| vec![row[j]]).collect();
            expected_calibration_error(&scores, &column, bins)
        })
        .collect()
}

/// A confidence interval of one score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The [`INTERVAL_LOW`] percentile.
    pub low: f64,
    /// The [`INTERVAL_HIGH`] percentile.
    pub high: f64,
}

impl Interval {
    /// Whether `x` lies in the closed interval.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Bootstrap confidence intervals of the headline F1 scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervals {
    /// Number of resamples drawn.
    pub resamples: usize,
    /// How many units each resample draws from: documents when the examples
    /// were grouped by document, else examples.
    #[serde(default)]
    pub units: usize,
    /// The seed of the resampling, so a report can be reproduced.
    pub seed: u64,
    /// Interval of [`metrics::Metrics::micro_f1`].
    pub micro_f1: Interval,
    /// Interval of [`metrics::Metrics::macro_f1`].
    pub macro_f1: Interval,
    /// Interval of [`metrics::Metrics::lexglue_macro_f1`].
    pub lexglue_macro_f1: Interval,
}

/// Micro-F1, macro-F1 and LexGLUE macro-F1 of one resample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    micro_f1: f64,
    macro_f1: f64,
    lexglue_macro_f1: f64,
}

/// Per-example truth/prediction indicators, so a resample is scored by
/// adding up counts instead of rebuilding and re-validating rows.
struct Indicators {
    labels: usize,
    /// `codes[i * labels + j]`: bit 0 truth, bit 1 prediction of label `j`
    /// in example `i`.
    codes: Vec<u8>,
    /// The same for the "none" column of each example.
    none_codes: Vec<u8>,
}

/// Truth in bit 0, prediction in bit 1.
fn code(truth: bool, predicted: bool) -> u8 {
    u8::from(truth) | (u8::from(predicted) << 1)
}

impl Indicators {
    /// Rows must already have been checked by `metrics::evaluate`.
    fn new(labels: usize, truth: &[Vec<bool>], predicted: &[Vec<bool>]) -> Self {
        let mut codes = Vec::with_capacity(truth.len() * labels);
        let mut none_codes = Vec::with_capacity(truth.len());
        for (t, p) in truth.iter().zip(predicted) {
            codes.extend(t.iter().zip(p).map(|(&t, &p)| code(t, p)));
            none_codes.push(code(!t.iter().any(|&x| x), !p.iter().any(|&x| x)));
        }
        Self { labels, codes, none_codes }
    }

    /// Scores of the multiset of examples `draws`; `counts` is scratch space
    /// of `3 * (labels + 1)` entries.
    fn figures(&self, draws: &[usize], counts: &mut [usize]) -> Figures {
        let n = self.labels;
        counts.fill(0);
        // counts[3c..3c+3] = (support, predicted, true positives) of column
        // c, the "none" column last.
        for &i in draws {
            let row = &self.codes[i * n..(i + 1) * n];
            for (c, &code) in row.iter().chain([&self.none_codes[i]]).enumerate() {
                let code = usize::from(code);
                counts[3 * c] += code & 1;
                counts[3 * c + 1] += code >> 1;
                counts[3 * c + 2] += usize::from(code == 3);
            }
        }
        let column_f1 = |c: usize| metrics::f1(counts[3 * c], counts[3 * c + 1], counts[3 * c + 2]);
        let sum_of = |offset: usize| (0..n).map(|c| counts[3 * c + offset]).sum::<usize>();
        let micro_f1 = metrics::f1(sum_of(0), sum_of(1), sum_of(2));
        // Summed in label order by the same iterator `evaluate` uses, so the
        // rounding is identical.
        let f1_sum: f64 = (0..n).map(column_f1).sum();
        let macro_f1 = if n == 0 { 0.0 } else { f1_sum / n as f64 };
        let lexglue_macro_f1 = (f1_sum + column_f1(n)) / (n + 1) as f64;
        Figures { micro_f1, macro_f1, lexglue_macro_f1 }
    }
}

/// Linearly interpolated percentile of sorted, non-empty values (NumPy's
/// default `percentile` method).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

/// The central interval of some resampled values.
fn interval(values: &mut [f64]) -> Interval {
    values.sort_unstable_by(f64::total_cmp);
    Interval { low: percentile(values, INTERVAL_LOW), high: percentile(values, INTERVAL_HIGH) }
}

/// Draw one resample: as many groups as there are, with replacement, and
/// every example of each group drawn.
fn draw(rng: &mut SplitMix64, groups: &[Vec<usize>], draws: &mut Vec<usize>) {
    draws.clear();
    for _ in 0..groups.len() {
        draws.extend_from_slice(&groups[rng.below(groups.len())]);
    }
}

/// Percentile bootstrap 95 % confidence intervals of micro-F1, macro-F1 and
/// LexGLUE macro-F1.
///
/// Each of `resamples` resamples draws `truth.len()` examples with
/// replacement (from [`SplitMix64`] seeded with `seed`, so the result is a
/// function of the inputs and the seed) and scores them exactly as
/// [`metrics::evaluate`] would; the interval runs from the 2.5th to the
/// 97.5th percentile of the resampled scores, linearly interpolated. In a
/// resample missing every example of a label, that label's F1 is 0 by the
/// `zero_division=0` convention, which widens the interval of macro-F1 for
/// rare labels, as it should.
///
/// Shapes are checked as by [`metrics::evaluate`]. With no examples or no
/// resamples there is nothing to resample, and each interval is the point
/// estimate alone. Cost: O(resamples · examples · labels) additions.
pub fn bootstrap_intervals(
    names: &[String],
    truth: &[Vec<bool>],
    predicted: &[Vec<bool>],
    resamples: usize,
    seed: u64,
) -> Result<Intervals, MetricsError> {
    let each_alone: Vec<usize> = (0..truth.len()).collect();
    bootstrap_intervals_by_group(names, truth, predicted, &each_alone, resamples, seed)
}

/// [`bootstrap_intervals`] that resamples whole groups (`group_of[i]` is
/// example `i`'s group, say its document) instead of examples. Provisions of
/// one treaty or sentences of one company's terms are not independent draws:
/// a model's errors cluster by document, and a new user brings new
/// documents, so an interval that resamples documents says how far a figure
/// may move on other documents. Groups are numbered in order of first
/// appearance; `group_of` must be as long as `truth`.
pub fn bootstrap_intervals_by_group(
    names: &[String],
    truth: &[Vec<bool>],
    predicted: &[Vec<bool>],
    group_of: &[usize],
    resamples: usize,
    seed: u64,
) -> Result<Intervals, MetricsError> {
    let point = metrics::evaluate(names, truth, predicted)?;
    if group_of.len() != truth.len() {
        return Err(MetricsError::GroupCount { examples: truth.len(), groups: group_of.len() });
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index_of: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (example, &group) in group_of.iter().enumerate() {
        let index = *index_of.entry(group).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(example);
    }
    if groups.is_empty() || resamples == 0 {
        let at = |x: f64| Interval { low: x, high: x };
        return Ok(Intervals {
            resamples: 0,
            units: groups.len(),
            seed,
            micro_f1: at(point.micro_f1),
            macro_f1: at(point.macro_f1),
            lexglue_macro_f1: at(point.lexglue_macro_f1),
        });
    }
    let indicators = Indicators::new(names.len(), truth, predicted);
    let mut rng = SplitMix64::new(seed);
    let mut draws = Vec::with_capacity(truth.len());
    let mut counts = vec![0usize; 3 * (names.len() + 1)];
    let mut micro = Vec::with_capacity(resamples);
    let mut macro_ = Vec::with_capacity(resamples);
    let mut lexglue = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        draw(&mut rng, &groups, &mut draws);
        let f = indicators.figures(&draws, &mut counts);
        micro.push(f.micro_f1);
        macro_.push(f.macro_f1);
        lexglue.push(f.lexglue_macro_f1);
    }
    Ok(Intervals {
        resamples,
        units: groups.len(),
        seed,
        micro_f1: interval(&mut micro),
        macro_f1: interval(&mut macro_),
        lexglue_macro_f1: interval(&mut lexglue),
    })
}

#[cfg(test)]
mod tests;
