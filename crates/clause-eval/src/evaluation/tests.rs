//! Tests of the evaluation figures.

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn bools(s: &str) -> Vec<bool> {
    s.chars().map(|c| c == 'T').collect()
}

#[test]
fn auc_of_perfect_reversed_and_tied_rankings() {
    let truth = bools("FFTT");
    assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &truth), Some(1.0));
    assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &truth), Some(0.0));
    // One threshold: the curve is the diagonal from (0,0) to (1,1).
    assert_eq!(roc_auc(&[0.5; 4], &truth), Some(0.5));
}

#[test]
fn auc_worked_examples() {
    // Positives 0.35, 0.8; negatives 0.1, 0.4. Pairs ranked right:
    // 0.35>0.1, 0.8>0.1, 0.8>0.4; wrong: 0.35<0.4. AUC = 3/4.
    assert_eq!(roc_auc(&[0.1, 0.4, 0.35, 0.8], &bools("FFTT")), Some(0.75));
    // With ties. Positives 0.9, 0.5; negatives 0.5, 0.5, 0.1.
    // 0.9 beats all three negatives: 3. 0.5 ties two (1/2 each) and beats
    // 0.1: 2. AUC = 5 / (2·3) = 5/6.
    // As trapezoids: points (fpr, tpr) (0,0) → (0,1/2) → (2/3,1) → (1,1);
    // area = 2/3 · (1/2 + 1)/2 + 1/3 · 1 = 1/2 + 1/3 = 5/6.
    let auc = roc_auc(&[0.9, 0.5, 0.5, 0.5, 0.1], &bools("TTFFF")).expect("defined");
    assert!(close(auc, 5.0 / 6.0), "{auc}");
    // Order inside a tied group does not matter.
    let auc2 = roc_auc(&[0.5, 0.1, 0.5, 0.9, 0.5], &bools("FFTTF")).expect("defined");
    assert!(close(auc2, 5.0 / 6.0), "{auc2}");
    // Positives 0.9, 0.5, 0.1; negatives 0.5, 0.5.
    // 0.9: 2; 0.5: 1/2 + 1/2 = 1; 0.1: 0. AUC = 3/6.
    let auc3 = roc_auc(&[0.9, 0.5, 0.5, 0.5, 0.1], &bools("TTFFT")).expect("defined");
    assert!(close(auc3, 0.5), "{auc3}");
}

#[test]
fn auc_undefined_cases_and_nan() {
    assert_eq!(roc_auc(&[0.1, 0.9], &bools("TT")), None);
    assert_eq!(roc_auc(&[0.1, 0.9], &bools("FF")), None);
    assert_eq!(roc_auc(&[], &[]), None);
    assert_eq!(roc_auc(&[0.1], &bools("TF")), None);
    // NaN is 0.0: it ties the negative at 0.0 and loses to 0.5.
    // Positives NaN(=0), 0.7; negatives 0.0, 0.5.
    // NaN: 1/2 (tie with 0.0); 0.7: 2. AUC = 2.5/4 = 0.625.
    assert_eq!(roc_auc(&[f32::NAN, 0.7, 0.0, 0.5], &bools("TTFF")), Some(0.625));
    // -0.0 and 0.0 tie.
    assert_eq!(roc_auc(&[-0.0, 0.0], &bools("TF")), Some(0.5));
}

