//! `clause.json`, the file beside a model's Hugging Face files that holds
//! what they cannot: label descriptions, tuned thresholds, pooling (a
//! mean-pooled model has no pooler, which `transformers` would silently
//! initialise at random), what the model reads, and an ensemble's members.
//!
//! This module is its one reader and writer. [`ModelCard`] is what every
//! reader needs; training writes a larger card that embeds it with
//! `#[serde(flatten)]` and adds provenance, configuration and metrics
//! (`clause_train::export::TrainedCard`), through [`read`] and [`write`] here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::input::{Context, Unit};
use crate::model::{BertConfig, Pooling};
use crate::reading::Reading;
use clause_eval::calibration::Platt;
use clause_eval::metrics::Metrics;

/// The file name.
pub const CARD_FILE: &str = "clause.json";

/// Version of the `clause.json` layout.
pub const FORMAT_VERSION: u32 = 1;

/// The most tokens a model without `clause.json` reads: its positions, up to
/// BERT's usual 512, as `BertForSequenceClassification` would run it.
pub const UNCARDED_MAX_LENGTH: usize = 512;

/// One label of a trained model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLabel {
    /// The label.
    pub name: String,
    /// What it means.
    pub description: String,
    /// Probability at or above which it is predicted, tuned on validation
    /// (on calibrated scores, where the label has a calibration).
    pub threshold: f32,
    /// The map from the model's raw score to a probability, fitted on
    /// validation scores; absent in cards written before calibration, whose
    /// raw scores are shown as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Platt>,
}

/// What every reader of a model directory needs from `clause.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Layout version ([`FORMAT_VERSION`]; a card without it is version 1).
    #[serde(default = "first_format")]
    pub format: u32,
    /// Labels in output order, with their thresholds.
    pub labels: Vec<ModelLabel>,
    /// Tokens per text at most.
    pub max_length: usize,
    /// How token states become one vector.
    pub pooling: Pooling,
    /// What the model reads besides each text (absent in cards written
    /// before models could read headings: the text alone).
    #[serde(default)]
    pub context: Context,
    /// How a provision is read: whole (in overlapping windows when long),
    /// or also sentence by sentence (absent in older cards: whole).
    #[serde(default)]
    pub reading: Reading,
    /// What one training example was, a provision or a sentence (absent in
    /// older cards: a provision); a sentence model is given a draft's
    /// sentences.
    #[serde(default)]
    pub unit: Unit,
    /// An ensemble's members, whose probabilities are averaged; empty for a
    /// single model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<EnsembleMember>,
}

fn first_format() -> u32 {
    1
}

/// One member of an ensemble: a complete model directory of its own. Only
/// `dir` is needed to load it; training records the rest, and a hand-made
/// card may leave it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleMember {
    /// Its directory, relative to the ensemble's.
    pub dir: String,
    /// Its seed.
    #[serde(default)]
    pub seed: u64,
    /// Its best epoch.
    #[serde(default)]
    pub best_epoch: usize,
    /// Epochs it ran.
    #[serde(default)]
    pub epochs: usize,
    /// Its own validation metrics, at its own thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Metrics>,
}

impl ModelCard {
    /// The card of a directory that has none (a classifier fine-tuned
    /// elsewhere): BERT's pooler, threshold 0.5, the text alone, and the
    /// model's positions up to [`UNCARDED_MAX_LENGTH`].
    pub fn uncarded(label_names: &[String], config: &BertConfig) -> Self {
        Self {
            format: FORMAT_VERSION,
            labels: label_names
                .iter()
                .map(|name| ModelLabel {
                    name: name.clone(),
                    description: String::new(),
                    threshold: 0.5,
                    calibration: None,
                })
                .collect(),
            max_length: config.max_position_embeddings.min(UNCARDED_MAX_LENGTH),
            pooling: Pooling::Cls,
            context: Context::Text,
            reading: Reading::Whole,
            unit: Unit::Provision,
            ensemble: Vec::new(),
        }
    }

    /// Label thresholds in output order.
    pub fn thresholds(&self) -> Vec<f32> {
        self.labels.iter().map(|l| l.threshold).collect()
    }

