//! Ensembles: several runs that differ only in their seeds, averaged.
//!
//! Runs of one recipe that differ only in their random streams (data order,
//! dropout, the new head's weights) land several points apart on test, and
//! a validation split of a hundred-odd provisions cannot say which run is
//! the better one. Averaging their probabilities takes much of that
//! difference out. Each member is a whole run of [`train`], with its own
//! early stopping and its own checkpoints, written as a complete model
//! directory under `<out>/members/<k>/`; the ensemble's thresholds are tuned
//! on the members' mean validation probabilities
//! ([`clause_infer::classifier::mean_probabilities`], the function
//! inference averages with), and the test split is scored once, on that
//! mean. The top-level directory keeps the Hugging Face layout with the
//! first member's weights, so `transformers` loads one member; `clause`
//! loads them all from `clause.json`'s `ensemble`.

use std::path::{Path, PathBuf};

use clause_data::example::Example;
use clause_eval::calibration::apply_per_label;
use clause_eval::metrics::{decide, evaluate};
use clause_infer::classifier::{BatchPlan, Classifier, mean_probabilities};

use crate::checkpoint::checkpoint_dir;
use crate::export::{EnsembleMember, ModelCard, TrainedCard, read_trained_card, write_ensemble_dir};
use crate::refit::{Fitted, ScoresAndMargins, calibrate_and_tune};
use crate::trainer::{Observer, TrainData, TrainOptions, TrainOutcome, model_labels, train};
use crate::{Error, passages, truth};

/// The directory of member `k` (1-based) of an ensemble written to `out`.
pub fn member_dir(out: &Path, k: usize) -> PathBuf {
    out.join("members").join(k.to_string())
}

/// Train `options.config.ensemble` models and write their ensemble to
/// `options.out`; with 1, this is [`train`]. With `options.resume`, members
/// already written are kept, the one a checkpoint was left for resumes, and
/// the rest start afresh, so the result equals an uninterrupted run's.
pub fn train_ensemble(
    data: &TrainData,
    options: &TrainOptions,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome, Error> {
    let members = options.config.ensemble;
    if members <= 1 {
        return train(data, options, observer);
    }
    // Members are selected on validation; the test split is the ensemble's
    // to score, once.
    let member_data = TrainData {
        dataset: data.dataset.clone(),
        manifest_sha256: data.manifest_sha256.clone(),
        labels: data.labels.clone(),
        train: data.train.clone(),
        validation: data.validation.clone(),
        test: Vec::new(),
        rationales: data.rationales.clone(),
        written: data.written.clone(),
        unit: data.unit,
    };
    let mut cards = Vec::with_capacity(members);
    for k in 1..=members {
        let dir = member_dir(&options.out, k);
        let finished = dir.join(clause_infer::card::CARD_FILE).is_file() && !checkpoint_dir(&dir).exists();
        if options.resume && finished {
            observer.member_started(k, members, true);
            cards.push(read_trained_card(&dir)?);
            continue;
        }
        observer.member_started(k, members, false);
        let mut config = options.config.clone();
        config.seed = options.config.seed.wrapping_add(k as u64 - 1);
        config.ensemble = 1;
        let member_options = TrainOptions {
            base: options.base.clone(),
            base_source: options.base_source.clone(),
            out: dir.clone(),
            config,
            device: options.device.clone(),
            resume: options.resume && checkpoint_dir(&dir).exists(),
            interrupt: options.interrupt.clone(),
        };
        match train(&member_data, &member_options, observer)? {
            TrainOutcome::Finished(card) => cards.push(*card),
            interrupted @ TrainOutcome::Interrupted { .. } => return Ok(interrupted),
        }
    }
    let card = combine(data, options, &cards)?;
    write_ensemble_dir(&options.out, &member_dir(&options.out, 1), &card)?;
    Ok(TrainOutcome::Finished(Box::new(card)))
}

/// The ensemble's card: calibration fitted and thresholds tuned on the
/// members' mean raw validation scores, and validation and test scored on
/// that mean, calibrated.
fn combine(data: &TrainData, options: &TrainOptions, cards: &[TrainedCard]) -> Result<TrainedCard, Error> {
    let config = &options.config;
    let classifiers: Vec<Classifier> = (1..=cards.len())
        .map(|k| Classifier::load(&member_dir(&options.out, k), &options.device))
        .collect::<Result<_, _>>()?;
    let names: Vec<String> = data.labels.iter().map(|l| l.name.clone()).collect();
    let truth = |examples: &[Example]| truth(examples, &names);
    // The members' mean raw scores, and the lexical stage's margins (the
    // members share one stage: the same fit on the same data).
    let mean = |examples: &[Example]| -> Result<ScoresAndMargins, Error> {
        let passages = passages(examples);
        let plan = BatchPlan { batch_size: config.batch_size * 2, by_length: true };
        // As inference scores an ensemble: the members' mean for each
        // sequence, then the highest over a passage's sequences. (The mean of
        // each member's highest would differ where members peak on different
        // sentences.) The members share the base tokenizer and the reading.
        let views = classifiers.first().map(|c| c.views(&passages)).transpose()?.unwrap_or_default();
        let mut members = Vec::with_capacity(classifiers.len());
        for classifier in &classifiers {
            members.push(classifier.predict_ids(&views.ids, plan, &mut |_| {})?);
        }
        Ok((views.combine(&mean_probabilities(members)), views.margins))
    };
    let metrics = |probabilities: &[Vec<f32>], truth: &[Vec<bool>], thresholds: &[f32]| {
        evaluate(&names, truth, &decide(probabilities, thresholds)).map_err(|err| Error::Data(err.to_string()))
    };
    // Calibrated on the mean validation scores, thresholds tuned after.
    let validation_truth = truth(&data.validation);
    let (raw, margins) = mean(&data.validation)?;
    let Fitted { calibration, thresholds, scores: validation } =
        calibrate_and_tune(raw, &validation_truth, &margins, config.threshold_min_positives);
    let test = if data.test.is_empty() {
        None
    } else {
        let (mut test, test_margins) = mean(&data.test)?;
        apply_per_label(&mut test, &calibration, &test_margins);
        Some(metrics(&test, &truth(&data.test), &thresholds)?)
    };
    let first = &cards[0];
    let seconds: f64 = cards.iter().map(|c| c.training_seconds).sum();
    let sequences: f64 = cards.iter().map(|c| c.training_seconds * c.sequences_per_second).sum();
    Ok(TrainedCard {
        model: ModelCard {
            labels: model_labels(&data.labels, &thresholds, &calibration),
            ensemble: cards
                .iter()
                .enumerate()
                .map(|(index, card)| EnsembleMember {
                    dir: format!("members/{}", index + 1),
                    seed: card.training.seed,
                    best_epoch: card.best_epoch,
                    epochs: card.history.len(),
                    validation: Some(card.validation.clone()),
                })
                .collect(),
            ..first.model.clone()
        },
        training: config.clone(),
        best_epoch: 0,
        history: Vec::new(),
        validation: metrics(&validation, &validation_truth, &thresholds)?,
        test,
        training_seconds: seconds,
        sequences_per_second: sequences / seconds.max(1e-9),
        ..first.clone()
    })
}