#[test]
fn average_precision_worked_examples() {
    // Descending: 0.8 T (P 1, R 1/2), 0.4 F (P 1/2, R 1/2),
    // 0.35 T (P 2/3, R 1), 0.1 F (P 1/2, R 1).
    // AP = 1/2·1 + 0 + 1/2·2/3 + 0 = 5/6 = 0.8333…
    let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &bools("FFTT")).expect("defined");
    assert!(close(ap, 5.0 / 6.0), "{ap}");
    // Ties as one threshold. Descending groups:
    //   0.9 {T}      -> tp 1, fp 0: P 1,   R 1/3
    //   0.5 {T,F,F}  -> tp 2, fp 2: P 1/2, R 2/3
    //   0.1 {T}      -> tp 3, fp 2: P 3/5, R 1
    // AP = 1/3·1 + 1/3·1/2 + 1/3·3/5 = (1 + 0.5 + 0.6)/3 = 0.7.
    let ap = average_precision(&[0.9, 0.5, 0.5, 0.5, 0.1], &bools("TTFFT")).expect("defined");
    assert!(close(ap, 0.7), "{ap}");
    // Had the tie been broken positive-first it would be
    // 1/3 + 1/3·1 + 1/3·3/5 = 0.8666…; grouped, the order is irrelevant.
    let ap = average_precision(&[0.5, 0.1, 0.5, 0.9, 0.5], &bools("FTFTT")).expect("defined");
    assert!(close(ap, 0.7), "{ap}");
    //   0.9 {T}        -> P 1,   R 1/2
    //   0.5 {T,F,F}    -> P 1/2, R 1
    // AP = 1/2·1 + 1/2·1/2 = 0.75.
    let ap = average_precision(&[0.9, 0.5, 0.5, 0.5, 0.1], &bools("TTFFF")).expect("defined");
    assert!(close(ap, 0.75), "{ap}");
}

#[test]
fn average_precision_edge_cases() {
    assert_eq!(average_precision(&[0.1, 0.9], &bools("TT")), Some(1.0));
    // All tied: one threshold, P = prevalence, R = 1.
    assert_eq!(average_precision(&[0.5; 4], &bools("TFFF")), Some(0.25));
    assert_eq!(average_precision(&[0.9, 0.1], &bools("FT")), Some(0.5));
    assert_eq!(average_precision(&[0.1, 0.9], &bools("FF")), None);
    assert_eq!(average_precision(&[], &[]), None);
    assert_eq!(average_precision(&[0.1, 0.2], &bools("T")), None);
}

#[test]
fn ranking_matches_brute_force_definitions() {
    // Scores on a coarse grid so that many are tied.
    let mut rng = SplitMix64::new(17);
    for _ in 0..20 {
        let len = 1 + rng.below(40);
        let scores: Vec<f32> = (0..len).map(|_| rng.below(6) as f32 / 5.0).collect();
        let truth: Vec<bool> = (0..len).map(|_| rng.next_f32() < 0.4).collect();
        let pos: Vec<f32> = scores.iter().zip(&truth).filter(|(_, t)| **t).map(|(s, _)| *s).collect();
        let neg: Vec<f32> = scores.iter().zip(&truth).filter(|(_, t)| !**t).map(|(s, _)| *s).collect();
        // Mann–Whitney: a won pair counts 1, a tie 1/2.
        let wins: f64 = pos
            .iter()
            .flat_map(|p| {
                neg.iter().map(move |n| {
                    if p > n {
                        1.0
                    } else if p == n {
                        0.5
                    } else {
                        0.0
                    }
                })
            })
            .sum();
        let expected = (!pos.is_empty() && !neg.is_empty()).then(|| wins / (pos.len() * neg.len()) as f64);
        match (roc_auc(&scores, &truth), expected) {
            (Some(a), Some(b)) => assert!(close(a, b), "{a} {b}"),
            (a, b) => assert_eq!(a, b),
        }
        // AP straight from the definition, one term per distinct score.
        let mut thresholds = scores.clone();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let (mut ap, mut recall_before) = (0.0, 0.0);
        for t in thresholds {
            let predicted = scores.iter().filter(|&&s| s >= t).count();
            let tp = pos.iter().filter(|&&s| s >= t).count();
            let recall = tp as f64 / pos.len() as f64;
            ap += (recall - recall_before) * tp as f64 / predicted as f64;
            recall_before = recall;
        }
        match average_precision(&scores, &truth) {
            Some(got) => assert!(close(got, ap), "{got} {ap}"),
            None => assert!(pos.is_empty()),
        }
    }
}

