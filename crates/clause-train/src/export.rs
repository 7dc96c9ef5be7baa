//! The trained model directory: Hugging Face layout plus `clause.json`.
//!
//! `config.json` is the base BERT config with `id2label`, `label2id`,
//! `problem_type: "multi_label_classification"` and the architecture
//! `BertForSequenceClassification`; `model.safetensors` uses that class's
//! tensor names; `tokenizer.json` is the base tokenizer. `clause.json` holds
//! what the Hugging Face files cannot: label descriptions, tuned thresholds,
//! pooling (a mean-pooled model has no pooler, which `transformers` would
//! silently initialise at random), provenance, configuration and metrics.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use clause_eval::metrics::Metrics;
use clause_infer::card::{self, save_tensors, write_atomically};
pub use clause_infer::card::{EnsembleMember, FORMAT_VERSION, ModelCard, ModelLabel};
use clause_infer::lexical::{LEXICAL_FILE, LEXICAL_WEIGHTS_FILE, LexicalStage};
use clause_infer::model::BertConfig;
use serde::{Deserialize, Serialize};

use crate::checkpoint::EpochRecord;
use crate::config::TrainConfig;
use crate::{Error, io_error};

/// `clause.json` as training writes it: the [`ModelCard`] every reader needs,
/// with provenance, configuration and metrics beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedCard {
    /// Labels, thresholds, input shape and ensemble members.
    #[serde(flatten)]
    pub model: ModelCard,
    /// The base model directory and its weights' sha256.
    pub base_model: BaseModel,
    /// The dataset trained on.
    pub dataset: DatasetRef,
    /// Hyper-parameters.
    pub training: TrainConfig,
    /// 1-based epoch whose weights were kept (0 for an ensemble: each
    /// member has its own, in `ensemble`).
    pub best_epoch: usize,
    /// Every epoch's record (empty for an ensemble: see its members' own
    /// `clause.json`).
    pub history: Vec<EpochRecord>,
    /// Validation metrics of the kept epoch.
    pub validation: Metrics,
    /// Test metrics, computed once at the end.
    pub test: Option<Metrics>,
    /// Training seconds, all epochs.
    pub training_seconds: f64,
    /// Mean training sequences per second.
    pub sequences_per_second: f64,
    /// Where it was trained (`cpu`, `cuda:0`).
    pub device: String,
    /// Tool versions.
    pub versions: HashMap<String, String>,
}

/// Provenance of the base model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseModel {
    /// Directory or hub id.
    pub source: String,
    /// sha256 of its `model.safetensors`.
    pub sha256: String,
}

/// Provenance of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// Its name.
    pub name: String,
    /// sha256 of its `manifest.json`.
    pub manifest_sha256: String,
}

/// Write the model directory `out`: each file to a temporary name, then
/// renamed, so a reader never sees a half-written file.
pub fn write_model_dir(
    out: &Path,
    config: &BertConfig,
    weights: &HashMap<String, Tensor>,
    tokenizer: &Path,
    lexical: Option<&LexicalStage>,
    card: &TrainedCard,
) -> Result<(), Error> {
    std::fs::create_dir_all(out).map_err(io_error(out))?;
    write_lexical(out, lexical)?;
    let mut hf = serde_json::to_value(config).map_err(|err| Error::Data(err.to_string()))?;
    if let Some(map) = hf.as_object_mut() {
        let id2label: serde_json::Map<String, serde_json::Value> =
            card.model.labels.iter().enumerate().map(|(i, l)| (i.to_string(), l.name.clone().into())).collect();
        let label2id: serde_json::Map<String, serde_json::Value> =
            card.model.labels.iter().enumerate().map(|(i, l)| (l.name.clone(), i.into())).collect();
        map.insert("id2label".into(), id2label.into());
        map.insert("label2id".into(), label2id.into());
        map.insert("problem_type".into(), "multi_label_classification".into());
        map.insert("architectures".into(), serde_json::json!(["BertForSequenceClassification"]));
        map.insert(
            "clause_pooling".into(),
            serde_json::to_value(card.model.pooling).map_err(|err| Error::Data(err.to_string()))?,
        );
        // A Python user must build the same input: see clause_infer::input.
        map.insert(
            "clause_context".into(),
            serde_json::to_value(card.model.context).map_err(|err| Error::Data(err.to_string()))?,
        );
    }
    write_atomically(&out.join("config.json"), pretty(&hf)?.as_bytes())?;
    card::write(out, card)?;
    save_tensors(&out.join("model.safetensors"), weights)?;
    let tokenizer_bytes = std::fs::read(tokenizer).map_err(io_error(tokenizer))?;
    Ok(write_atomically(&out.join("tokenizer.json"), &tokenizer_bytes)?)
}

/// Write an ensemble's directory: the Hugging Face files of its first member
/// (so `transformers` loads that one), then `clause.json`, which lists every
/// member. The card goes last, each file through a temporary name, so an
/// interrupted write never leaves a directory that loads as the ensemble.
pub fn write_ensemble_dir(out: &Path, first_member: &Path, card: &TrainedCard) -> Result<(), Error> {
    // The members' stages are one fit (same data, no seed), so the first's
    // serves the ensemble.
    let labels = card.model.labels.len();
    write_lexical(out, LexicalStage::load(first_member, labels)?.as_ref())?;
    for file in ["model.safetensors", "config.json", "tokenizer.json"] {
        let (from, to) = (first_member.join(file), out.join(file));
        let staging = out.join(format!(".{file}.tmp"));
        std::fs::copy(&from, &staging).map_err(io_error(&from))?;
        std::fs::rename(&staging, &to).map_err(io_error(&to))?;
    }
    Ok(card::write(out, card)?)
}

/// Write the lexical stage's files into `out`, or remove any an earlier
/// run left there when the model has no stage, so that a directory never
/// pairs a card with another run's stage.
pub(crate) fn write_lexical(out: &Path, lexical: Option<&LexicalStage>) -> Result<(), Error> {
    match lexical {
        Some(stage) => Ok(stage.save(out)?),
        None => {
            for file in [LEXICAL_FILE, LEXICAL_WEIGHTS_FILE] {
                let path = out.join(file);
                if path.is_file() {
                    std::fs::remove_file(&path).map_err(io_error(&path))?;
                }
            }
            Ok(())
        }
    }
}

/// Read a card training wrote (an ensemble member's, when an interrupted
/// ensemble resumes).
pub fn read_trained_card(dir: &Path) -> Result<TrainedCard, Error> {
    Ok(card::read(&dir.join(card::CARD_FILE))?)
}

fn pretty<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|err| Error::Data(err.to_string()))
}