    /// Check the card against the model it describes: thresholds are
    /// probabilities, labels are `config.json`'s `id2label` in order, and
    /// `max_length` fits the model's positions. `path` is the card, for
    /// messages.
    pub fn check(&self, path: &Path, config: &BertConfig, label_names: &[String]) -> Result<(), Error> {
        let error = |message: String| Error::Config { path: path.to_path_buf(), message };
        if let Some(label) = self.labels.iter().find(|l| !(0.0..=1.0).contains(&l.threshold)) {
            return Err(error(format!(
                "label `{}`: threshold {} is not a probability in [0, 1]",
                label.name, label.threshold
            )));
        }
        let names: Vec<&str> = self.labels.iter().map(|l| l.name.as_str()).collect();
        if names != label_names {
            return Err(error(format!(
                "field `labels`: {names:?} disagree with config.json's id2label {label_names:?}"
            )));
        }
        check_max_length(path, self.max_length, config)
    }

    /// Each ensemble member's weights file, in member order; for a single
    /// model, `dir/model.safetensors`. A member's directory must lie inside
    /// `dir`.
    pub fn weight_files(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        if self.ensemble.is_empty() {
            return Ok(vec![dir.join("model.safetensors")]);
        }
        self.ensemble.iter().map(|member| member_weights(dir, member)).collect()
    }
}

/// `max_length` must be between 1 and the model's positions: the one check,
/// for a card and for a training configuration. `path` names the file the
/// value came from.
pub fn check_max_length(path: &Path, max_length: usize, config: &BertConfig) -> Result<(), Error> {
    if max_length == 0 || max_length > config.max_position_embeddings {
        return Err(Error::Config {
            path: path.to_path_buf(),
            message: format!(
                "field `max_length`: {max_length} must be between 1 and the model's {} positions",
                config.max_position_embeddings
            ),
        });
    }
    Ok(())
}

fn member_weights(dir: &Path, member: &EnsembleMember) -> Result<PathBuf, Error> {
    let relative = Path::new(&member.dir);
    let inside = relative.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if member.dir.is_empty() || !inside {
        return Err(Error::Config {
            path: dir.join(CARD_FILE),
            message: format!(
                "field `ensemble`: member directory `{}` must be a relative path inside the model directory",
                member.dir
            ),
        });
    }
    let weights = dir.join(relative).join("model.safetensors");
    if !weights.is_file() {
        return Err(Error::Io {
            path: weights,
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "missing: an ensemble member's weights"),
        });
    }
    Ok(weights)
}

/// Read a card (this module's [`ModelCard`], or a larger one that embeds
/// it) from `path`; a parse error names the line and column.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse(path, &text)
}

/// A card from the text of `path` (named in errors), as [`read`] reads it.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|err| Error::Config {
        path: path.to_path_buf(),
        message: format!("line {} column {}: {err}", err.line(), err.column()),
    })
}

/// Write a card to `dir/clause.json`, pretty-printed, through a temporary
/// file renamed into place, so a reader never sees half a card.
pub fn write<T: Serialize>(dir: &Path, card: &T) -> Result<(), Error> {
    let path = dir.join(CARD_FILE);
    let text = serde_json::to_string_pretty(card)
        .map_err(|err| Error::Config { path: path.clone(), message: err.to_string() })?;
    write_atomically(&path, format!("{text}\n").as_bytes())
}

/// Write `tensors` as a safetensors file at `path`, through `path.tmp` renamed
/// into place. The file gets the permissions any new file gets (the umask's),
/// where candle's own `save` leaves its temporary file's 0600.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), Error> {
    let bytes = safetensors::serialize(tensors, None)
        .map_err(|err| Error::Weights { path: path.to_path_buf(), message: err.to_string() })?;
    write_atomically(path, &bytes)
}

