//! A BERT classifier and what it takes to run one: the encoder ([`model`],
//! trainable, with the fused CPU kernels of [`ops`]), the tokenizer, model
//! lookup ([`hub`]), the model card ([`card`], the one reader and writer of
//! `clause.json`), the loaded classifier that predicts in batches
//! ([`classifier`]) and explanations by occlusion ([`explain`]).
//!
//! It never depends on polars or on `clause-train`, so a serving build stays
//! small. The model's label set is read from a Hugging Face `config.json`
//! (`id2label`); the rule that turns probabilities into labels is
//! `clause_eval::decision`.

pub mod card;
pub mod classifier;
pub mod explain;
#[cfg(feature = "hub")]
pub mod hub;
/// What a model reads of a provision (owned by clause-segment, so that each
/// input type, a provision, a dataset example or a table row, has one
/// `.passage()`).
pub use clause_segment::input;
pub mod lexical;
pub mod model;
pub mod ops;
pub mod reading;
pub mod rng;
pub mod runtime;
pub mod tokenize;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors of the inference crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `config.json` is not valid JSON or lacks a usable `id2label`.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A weights file is unreadable or does not fit the config.
    #[error("{path}: {message}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// What is wrong, naming the tensor.
        message: String,
    },
    /// A tokenizer file is unreadable or unusable.
    #[error("{path}: {message}")]
    Tokenizer {
        /// The `tokenizer.json`.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Hugging Face Hub model could not be found or fetched.
    #[error("model `{id}`: {message}")]
    Hub {
        /// The directory or Hub id as given.
        id: String,
        /// What is missing or went wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// The labels a model predicts, in output order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    names: Vec<String>,
}

impl LabelSet {
    /// Labels in output order.
    pub fn new(names: Vec<String>) -> Self {
        Self { names }
    }

    /// Label names in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Read `id2label` from a Hugging Face `config.json`. Ids must be exactly
    /// `0..n` so that output column `i` is label `id2label[i]`.
    pub fn from_config(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// The labels of config text `text`, the contents of `path` (named in
    /// errors), as [`LabelSet::from_config`] reads them.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let config_error = |message: String| Error::Config { path: path.to_path_buf(), message };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|err| config_error(format!("line {}: invalid JSON: {err}", err.line())))?;
        let map = value
            .get("id2label")
            .and_then(|v| v.as_object())
            .ok_or_else(|| config_error("field `id2label`: missing or not an object".to_string()))?;
        let mut by_id = BTreeMap::new();
        for (key, label) in map {
            let id: usize =
                key.parse().map_err(|_| config_error(format!("field `id2label`: key `{key}` is not an integer")))?;
            let label =
                label.as_str().ok_or_else(|| config_error(format!("field `id2label.{key}`: expected a string")))?;
            by_id.insert(id, label.to_string());
        }
        if by_id.keys().copied().ne(0..by_id.len()) {
            return Err(config_error(format!("field `id2label`: ids must be 0..{} without gaps", by_id.len())));
        }
        if by_id.is_empty() {
            return Err(config_error("field `id2label`: empty".to_string()));
        }
        Ok(Self { names: by_id.into_values().collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_id2label_in_id_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"id2label": {"1": "secrecy", "0": "surveillance"}}"#).expect("write");
        let labels = LabelSet::from_config(&path).expect("read");
        assert_eq!(labels.names(), ["surveillance", "secrecy"]);
    }

    #[test]
    fn rejects_gaps_and_missing_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"id2label": {"0": "a", "2": "b"}}"#).expect("write");
        let err = LabelSet::from_config(&path).expect_err("gap").to_string();
        assert!(err.contains("without gaps"), "{err}");
        std::fs::write(&path, r#"{"hidden_size": 384}"#).expect("write");
        let err = LabelSet::from_config(&path).expect_err("missing").to_string();
        assert!(err.contains("config.json") && err.contains("`id2label`"), "{err}");
    }
}