#[test]
fn ranking_metrics_per_column() {
    // Column a: the 0.1/0.4/0.35/0.8 example (AUC 3/4, AP 5/6).
    // Column b: no positive, so both are undefined.
    let probs = vec![vec![0.1, 0.2], vec![0.4, 0.3], vec![0.35, 0.9], vec![0.8, 0.1]];
    let truth: Vec<Vec<bool>> = bools("FFTT").into_iter().map(|t| vec![t, false]).collect();
    let got = ranking_metrics(&names(&["a", "b"]), &probs, &truth).expect("shapes");
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].label.as_str(), got[0].roc_auc), ("a", Some(0.75)));
    assert!(close(got[0].average_precision.expect("defined"), 5.0 / 6.0));
    assert_eq!(got[1], RankingMetrics { label: "b".into(), roc_auc: None, average_precision: None });
    let json = serde_json::to_string(&got).expect("serialize");
    let back: Vec<RankingMetrics> = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, got);
}

#[test]
fn shape_errors() {
    let n = names(&["a", "b"]);
    let probs = vec![vec![0.1, 0.2], vec![0.3, 0.4]];
    let truth = vec![vec![true, false], vec![false, true]];
    assert_eq!(ranking_metrics(&n, &probs[..1], &truth), Err(MetricsError::ExampleCount { truth: 2, predicted: 1 }));
    let short = vec![vec![0.1, 0.2], vec![0.3]];
    assert_eq!(
        ranking_metrics(&n, &short, &truth),
        Err(MetricsError::LabelCount { which: "probabilities", example: 1, expected: 2, actual: 1 })
    );
    let short_truth = vec![vec![true, false], vec![true]];
    assert!(matches!(
        ranking_metrics(&n, &probs, &short_truth),
        Err(MetricsError::LabelCount { which: "truth", example: 1, .. })
    ));
    assert!(matches!(calibration(&short, &truth, 10), Err(MetricsError::LabelCount { example: 1, .. })));
    assert!(matches!(
        expected_calibration_error(&probs, &truth[..1], 10),
        Err(MetricsError::ExampleCount { truth: 1, predicted: 2 })
    ));
    let pred = vec![vec![true, false]];
    assert_eq!(
        bootstrap_intervals(&n, &truth, &pred, 10, 1),
        Err(MetricsError::ExampleCount { truth: 2, predicted: 1 })
    );
    let pred = vec![vec![true, false], vec![true, false, true]];
    assert!(matches!(
        bootstrap_intervals(&n, &truth, &pred, 10, 1),
        Err(MetricsError::LabelCount { which: "predicted", example: 1, .. })
    ));
}

#[test]
fn perfectly_calibrated_bins_have_zero_error() {
    // 4 bins; every value is dyadic, so means and fractions are exact.
    //   [0, 0.25):    0.0 ×2, none true      -> mean 0,    fraction 0
    //   [0.25, 0.5):  0.25 ×4, one true      -> mean 1/4,  fraction 1/4
    //   [0.5, 0.75):  0.5 ×2, one true       -> mean 1/2,  fraction 1/2
    //   [0.75, 1]:    0.75 ×4, three true    -> mean 3/4,  fraction 3/4
    let probs = vec![vec![0.0, 0.25, 0.75], vec![0.0, 0.25, 0.75], vec![0.5, 0.25, 0.75], vec![0.5, 0.25, 0.75]];
    let truth =
        vec![vec![false, true, true], vec![false, false, true], vec![true, false, true], vec![false, false, false]];
    let c = calibration(&probs, &truth, 4).expect("shapes");
    assert_eq!(c.total, 12);
    assert_eq!(c.expected_calibration_error, 0.0);
    let table: Vec<(f64, f64, usize, f64, f64)> =
        c.bins.iter().map(|b| (b.low, b.high, b.count, b.mean_probability, b.fraction_positive)).collect();
    assert_eq!(
        table,
        [(0.0, 0.25, 2, 0.0, 0.0), (0.25, 0.5, 4, 0.25, 0.25), (0.5, 0.75, 2, 0.5, 0.5), (0.75, 1.0, 4, 0.75, 0.75)]
    );
    assert_eq!(expected_calibration_error(&probs, &truth, 4), Ok(0.0));
}