/// Write `bytes` to `path` through `path.tmp`, renamed into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let staging = path.with_extension("tmp");
    std::fs::write(&staging, bytes).map_err(|source| Error::Io { path: staging.clone(), source })?;
    std::fs::rename(&staging, path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(positions: usize) -> BertConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 1,
            "intermediate_size": 8, "max_position_embeddings": positions
        }))
        .expect("config")
    }

    fn card() -> ModelCard {
        ModelCard {
            format: FORMAT_VERSION,
            labels: vec![ModelLabel {
                name: "secrecy".into(),
                description: "kept hidden".into(),
                threshold: 0.4,
                calibration: Some(Platt { slope: 0.5, intercept: -1.0, margin: 0.0 }),
            }],
            max_length: 256,
            pooling: Pooling::Mean,
            context: Context::Headings,
            reading: Reading::Sentences,
            unit: Unit::Sentence,
            ensemble: Vec::new(),
        }
    }

    #[test]
    fn a_card_round_trips_and_a_larger_one_reads_as_its_core() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &card()).expect("write");
        assert_eq!(read::<ModelCard>(&dir.path().join(CARD_FILE)).expect("read"), card());

        #[derive(Serialize)]
        struct Larger {
            #[serde(flatten)]
            card: ModelCard,
            history: Vec<u32>,
        }
        write(dir.path(), &Larger { card: card(), history: vec![1, 2] }).expect("write");
        assert_eq!(read::<ModelCard>(&dir.path().join(CARD_FILE)).expect("read"), card());
        assert!(!dir.path().join("clause.tmp").exists());
    }

    #[test]
    fn a_hand_made_card_needs_no_format_and_only_member_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let card = serde_json::json!({
            "labels": [{"name": "a", "description": "", "threshold": 0.5}],
            "max_length": 16, "pooling": "cls", "ensemble": [{"dir": "m1"}]
        });
        std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        let card: ModelCard = read(&dir.path().join(CARD_FILE)).expect("read");
        assert_eq!(
            (card.format, card.ensemble[0].dir.as_str(), card.ensemble[0].validation.is_none()),
            (1, "m1", true)
        );
        // Cards written before models recorded their unit were all trained
        // on provisions (tos-unfair's older models read its sentences as
        // given, which a table input still does).
        assert_eq!(card.unit, Unit::Provision);
    }

    #[test]
    fn a_card_without_context_reads_the_text_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut value = serde_json::to_value(card()).expect("value");
        value.as_object_mut().expect("object").remove("context");
        std::fs::write(dir.path().join(CARD_FILE), value.to_string()).expect("write");
        assert_eq!(read::<ModelCard>(&dir.path().join(CARD_FILE)).expect("read").context, Context::Text);
    }

    #[test]
    fn checks_name_the_field() {
        let path = Path::new("m/clause.json");
        let names = vec!["secrecy".to_string()];
        card().check(path, &config(512), &names).expect("fits");
        let err = card().check(path, &config(128), &names).expect_err("too long").to_string();
        assert!(err.contains("m/clause.json") && err.contains("`max_length`: 256"), "{err}");
        let err = card().check(path, &config(512), &["other".to_string()]).expect_err("labels").to_string();
        assert!(err.contains("field `labels`"), "{err}");
        let mut bad = card();
        bad.labels[0].threshold = 1.5;
        let err = bad.check(path, &config(512), &names).expect_err("threshold").to_string();
        assert!(err.contains("threshold 1.5"), "{err}");
    }

    #[test]
    fn an_uncarded_model_reads_up_to_512_tokens_with_its_pooler() {
        let card = ModelCard::uncarded(&["a".to_string()], &config(1024));
        assert_eq!((card.max_length, card.pooling, card.thresholds()), (512, Pooling::Cls, vec![0.5]));
        assert_eq!(ModelCard::uncarded(&["a".to_string()], &config(128)).max_length, 128);
    }

    #[test]
    fn a_member_outside_the_directory_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ensemble = card();
        ensemble.ensemble =
            vec![EnsembleMember { dir: "../elsewhere".into(), seed: 1, best_epoch: 1, epochs: 1, validation: None }];
        let err = ensemble.weight_files(dir.path()).expect_err("outside").to_string();
        assert!(err.contains("field `ensemble`"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn saved_tensors_load_back_with_the_permissions_of_any_new_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let weights = dir.path().join("model.safetensors");
        let tensor = Tensor::from_slice(&[1.0f32, -2.5, 3.0], 3, &candle_core::Device::Cpu).expect("tensor");
        save_tensors(&weights, &HashMap::from([("w".to_string(), tensor)])).expect("save");
        std::fs::write(dir.path().join("other"), b"x").expect("write");
        let mode = |path: &Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
        // candle's own `save` left 0600 here, whatever the umask.
        assert_eq!(mode(&weights), mode(&dir.path().join("other")));
        let loaded = candle_core::safetensors::load(&weights, &candle_core::Device::Cpu).expect("load");
        assert_eq!(loaded["w"].to_vec1::<f32>().expect("values"), vec![1.0, -2.5, 3.0]);
        assert!(!dir.path().join("model.tmp").exists());
    }
}
