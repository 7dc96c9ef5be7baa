//! The encoder against an independent NumPy implementation of BERT
//! (`reference_bert.py`, kept beside this file), on all-MiniLM-L6-v2.
//!
//! Needs the base model: `bash scripts/fetch-base-model`, then
//! `cargo test -p clause-infer -- --ignored`.

use std::path::PathBuf;

use candle_core::Device;
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::tokenize::TextEncoder;

fn base_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/base/all-MiniLM-L6-v2")
}

#[test]
#[ignore = "needs models/base/all-MiniLM-L6-v2: run scripts/fetch-base-model"]
fn pooled_outputs_match_the_numpy_reference() {
    let dir = base_model();
    assert!(dir.join("model.safetensors").exists(), "run scripts/fetch-base-model first ({})", dir.display());
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json"),
        )
        .expect("fixture"),
    )
    .expect("json");
    let device = Device::Cpu;
    let config = BertConfig::from_file(&dir.join("config.json")).expect("config");
    let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), 128).expect("tokenizer");
    assert_eq!(encoder.vocab_size(), config.vocab_size);
    let cls = TrainableModel::from_pretrained(&config, &dir.join("model.safetensors"), 2, Pooling::Cls, 0, &device)
        .expect("model");
    let mean = TrainableModel::from_pretrained(&config, &dir.join("model.safetensors"), 2, Pooling::Mean, 0, &device)
        .expect("model");
    let cases = fixture["cases"].as_array().expect("cases");
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().expect("text")).collect();
    // One padded batch: padding must not change any text's result.
    let batch = encoder.encode(&texts, &device).expect("encode");
    let ids: Vec<Vec<u32>> = batch.ids.to_vec2().expect("ids");
    let pooler: Vec<Vec<f32>> = cls.model.pooled(&batch.ids, &batch.attention_mask).expect("cls").to_vec2().expect("v");
    let sentence: Vec<Vec<f32>> =
        mean.model.pooled(&batch.ids, &batch.attention_mask).expect("mean").to_vec2().expect("v");
    let mut worst = 0f32;
    for (i, case) in cases.iter().enumerate() {
        let expected_ids: Vec<u32> =
            case["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().expect("id") as u32).collect();
        assert_eq!(&ids[i][..expected_ids.len()], expected_ids.as_slice(), "token ids of case {i}");
        assert!(ids[i][expected_ids.len()..].iter().all(|&id| id == 0), "padding of case {i}");
        for (ours, key) in [(&pooler[i], "pooler"), (&sentence[i], "mean")] {
            let reference: Vec<f32> =
                case[key].as_array().expect("values").iter().map(|v| v.as_f64().expect("f") as f32).collect();
            assert_eq!(ours.len(), reference.len());
            for (a, b) in ours.iter().zip(&reference) {
                worst = worst.max((a - b).abs());
            }
        }
    }
    eprintln!("largest absolute difference from the NumPy reference: {worst:e}");
    assert!(worst < 1e-4, "largest difference from the reference: {worst}");
}