#[test]
fn calibration_worked_example() {
    // 2 bins over six (example, label) pairs:
    //   [0, 0.5):  0.25 F, 0.125 T             -> count 2, mean 0.1875,
    //              fraction 1/2, gap 0.3125
    //   [0.5, 1]:  0.75 T, 1.0 T, 0.75 F, 0.5 F -> count 4, mean 3/4,
    //              fraction 1/2, gap 0.25 (1.0 lands in the last bin,
    //              0.5 on the lower edge of the upper bin)
    // ECE = 2/6 · 0.3125 + 4/6 · 0.25 = 1.625 / 6 = 0.270833…
    let probs = vec![vec![0.25, 0.125, 0.75], vec![1.0, 0.75, 0.5]];
    let truth = vec![vec![false, true, true], vec![true, false, false]];
    let c = calibration(&probs, &truth, 2).expect("shapes");
    assert!(close(c.expected_calibration_error, 1.625 / 6.0), "{}", c.expected_calibration_error);
    assert_eq!(c.bins.len(), 2);
    assert_eq!((c.bins[0].count, c.bins[0].mean_probability, c.bins[0].fraction_positive), (2, 0.1875, 0.5));
    assert_eq!((c.bins[1].count, c.bins[1].mean_probability, c.bins[1].fraction_positive), (4, 0.75, 0.5));
    let json = serde_json::to_string(&c).expect("serialize");
    let back: Calibration = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, c);
}

#[test]
fn calibration_edge_cases() {
    // Nothing to count.
    let c = calibration(&[], &[], 10).expect("shapes");
    assert_eq!((c.total, c.expected_calibration_error, c.bins.len()), (0, 0.0, 10));
    assert!(c.bins.iter().all(|b| (b.count, b.mean_probability, b.fraction_positive) == (0, 0.0, 0.0)));
    // NaN counts as 0.0 and out-of-range values are clamped: 1.5 -> 1.0
    // in the last bin, -0.5 -> 0.0 in the first.
    let probs = vec![vec![f32::NAN, 1.5, -0.5]];
    let truth = vec![vec![false, true, false]];
    let c = calibration(&probs, &truth, 3).expect("shapes");
    let counts: Vec<usize> = c.bins.iter().map(|b| b.count).collect();
    assert_eq!(counts, [2, 0, 1]);
    assert_eq!(c.bins[2].mean_probability, 1.0);
    assert_eq!(c.expected_calibration_error, 0.0);
    // Zero bins means one bin: |mean 0.5 − fraction 0| = 0.5.
    let c = calibration(&[vec![0.25, 0.75]], &[vec![false, false]], 0).expect("shapes");
    assert_eq!((c.bins.len(), c.expected_calibration_error), (1, 0.5));
    // A value just below an edge stays in the lower bin.
    let below = 0.5f32.next_down();
    let c = calibration(&[vec![below, 0.5]], &[vec![false, false]], 2).expect("shapes");
    assert_eq!((c.bins[0].count, c.bins[1].count), (1, 1));
}

/// Noisy predictions of `labels` labels for `examples` examples: each
/// label is true with probability `rate` and each prediction is flipped
/// with probability `noise`.
fn noisy(examples: usize, labels: usize, rate: f32, noise: f32, seed: u64) -> (Vec<Vec<bool>>, Vec<Vec<bool>>) {
    let mut rng = SplitMix64::new(seed);
    let truth: Vec<Vec<bool>> = (0..examples).map(|_| (0..labels).map(|_| rng.next_f32() < rate).collect()).collect();
    let predicted = truth.iter().map(|row| row.iter().map(|&t| t != (rng.next_f32() < noise)).collect()).collect();
    (truth, predicted)
}

