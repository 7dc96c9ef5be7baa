//! Print the logits of a trained model directory for texts, one per line of
//! a file, as JSON; `scripts/compare-transformers` compares them with Python
//! `transformers`.
//!
//! `cargo run --release -p clause-infer --example logits -- MODEL_DIR TEXTS.txt`

use std::path::PathBuf;

use candle_core::Device;
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::tokenize::TextEncoder;
use clause_infer::{Error, LabelSet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(texts)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        return Err("usage: logits MODEL_DIR TEXTS.txt".into());
    };
    let config_path = dir.join("config.json");
    let config = BertConfig::from_file(&config_path)?;
    let labels = LabelSet::from_config(&config_path)?;
    let pooling: Pooling = match config.extra.get("clause_pooling") {
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|err| Error::Config { path: config_path.clone(), message: format!("clause_pooling: {err}") })?,
        None => Pooling::Cls,
    };
    let device = Device::Cpu;
    let model = TrainableModel::from_pretrained(
        &config,
        &dir.join("model.safetensors"),
        labels.names().len(),
        pooling,
        0,
        &device,
    )?;
    let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), 128)?;
    let text = std::fs::read_to_string(&texts).map_err(|source| Error::Io { path: texts.clone(), source })?;
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    let batch = encoder.encode(&lines, &device)?;
    let logits: Vec<Vec<f32>> = model.model.forward(&batch.ids, &batch.attention_mask, None)?.to_vec2()?;
    let labels: Vec<&str> = labels.names().iter().map(String::as_str).collect();
    println!("{}", serde_json::json!({ "pooling": pooling, "labels": labels, "texts": lines, "logits": logits }));
    Ok(())
}
