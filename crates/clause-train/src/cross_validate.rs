//! Cross-validation: one model per fold of whole instruments, and an
//! out-of-fold prediction for every example.
//!
//! Each fold is trained as `clause train` trains the recipe (its settings,
//! its validation rule; see [`clause_data::folds`]), with the fold itself as
//! the test split. The fold's model then scores its held-out examples,
//! raw and calibrated, and decides them at its own thresholds; those rows
//! are written to `<out>/fold-<k>/predictions.jsonl`, and the same for the
//! fold's validation share to `validation-predictions.jsonl`. A fold whose
//! predictions are written is not trained again, so an interrupted run
//! continues where it stopped. The fold's weights are removed afterwards
//! unless kept: the predictions are the result.

use std::path::{Path, PathBuf};

use clause_data::example::Example;
use clause_data::split::Split;
use clause_eval::decision::flagged;
use clause_infer::classifier::{BatchPlan, Classifier};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::checkpoint::checkpoint_dir;
use crate::ensemble::train_ensemble;
use crate::io_error;
use crate::refit::refit;
use crate::trainer::{Observer, TrainData, TrainOptions, TrainOutcome};

/// The file of a fold's out-of-fold predictions.
pub const PREDICTIONS_FILE: &str = "predictions.jsonl";

/// The file of a fold model's predictions on its own validation share: not
/// out-of-fold (the share chose its epoch, calibration and thresholds), but
/// what a second stage stacked on the model would be fitted on, so that
/// such a stage can be tried on a finished run without training again.
pub const VALIDATION_PREDICTIONS_FILE: &str = "validation-predictions.jsonl";

/// One example's out-of-fold prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfFold {
    /// The example.
    pub id: String,
    /// Its document.
    pub document: String,
    /// Its fold (1-based).
    pub fold: usize,
    /// Its true labels.
    pub labels: Vec<String>,
    /// The labels the fold's model flags, at its thresholds.
    pub flagged: Vec<String>,
    /// Calibrated probabilities, in label order.
    pub scores: Vec<f32>,
    /// The encoder's scores before calibration.
    pub raw_scores: Vec<f32>,
    /// The fold's lexical stage's margins, in label order, which its
    /// calibration weighed; empty for a model without the stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lexical_margins: Vec<f32>,
}

/// How the examples divide: every example's fold, and each fold's splits.
pub struct FoldPlan {
    /// Folds.
    pub folds: usize,
    /// `splits[k][e]`: example `e`'s split when fold `k` (0-based) is held out.
    pub splits: Vec<Vec<Split>>,
}

/// The directory of fold `k` (1-based).
pub fn fold_dir(out: &Path, k: usize) -> PathBuf {
    out.join(format!("fold-{k}"))
}

/// What cross-validation ends with.
pub enum CrossValidation {
    /// Every example's out-of-fold prediction, in fold order.
    Finished(Vec<OutOfFold>),
    /// Stopped by an interrupt in fold `fold`; run again to continue.
    Interrupted {
        /// The fold (1-based).
        fold: usize,
    },
}

/// What [`cross_validate`] does with each fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoldWork {
    /// Train the folds not yet finished; `keep_models` keeps their weights.
    Train {
        /// Keep each fold's weights once its predictions are written.
        keep_models: bool,
    },
    /// Train nothing: return the predictions of the folds already finished.
    FinishedOnly,
    /// Train nothing: on every finished fold, whose weights must have been
    /// kept, fit again what follows the encoder ([`crate::refit::refit`])
    /// and predict again.
    Refit,
}