fn label_names(labels: usize) -> Vec<String> {
    (0..labels).map(|j| format!("l{j}")).collect()
}

#[test]
fn resampled_figures_equal_evaluate() {
    let (truth, predicted) = noisy(97, 5, 0.15, 0.1, 3);
    let n = label_names(5);
    let indicators = Indicators::new(5, &truth, &predicted);
    let mut counts = vec![0usize; 3 * 6];
    let mut rng = SplitMix64::new(11);
    let mut draws = Vec::new();
    let each_alone: Vec<Vec<usize>> = (0..truth.len()).map(|i| vec![i]).collect();
    for _ in 0..50 {
        draw(&mut rng, &each_alone, &mut draws);
        let got = indicators.figures(&draws, &mut counts);
        let t: Vec<Vec<bool>> = draws.iter().map(|&i| truth[i].clone()).collect();
        let p: Vec<Vec<bool>> = draws.iter().map(|&i| predicted[i].clone()).collect();
        let m = metrics::evaluate(&n, &t, &p).expect("evaluate");
        // Bit-for-bit, not approximately.
        assert_eq!(got, Figures { micro_f1: m.micro_f1, macro_f1: m.macro_f1, lexglue_macro_f1: m.lexglue_macro_f1 });
    }
    // And the identity resample is the point estimate.
    let all: Vec<usize> = (0..truth.len()).collect();
    let m = metrics::evaluate(&n, &truth, &predicted).expect("evaluate");
    let got = indicators.figures(&all, &mut counts);
    assert_eq!((got.micro_f1, got.macro_f1, got.lexglue_macro_f1), (m.micro_f1, m.macro_f1, m.lexglue_macro_f1));
}

#[test]
fn bootstrap_is_deterministic_and_brackets_the_estimate() {
    let (truth, predicted) = noisy(300, 4, 0.2, 0.1, 7);
    let n = label_names(4);
    let a = bootstrap_intervals(&n, &truth, &predicted, 400, 42).expect("shapes");
    let b = bootstrap_intervals(&n, &truth, &predicted, 400, 42).expect("shapes");
    assert_eq!(a, b);
    let c = bootstrap_intervals(&n, &truth, &predicted, 400, 43).expect("shapes");
    assert_ne!(a, c);
    assert_eq!((a.resamples, a.seed), (400, 42));
    let m = metrics::evaluate(&n, &truth, &predicted).expect("evaluate");
    for (interval, point) in
        [(a.micro_f1, m.micro_f1), (a.macro_f1, m.macro_f1), (a.lexglue_macro_f1, m.lexglue_macro_f1)]
    {
        assert!(interval.low <= interval.high, "{interval:?}");
        assert!(interval.contains(point), "{interval:?} {point}");
        // 300 examples at ~0.7 F1: a real, but not absurd, spread.
        assert!(interval.high - interval.low > 0.01 && interval.high - interval.low < 0.3, "{interval:?}");
        assert!((0.0..=1.0).contains(&interval.low) && (0.0..=1.0).contains(&interval.high));
    }
    let json = serde_json::to_string(&a).expect("serialize");
    let back: Intervals = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, a);
}

#[test]
fn bootstrap_of_perfect_predictions_is_one() {
    // Every pattern, including no label, 15 times: a resample of 60
    // missing a whole pattern has probability ~4·(3/4)^60 ≈ 1e-7, and
    // the seed is fixed, so every resample scores exactly 1.
    let patterns = [vec![true, false], vec![false, true], vec![true, true], vec![false, false]];
    let truth: Vec<Vec<bool>> = patterns.iter().cycle().take(60).cloned().collect();
    let got = bootstrap_intervals(&names(&["a", "b"]), &truth, &truth, 200, 5).expect("shapes");
    let one = Interval { low: 1.0, high: 1.0 };
    assert_eq!((got.micro_f1, got.macro_f1, got.lexglue_macro_f1), (one, one, one));
}

