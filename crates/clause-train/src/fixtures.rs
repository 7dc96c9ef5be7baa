//! A tiny random BERT base-model directory, for tests and smoke runs of the
//! training path without downloading a real model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use clause_infer::model::{BertConfig, Pooling, TrainableModel};

use crate::Error;

/// The tiny model's words (after `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`).
pub const WORDS: [&str; 12] = [
    "search",
    "seize",
    "extradite",
    "surrender",
    "secret",
    "confidential",
    "the",
    "party",
    "shall",
    "may",
    "data",
    "state",
];

/// Write a base-model directory (config.json, tokenizer.json,
/// model.safetensors) for a 2-layer, 16-wide BERT whose vocabulary is
/// [`WORDS`] and the four special tokens.
pub fn tiny_base(dir: &Path) -> Result<(), Error> {
    let mut vocab = serde_json::Map::new();
    for (i, token) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().chain(WORDS.iter()).enumerate() {
        vocab.insert(token.to_string(), i.into());
    }
    let vocab_size = vocab.len();
    let special = |id: &str, n: usize| serde_json::json!({"id": n, "content": id, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3)],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    });
    let tokenizer = serde_json::to_string(&tokenizer).map_err(|err| Error::Data(err.to_string()))?;
    std::fs::write(dir.join("tokenizer.json"), tokenizer).map_err(crate::io_error(dir.join("tokenizer.json")))?;
    let config = serde_json::json!({
        "vocab_size": vocab_size, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 32, "max_position_embeddings": 128, "hidden_act": "gelu", "model_type": "bert",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1
    });
    std::fs::write(dir.join("config.json"), config.to_string()).map_err(crate::io_error(dir.join("config.json")))?;
    let config: BertConfig = serde_json::from_value(config).map_err(|err| Error::Data(err.to_string()))?;
    let model = TrainableModel::random(&config, 1, Pooling::Cls, 123, &Device::Cpu)?;
    let data = model.vars.data().lock().map_err(|_| Error::Data("parameter lock poisoned".to_string()))?;
    let base: HashMap<String, Tensor> = data
        .iter()
        .filter(|(name, _)| !name.starts_with("classifier."))
        .map(|(name, var)| (name.trim_start_matches("bert.").to_string(), var.as_tensor().clone()))
        .collect();
    candle_core::safetensors::save(&base, dir.join("model.safetensors"))?;
    Ok(())
}
