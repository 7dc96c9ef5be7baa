//! Fitting the lexical stage (`clause_infer::lexical`): per label, a linear
//! SVM (squared hinge, L2, classes weighted to balance) over TF-IDF word
//! 1–3-grams, with the headings and the regularisation chosen on the
//! validation split, as `scripts/baseline-tfidf-svm` chooses them.
//!
//! The solver is dual coordinate descent (Hsieh et al., ICML 2008), the one
//! LIBLINEAR and scikit-learn's `LinearSVC` run for this loss: a few dozen
//! passes over sparse rows, no dependency. Its stage's margins then enter
//! each label's calibration (`clause_eval::calibration::fit_per_label`).

use clause_infer::input::Passage;
use clause_infer::lexical::{Features, LexicalStage, Vocabulary, stage_text};
use clause_infer::reading::Reading;
use clause_infer::rng::SplitMix64;
use rayon::prelude::*;

/// The settings tried, in order; the first with the best validation
/// micro-F1 is kept (the baseline script's grid).
const HEADINGS: [bool; 2] = [false, true];
const COSTS: [f64; 5] = [0.1, 0.3, 1.0, 3.0, 10.0];

/// The solver stops when the projected gradient's spread falls below this
/// (LIBLINEAR's criterion), or after [`MAX_PASSES`].
const TOLERANCE: f64 = 1e-3;
const MAX_PASSES: usize = 1000;

/// Seed of the order rows are visited in (the fit is the same for any
/// order up to the tolerance; a fixed one makes it repeatable).
const SEED: u64 = 20_261_207;