#[test]
fn bootstrap_without_resamples_or_examples_is_the_point_estimate() {
    let (truth, predicted) = noisy(20, 2, 0.3, 0.2, 1);
    let n = label_names(2);
    let m = metrics::evaluate(&n, &truth, &predicted).expect("evaluate");
    let got = bootstrap_intervals(&n, &truth, &predicted, 0, 9).expect("shapes");
    assert_eq!(got.micro_f1, Interval { low: m.micro_f1, high: m.micro_f1 });
    assert_eq!(got.lexglue_macro_f1, Interval { low: m.lexglue_macro_f1, high: m.lexglue_macro_f1 });
    let got = bootstrap_intervals(&n, &[], &[], 100, 9).expect("shapes");
    assert_eq!((got.resamples, got.macro_f1), (0, Interval { low: 0.0, high: 0.0 }));
}

#[test]
fn percentile_interpolates_linearly() {
    // Positions q·(n−1): 0.025·4 = 0.1 -> 1 + 0.1·1; 0.975·4 = 3.9 -> 4 + 0.9·1.
    let values = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert!(close(percentile(&values, INTERVAL_LOW), 1.1));
    assert!(close(percentile(&values, INTERVAL_HIGH), 4.9));
    assert_eq!(percentile(&[0.5], INTERVAL_HIGH), 0.5);
    let mut unsorted = [5.0, 1.0, 3.0, 2.0, 4.0];
    let i = interval(&mut unsorted);
    assert!(close(i.low, 1.1) && close(i.high, 4.9), "{i:?}");
}

#[test]
fn a_bootstrap_by_document_draws_whole_documents() {
    let names = vec!["a".to_string()];
    // Two documents: the model is right on every example of the first and
    // wrong on every example of the second.
    let truth: Vec<Vec<bool>> = (0..20).map(|_| vec![true]).collect();
    let predicted: Vec<Vec<bool>> = (0..20).map(|i| vec![i < 10]).collect();
    let documents: Vec<usize> = (0..20).map(|i| usize::from(i >= 10)).collect();
    let by_document = bootstrap_intervals_by_group(&names, &truth, &predicted, &documents, 400, 3).expect("grouped");
    assert_eq!(by_document.units, 2);
    // A resample holds zero, one or two copies of the right document, so
    // its micro-F1 is 0, 2/3 or 1: the interval spans them all.
    assert_eq!((by_document.micro_f1.low, by_document.micro_f1.high), (0.0, 1.0));
    let by_example = bootstrap_intervals(&names, &truth, &predicted, 400, 3).expect("examples");
    assert_eq!(by_example.units, 20);
    assert!(by_example.micro_f1.low > 0.3 && by_example.micro_f1.high < 0.9, "{by_example:?}");
    // Each example its own group is the example bootstrap.
    let alone: Vec<usize> = (0..20).collect();
    assert_eq!(bootstrap_intervals_by_group(&names, &truth, &predicted, &alone, 400, 3).expect("alone"), by_example);
    let err = bootstrap_intervals_by_group(&names, &truth, &predicted, &documents[..3], 400, 3).expect_err("short");
    assert_eq!(err, MetricsError::GroupCount { examples: 20, groups: 3 });
}

#[test]
fn calibration_error_per_label_scores_each_label_alone() {
    // Label 0 is perfectly calibrated; label 1 scores 0.9 where nothing is true.
    let probabilities = vec![vec![1.0, 0.9], vec![0.0, 0.9]];
    let truth = vec![vec![true, false], vec![false, false]];
    let errors = expected_calibration_error_per_label(&probabilities, &truth, 10).expect("shapes");
    assert_eq!(errors.len(), 2);
    assert!(errors[0].abs() < 1e-9, "{errors:?}");
    assert!((errors[1] - 0.9).abs() < 1e-6, "{errors:?}");
    let pooled = expected_calibration_error(&probabilities, &truth, 10).expect("shapes");
    assert!(pooled < errors[1], "the pooled figure hides label 1: {pooled}");
}
