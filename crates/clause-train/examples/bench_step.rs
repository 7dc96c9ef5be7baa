//! Time training steps of the MiniLM-shaped classifier at a fixed batch shape,
//! split into forward, backward and optimizer, for profiling.
//!
//! `cargo run --release -p clause-train --example bench_step -- models/base/all-MiniLM-L6-v2 16 128 10`

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::rng::SplitMix64;
use clause_train::loss::weighted_bce_with_logits;
use clause_train::optim::{AdamW, AdamWParams};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let base = PathBuf::from(args.get(1).map_or("models/base/all-MiniLM-L6-v2", String::as_str));
    let batch: usize = args.get(2).map_or(Ok(16), |s| s.parse())?;
    let length: usize = args.get(3).map_or(Ok(128), |s| s.parse())?;
    let steps: usize = args.get(4).map_or(Ok(10), |s| s.parse())?;
    let labels = 8;
    let device = Device::Cpu;
    let config = BertConfig::from_file(&base.join("config.json"))?;
    let trainable = TrainableModel::random(&config, labels, Pooling::Mean, 7, &device)?;
    let params = AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, max_grad_norm: 1.0 };
    let mut optimizer = AdamW::new(&trainable.vars, params)?;
    let mut rng = SplitMix64::new(11);
    let ids: Vec<u32> = (0..batch * length).map(|_| 1000 + rng.below(28_000) as u32).collect();
    let ids = Tensor::from_vec(ids, (batch, length), &device)?;
    let mask = Tensor::ones((batch, length), candle_core::DType::U32, &device)?;
    let targets: Vec<f32> = (0..batch * labels).map(|i| f32::from(i % 5 == 0)).collect();
    let targets = Tensor::from_vec(targets, (batch, labels), &device)?;
    let pos_weight = Tensor::ones(labels, candle_core::DType::F32, &device)?;
    let (mut fwd, mut bwd, mut opt) = (0f64, 0f64, 0f64);
    for step in 0..=steps {
        let t0 = Instant::now();
        let logits = trainable.model.forward(&ids, &mask, Some(&mut rng))?;
        let loss = weighted_bce_with_logits(&logits, &targets, &pos_weight)?;
        let _ = loss.to_scalar::<f32>()?;
        let t1 = Instant::now();
        let grads = loss.backward()?;
        let t2 = Instant::now();
        optimizer.accumulate(&grads)?;
        drop(grads);
        optimizer.apply(1e-5)?;
        let t3 = Instant::now();
        if step > 0 {
            fwd += (t1 - t0).as_secs_f64();
            bwd += (t2 - t1).as_secs_f64();
            opt += (t3 - t2).as_secs_f64();
        }
    }
    let n = steps as f64;
    let total = fwd + bwd + opt;
    println!(
        "batch {batch} x {length}: forward {:.3} s, backward {:.3} s, optimizer {:.3} s per step; {:.1} sequences/s",
        fwd / n,
        bwd / n,
        opt / n,
        (batch * steps) as f64 / total
    );
    Ok(())
}