/// Train one model per fold of `plan` on `data`'s examples (`data.train`
/// holds them all; its other splits are ignored) and predict each fold's
/// held-out examples, or do less, as `work` says. `options.out` is the
/// run's directory.
pub fn cross_validate(
    data: &TrainData,
    plan: &FoldPlan,
    options: &TrainOptions,
    work: FoldWork,
    observer: &mut dyn Observer,
) -> Result<CrossValidation, Error> {
    let all = &data.train;
    let mut out = Vec::with_capacity(all.len());
    for k in 1..=plan.folds {
        let dir = fold_dir(&options.out, k);
        let predictions = dir.join(PREDICTIONS_FILE);
        let finished = predictions.is_file();
        match work {
            FoldWork::Refit if !finished => {
                return Err(Error::Data(format!(
                    "{}: fold {k} is not finished, so it cannot be refitted",
                    dir.display()
                )));
            }
            FoldWork::Refit if !dir.join("model.safetensors").is_file() => {
                return Err(Error::Data(format!(
                    "{}: fold {k}'s weights were not kept (--keep-fold-models), so it cannot be refitted",
                    dir.display()
                )));
            }
            FoldWork::Refit => {}
            _ if finished => {
                out.extend(read_predictions(&predictions)?);
                continue;
            }
            FoldWork::FinishedOnly => continue,
            FoldWork::Train { .. } => {}
        }
        let splits = &plan.splits[k - 1];
        let pick = |wanted: Split| -> Vec<Example> {
            all.iter().zip(splits).filter(|(_, s)| **s == wanted).map(|(e, _)| e.clone()).collect()
        };
        let fold_data = TrainData {
            dataset: data.dataset.clone(),
            manifest_sha256: data.manifest_sha256.clone(),
            labels: data.labels.clone(),
            train: pick(Split::Train),
            validation: pick(Split::Validation),
            test: Vec::new(),
            rationales: data.rationales.clone(),
            written: data.written.clone(),
            unit: data.unit,
        };
        let held_out = pick(Split::Test);
        tracing::info!(
            fold = k,
            train = fold_data.train.len(),
            validation = fold_data.validation.len(),
            held_out = held_out.len(),
            "fold"
        );
        let fold_options = TrainOptions {
            out: dir.clone(),
            resume: checkpoint_dir(&dir).exists() || dir.join("members").exists(),
            ..options.clone()
        };
        observer.fold_started(k, plan.folds, &held_out);
        if work == FoldWork::Refit {
            refit(&dir, &fold_data, &options.config, &options.device)?;
        } else if let TrainOutcome::Interrupted { .. } = train_ensemble(&fold_data, &fold_options, observer)? {
            return Ok(CrossValidation::Interrupted { fold: k });
        }
        let classifier = Classifier::load(&dir, &options.device)?;
        let validation_rows = predict_fold(&classifier, k, &fold_data.validation)?;
        write_predictions(&dir.join(VALIDATION_PREDICTIONS_FILE), &validation_rows)?;
        let rows = predict_fold(&classifier, k, &held_out)?;
        write_predictions(&predictions, &rows)?;
        if work == (FoldWork::Train { keep_models: false }) {
            remove_weights(&dir)?;
        }
        out.extend(rows);
    }
    Ok(CrossValidation::Finished(out))
}

/// The fold's model on `held_out`: the fold it held out, or its validation share.
fn predict_fold(classifier: &Classifier, fold: usize, held_out: &[Example]) -> Result<Vec<OutOfFold>, Error> {
    let passages = crate::passages(held_out);
    let views = classifier.views(&passages)?;
    let raw = classifier.raw_scores(&views, BatchPlan::default(), &mut |_| {})?;
    let mut calibrated = raw.clone();
    classifier.calibrate(&mut calibrated, &views);
    let mut margins = views.margins.into_iter();
    let thresholds = classifier.thresholds();
    let names: Vec<&str> = classifier.labels().iter().map(|l| l.name.as_str()).collect();
    Ok(held_out
        .iter()
        .zip(raw)
        .zip(calibrated)
        .map(|((example, raw_scores), scores)| OutOfFold {
            id: example.id.clone(),
            document: example.document.clone(),
            fold,
            labels: example.labels.clone(),
            flagged: flagged(&scores, &thresholds).into_iter().map(|j| names[j].to_string()).collect(),
            scores,
            raw_scores,
            lexical_margins: margins.next().unwrap_or_default(),
        })
        .collect())
}

fn write_predictions(path: &Path, rows: &[OutOfFold]) -> Result<(), Error> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row).map_err(|err| Error::Data(err.to_string()))?);
        text.push('\n');
    }
    clause_infer::card::write_atomically(path, text.as_bytes())?;
    Ok(())
}

/// A fold's predictions, as [`cross_validate`] wrote them.
pub fn read_predictions(path: &Path) -> Result<Vec<OutOfFold>, Error> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|err| Error::Data(format!("{}:{}: {err}", path.display(), index + 1)))
        })
        .collect()
}

/// Remove a fold model's weights, keeping its `clause.json` (settings,
/// thresholds, calibration and validation figures) as the record.
fn remove_weights(dir: &Path) -> Result<(), Error> {
    for file in ["model.safetensors", "tokenizer.json"] {
        let path = dir.join(file);
        if path.exists() {
            std::fs::remove_file(&path).map_err(io_error(&path))?;
        }
    }
    let members = dir.join("members");
    if members.exists() {
        std::fs::remove_dir_all(&members).map_err(io_error(&members))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_round_trip_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PREDICTIONS_FILE);
        let rows = vec![OutOfFold {
            id: "a:art1".into(),
            document: "a".into(),
            fold: 2,
            labels: vec!["x".into()],
            flagged: vec![],
            scores: vec![0.25],
            raw_scores: vec![0.5],
            lexical_margins: vec![-0.75],
        }];
        write_predictions(&path, &rows).expect("write");
        assert_eq!(read_predictions(&path).expect("read"), rows);
        std::fs::write(&path, "{}\n").expect("write");
        let err = read_predictions(&path).expect_err("bad").to_string();
        assert!(err.contains("predictions.jsonl:1"), "{err}");
    }
}
