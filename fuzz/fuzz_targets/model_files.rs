//! The small files of a model directory, which may come from anyone (a Hub
//! id, a shared folder): `config.json`, `clause.json`, `lexical.json` and
//! `lexical.safetensors`, joined by NUL bytes in that order (the last part
//! keeps any NULs of its own). Each is read as `Classifier::load` reads it:
//! a clean error or a value, never a panic. A config that parses supplies the
//! labels and shape the card is checked against (a fixed two-label config
//! otherwise, so that the card is explored on its own), and a stage that
//! loads scores a few passages with one margin per label.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use clause_infer::LabelSet;
use clause_infer::card::{self, ModelCard};
use clause_infer::input::Passage;
use clause_infer::lexical::LexicalStage;
use clause_infer::model::BertConfig;
use libfuzzer_sys::fuzz_target;

const DEFAULT_CONFIG: &str = r#"{"vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
    "num_attention_heads": 1, "intermediate_size": 8, "max_position_embeddings": 512,
    "id2label": {"0": "surveillance", "1": "secrecy"}}"#;

static DEFAULT: LazyLock<(BertConfig, LabelSet)> = LazyLock::new(|| {
    let path = Path::new("config.json");
    let config = BertConfig::parse(path, DEFAULT_CONFIG).expect("the fixed config parses");
    let labels = LabelSet::parse(path, DEFAULT_CONFIG).expect("the fixed config has labels");
    (config, labels)
});

fuzz_target!(|data: &[u8]| {
    let dir = Path::new("model");
    let mut parts = data.splitn(4, |&b| b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (config_bytes, card_bytes, header, weights) = (next(), next(), next(), next());

    let config_path = dir.join("config.json");
    let parsed = std::str::from_utf8(config_bytes).ok().and_then(|text| {
        let config = BertConfig::parse(&config_path, text).ok()?;
        let labels = LabelSet::parse(&config_path, text).ok()?;
        assert!(!labels.names().is_empty());
        Some((config, labels))
    });
    let (config, labels) = parsed.as_ref().unwrap_or(&DEFAULT);

    let card_path = dir.join("clause.json");
    let card = match std::str::from_utf8(card_bytes) {
        Ok(text) => card::parse::<ModelCard>(&card_path, text).ok(),
        Err(_) => None,
    }
    .filter(|card| card.check(&card_path, config, labels.names()).is_ok())
    .unwrap_or_else(|| ModelCard::uncarded(labels.names(), config));
    if let Ok(files) = card.weight_files(dir) {
        assert!(files.iter().all(|file| file.starts_with(dir)), "{files:?}");
    }

    let count = card.labels.len();
    if let Ok(stage) = LexicalStage::from_bytes(dir, header, weights, count) {
        let passages = [
            Passage::text("Each State Party shall intercept content data. It shall keep it secret."),
            Passage { text: "", title: Some("Confidentiality"), chapter: Some("Chapter V > Section 2") },
        ];
        let margins = stage.margins(&passages);
        assert_eq!(margins.len(), passages.len());
        assert!(margins.iter().all(|m| m.len() == count), "{margins:?}");
    }
});