/// The stage fitted on `train`, with headings and C chosen on `validation`
/// (`truth[example][label]` beside each), reading as `reading` says (the
/// encoder's reading: a stage that reads sentences is scored on them, so
/// `train` should hold sentence examples, as
/// [`training_examples`](crate::augment::training_examples) makes them). Labels without a positive (or
/// without a negative) in `train` get zero weights and bias, so their margin
/// is 0 everywhere and calibration gives it no weight.
pub fn fit_stage(
    train: &[Passage<'_>],
    train_truth: &[Vec<bool>],
    validation: &[Passage<'_>],
    validation_truth: &[Vec<bool>],
    reading: Reading,
) -> LexicalStage {
    let mut best: Option<(f64, LexicalStage)> = None;
    for headings in HEADINGS {
        let texts: Vec<String> = train.iter().map(|p| stage_text(p, headings).into_owned()).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vocabulary = Vocabulary::fit(&refs);
        let rows: Vec<Features> = refs.par_iter().map(|t| vocabulary.features(t)).collect();
        for c in COSTS {
            let mut stage = fit_labels(&rows, train_truth, vocabulary.clone(), headings, c);
            stage.reading = reading;
            let micro = micro_f1(&stage.margins(validation), validation_truth);
            tracing::debug!(headings, c, micro, "lexical stage on validation");
            if best.as_ref().is_none_or(|(b, _)| micro > *b) {
                best = Some((micro, stage));
            }
        }
    }
    // The grid is not empty, so a setting was kept.
    best.map(|(_, stage)| stage).unwrap_or_else(|| unreachable!("the grid of settings is not empty"))
}

/// One SVM per label over `rows`.
fn fit_labels(rows: &[Features], truth: &[Vec<bool>], vocabulary: Vocabulary, headings: bool, c: f64) -> LexicalStage {
    let labels = truth.first().map_or(0, Vec::len);
    let terms = vocabulary.len();
    let fitted: Vec<(Vec<f32>, f32)> = (0..labels)
        .into_par_iter()
        .map(|j| {
            let y: Vec<bool> = truth.iter().map(|row| row[j]).collect();
            svm(rows, &y, terms, c).unwrap_or_else(|| (vec![0.0; terms], 0.0))
        })
        .collect();
    let (weights, biases) = fitted.into_iter().unzip();
    LexicalStage { headings, reading: Reading::Whole, c, vocabulary, weights, biases }
}

/// A linear SVM with squared hinge loss and L2 penalty, classes weighted
/// `n / (2 n_class)`, bias as a feature of value 1 (penalised, as in
/// LIBLINEAR): `(weights, bias)`, or `None` when `y` has one class only.
fn svm(rows: &[Features], y: &[bool], terms: usize, c: f64) -> Option<(Vec<f32>, f32)> {
    let n = rows.len();
    let positives = y.iter().filter(|&&t| t).count();
    if positives == 0 || positives == n {
        return None;
    }
    let cost = |t: bool| c * n as f64 / (2.0 * if t { positives } else { n - positives } as f64);
    // Dual of the squared hinge: a diagonal 1 / (2 C_i) joins each row's norm.
    let diagonal: Vec<f64> = y.iter().map(|&t| 0.5 / cost(t)).collect();
    let norms: Vec<f64> = rows
        .iter()
        .zip(&diagonal)
        .map(|(x, d)| x.iter().map(|&(_, v)| f64::from(v).powi(2)).sum::<f64>() + 1.0 + d)
        .collect();
    let sign = |t: bool| if t { 1.0 } else { -1.0 };
    let (mut w, mut bias) = (vec![0.0f64; terms], 0.0f64);
    let mut alpha = vec![0.0f64; n];
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(SEED);
    for _ in 0..MAX_PASSES {
        rng.shuffle(&mut order);
        let (mut high, mut low) = (f64::NEG_INFINITY, f64::INFINITY);
        for &i in &order {
            let s = sign(y[i]);
            let dot = rows[i].iter().map(|&(k, v)| w[k as usize] * f64::from(v)).sum::<f64>() + bias;
            let gradient = s * dot - 1.0 + diagonal[i] * alpha[i];
            let projected = if alpha[i] == 0.0 { gradient.min(0.0) } else { gradient };
            high = high.max(projected);
            low = low.min(projected);
            if projected.abs() > 1e-12 {
                let old = alpha[i];
                alpha[i] = (old - gradient / norms[i]).max(0.0);
                let step = (alpha[i] - old) * s;
                for &(k, v) in &rows[i] {
                    w[k as usize] += step * f64::from(v);
                }
                bias += step;
            }
        }
        if high - low < TOLERANCE {
            break;
        }
    }
    Some((w.into_iter().map(|x| x as f32).collect(), bias as f32))
}

/// Micro-F1 over all labels of flags where the margin is positive.
fn micro_f1(margins: &[Vec<f32>], truth: &[Vec<bool>]) -> f64 {
    let (mut tp, mut flagged, mut positives) = (0usize, 0usize, 0usize);
    for (row, truth_row) in margins.iter().zip(truth) {
        for (&m, &t) in row.iter().zip(truth_row) {
            tp += usize::from(m > 0.0 && t);
            flagged += usize::from(m > 0.0);
            positives += usize::from(t);
        }
    }
    if flagged + positives == 0 { 0.0 } else { 2.0 * tp as f64 / (flagged + positives) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts where label 0 is "intercept"/"surveillance" wording and label
    /// 1 never occurs, each under a title.
    fn corpus() -> (Vec<String>, Vec<Vec<bool>>) {
        let risky = ["authorities may intercept communications", "real-time surveillance of traffic data"];
        let benign = ["the annual report shall be published", "parties shall cooperate in good faith"];
        let (mut texts, mut truth) = (Vec::new(), Vec::new());
        for k in 0..12 {
            let (text, label) = if k % 3 == 0 { (risky[k % 2], true) } else { (benign[k % 2], false) };
            texts.push(format!("{text} number {k}"));
            truth.push(vec![label, false]);
        }
        (texts, truth)
    }

    #[test]
    fn the_svm_separates_what_its_words_separate_and_skips_one_class_labels() {
        let (texts, truth) = corpus();
        let passages: Vec<Passage<'_>> = texts.iter().map(|t| Passage::text(t)).collect();
        let stage = fit_stage(&passages, &truth, &passages, &truth, Reading::Whole);
        let margins = stage.margins(&passages);
        for (row, t) in margins.iter().zip(&truth) {
            assert_eq!(row[0] > 0.0, t[0], "{row:?}");
            assert_eq!(row[1], 0.0, "a label with no positive has no model");
        }
        let unseen = stage.margins(&[Passage::text("they intercept it"), Passage::text("a report")]);
        assert!(unseen[0][0] > unseen[1][0], "{unseen:?}");
        assert!(stage.weights[1].iter().all(|&w| w == 0.0) && stage.biases[1] == 0.0);
    }

    #[test]
    fn the_dual_solution_is_the_primal_optimum() {
        // At the optimum of 1/2 |w|^2 + sum C_i max(0, 1 - y_i w.x_i)^2 the
        // gradient w - sum 2 C_i y_i x_i max(0, 1 - y_i w.x_i) vanishes.
        let (texts, truth) = corpus();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vocabulary = Vocabulary::fit(&refs);
        let rows: Vec<Features> = refs.iter().map(|t| vocabulary.features(t)).collect();
        let y: Vec<bool> = truth.iter().map(|r| r[0]).collect();
        let c = 1.0;
        let (w, b) = svm(&rows, &y, vocabulary.len(), c).expect("two classes");
        let positives = y.iter().filter(|&&t| t).count() as f64;
        let n = y.len() as f64;
        let mut gradient: Vec<f64> = w.iter().map(|&x| f64::from(x)).collect();
        let mut gradient_bias = f64::from(b);
        for (x, &t) in rows.iter().zip(&y) {
            let s = if t { 1.0 } else { -1.0 };
            let cost = c * n / (2.0 * if t { positives } else { n - positives });
            let dot = x.iter().map(|&(k, v)| f64::from(w[k as usize]) * f64::from(v)).sum::<f64>() + f64::from(b);
            let slack = (1.0 - s * dot).max(0.0);
            for &(k, v) in x {
                gradient[k as usize] -= 2.0 * cost * s * slack * f64::from(v);
            }
            gradient_bias -= 2.0 * cost * s * slack;
        }
        let largest = gradient.iter().fold(gradient_bias.abs(), |m, g| m.max(g.abs()));
        assert!(largest < 1e-2, "gradient {largest}");
    }

    #[test]
    fn micro_f1_counts_positive_margins_as_flags() {
        let margins = vec![vec![1.0, -1.0], vec![0.5, 0.0]];
        let truth = vec![vec![true, true], vec![false, false]];
        // tp 1, flagged 2, positives 2.
        assert!((micro_f1(&margins, &truth) - 0.5).abs() < 1e-12);
        assert_eq!(micro_f1(&[vec![-1.0]], &[vec![false]]), 0.0);
    }
}
