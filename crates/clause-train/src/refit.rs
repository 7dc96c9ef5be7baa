//! What follows the encoder: each label's calibration (with the lexical
//! stage's margin where the model has the stage) and its threshold. Training
//! fits them at its end ([`calibrate_and_tune`], for a run and for an
//! ensemble); [`refit`] fits them again, with a new lexical stage, on a
//! model already trained, which takes seconds where retraining the encoder
//! takes an hour: for models trained before the stage existed, and for
//! cross-validation folds whose weights were kept.

use std::path::Path;

use candle_core::Device;
use clause_data::example::Example;
use clause_eval::calibration::{Platt, apply_per_label, fit_per_label};
use clause_eval::metrics::{Metrics, decide, evaluate, tune_thresholds};
use clause_infer::classifier::{BatchPlan, Classifier};

use crate::augment::training_examples;
use crate::config::TrainConfig;
use crate::export::{TrainedCard, read_trained_card, write_lexical};
use crate::lexical::fit_stage;
use crate::trainer::{TrainData, model_labels};
use crate::{Error, passages, truth};

/// Raw scores and lexical margins of a set of passages
/// (`[passage][label]` each; no margins without a stage).
pub(crate) type ScoresAndMargins = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A label's calibration and threshold, fitted on validation.
pub struct Fitted {
    /// Each label's calibration (`None` where no fit was possible).
    pub calibration: Vec<Option<Platt>>,
    /// Each label's threshold, tuned on the calibrated scores.
    pub thresholds: Vec<f32>,
    /// The validation scores, calibrated.
    pub scores: Vec<Vec<f32>>,
}

/// Fit each label's calibration on `raw` validation scores (with the
/// lexical stage's `margins`, empty without a stage), then tune thresholds
/// on the calibrated scores: labels with fewer than `min_positives`
/// validation positives keep 0.5.
pub fn calibrate_and_tune(
    raw: Vec<Vec<f32>>,
    truth: &[Vec<bool>],
    margins: &[Vec<f32>],
    min_positives: usize,
) -> Fitted {
    let calibration = fit_per_label(&raw, truth, margins);
    let mut scores = raw;
    apply_per_label(&mut scores, &calibration, margins);
    let thresholds = tune_thresholds(&scores, truth, min_positives, 0.5);
    Fitted { calibration, thresholds, scores }
}

/// Fit again, on `data`'s splits, what follows the encoder of the model in
/// `dir` (a single model or an ensemble): the lexical stage where
/// `config.lexical` asks for one (else any is removed), each label's
/// calibration and threshold; score validation and test (where `data` has
/// one) as training would, and rewrite the stage's files and `clause.json`.
/// The encoder's weights are not touched.
pub fn refit(dir: &Path, data: &TrainData, config: &TrainConfig, device: &Device) -> Result<TrainedCard, Error> {
    let mut card = read_trained_card(dir)?;
    let classifier = Classifier::load(dir, device)?;
    let names: Vec<String> = data.labels.iter().map(|l| l.name.clone()).collect();
    let card_names: Vec<&str> = classifier.labels().iter().map(|l| l.name.as_str()).collect();
    if card_names != names.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(Error::Data(format!(
            "{}: the model's labels ({}) are not the dataset's ({})",
            dir.display(),
            card_names.join(", "),
            names.join(", ")
        )));
    }
    let truth = |examples: &[Example]| truth(examples, &names);
    // Fitted as training fits it, on the examples the encoder learnt from.
    let stage = config.lexical.then(|| {
        let train = training_examples(data, &names, config);
        fit_stage(
            &passages(&train),
            &truth(&train),
            &passages(&data.validation),
            &truth(&data.validation),
            config.reading,
        )
    });
    let plan = BatchPlan { batch_size: config.batch_size * 2, by_length: true };
    // The encoder's raw scores, and the new stage's margins (not those of
    // any stage the directory had).
    let raw_and_margins = |examples: &[Example]| -> Result<ScoresAndMargins, Error> {
        let passages = passages(examples);
        let views = classifier.views(&passages)?;
        let raw = classifier.raw_scores(&views, plan, &mut |_| {})?;
        Ok((raw, stage.as_ref().map(|s| s.margins(&passages)).unwrap_or_default()))
    };
    let metrics = |scores: &[Vec<f32>], truth: &[Vec<bool>], thresholds: &[f32]| -> Result<Metrics, Error> {
        evaluate(&names, truth, &decide(scores, thresholds)).map_err(|err| Error::Data(err.to_string()))
    };
    let validation_truth = truth(&data.validation);
    let (raw, margins) = raw_and_margins(&data.validation)?;
    let fitted = calibrate_and_tune(raw, &validation_truth, &margins, config.threshold_min_positives);
    card.validation = metrics(&fitted.scores, &validation_truth, &fitted.thresholds)?;
    card.test = if data.test.is_empty() {
        None
    } else {
        let (mut scores, margins) = raw_and_margins(&data.test)?;
        apply_per_label(&mut scores, &fitted.calibration, &margins);
        Some(metrics(&scores, &truth(&data.test), &fitted.thresholds)?)
    };
    card.model.labels = model_labels(&data.labels, &fitted.thresholds, &fitted.calibration);
    card.training.lexical = config.lexical;
    write_lexical(dir, stage.as_ref())?;
    clause_infer::card::write(dir, &card)?;
    Ok(card)
}
