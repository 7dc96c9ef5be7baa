//! Fine-tune a pretrained encoder into a multi-label clause classifier.
//!
//! [`trainer::train`] runs the loop: weighted binary cross-entropy
//! ([`loss`]) because rare labels are the point of this project and an
//! unweighted loss lets a model ignore them; AdamW with clipping ([`optim`]);
//! warm-up and decay ([`schedule`]); length-bucketed batches ([`batches`]);
//! validation, threshold tuning and early stopping every epoch; atomic
//! checkpoints ([`checkpoint`]); and a Hugging Face-compatible model
//! directory at the end ([`export`]). [`ensemble::train_ensemble`] trains
//! several such runs and averages them.

pub mod augment;
pub mod batches;
pub mod checkpoint;
pub mod config;
pub mod cross_validate;
pub mod ensemble;
pub mod export;
pub mod fixtures;
pub mod lexical;
pub mod loss;
pub mod optim;
pub mod pause;
pub mod refit;
pub mod schedule;
pub mod step;
pub mod trainer;

use std::path::PathBuf;

use clause_data::example::Example;
use clause_infer::input::Passage;

pub use config::TrainConfig;

/// Errors of a training run, naming the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A training configuration is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The config file (or `--flag` for command-line values).
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The base model directory is incomplete or inconsistent.
    #[error("base model {path}: {message}")]
    BaseModel {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        message: String,
    },
    /// A checkpoint cannot be resumed from.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The dataset cannot be trained on.
    #[error("{0}")]
    Data(String),
    /// From the model crate.
    #[error(transparent)]
    Model(#[from] clause_infer::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The passages of `examples`, as every reader takes them.
pub(crate) fn passages(examples: &[Example]) -> Vec<Passage<'_>> {
    examples.iter().map(Example::passage).collect()
}

/// Whether each of `examples` carries each of `labels` (`[example][label]`).
pub(crate) fn truth(examples: &[Example], labels: &[String]) -> Vec<Vec<bool>> {
    examples.iter().map(|e| labels.iter().map(|l| e.labels.contains(l)).collect()).collect()
}

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

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
