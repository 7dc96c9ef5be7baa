//! Time training steps of the MiniLM-shaped classifier at a fixed batch shape,
//! split into gradients (forward and backward, across threads) and the
//! optimizer, for profiling.
//!
//! `cargo run --release -p clause-train --example bench_step -- models/base/all-MiniLM-L6-v2 16 128 10`

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor};
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::rng::SplitMix64;
use clause_train::TrainConfig;
use clause_train::optim::AdamW;
use clause_train::step::{MicroBatch, accumulate_gradients, dropout_generators};

fn main() -> anyhow::Result<()> {
    // As the `clause` binary: candle's element-wise ops stay on the calling
    // threads, and freed tensors stay with the process.
    clause_infer::runtime::keep_candle_ops_on_calling_threads();
    let refused = clause_infer::runtime::keep_freed_memory();
    anyhow::ensure!(refused.is_empty(), "mallopt refused {refused:?}");
    let args: Vec<String> = std::env::args().collect();
    let base = PathBuf::from(args.get(1).map_or("models/base/all-MiniLM-L6-v2", String::as_str));
    let batch_size: usize = args.get(2).map_or(Ok(16), |s| s.parse())?;
    let length: usize = args.get(3).map_or(Ok(128), |s| s.parse())?;
    let steps: usize = args.get(4).map_or(Ok(10), |s| s.parse())?;
    let labels = 8;
    let device = Device::Cpu;
    let config = BertConfig::from_file(&base.join("config.json"))?;
    let trainable = TrainableModel::random(&config, labels, Pooling::Mean, 7, &device)?;
    // The optimizer as `clause train` sets it up by default.
    let mut optimizer = AdamW::new(&trainable.vars, TrainConfig::default().adamw_params())?;
    let mut rng = SplitMix64::new(11);
    let ids: Vec<u32> = (0..batch_size * length).map(|_| 1000 + rng.below(28_000) as u32).collect();
    let ids = Tensor::from_vec(ids, (batch_size, length), &device)?;
    let mask = Tensor::ones((batch_size, length), candle_core::DType::U32, &device)?;
    let targets: Vec<f32> = (0..batch_size * labels).map(|i| f32::from(i % 5 == 0)).collect();
    let targets = Tensor::from_vec(targets, (batch_size, labels), &device)?;
    let pos_weight = Tensor::ones(labels, candle_core::DType::F32, &device)?;
    let batch = MicroBatch { ids: &ids, attention_mask: &mask, targets: &targets };
    let (mut gradients, mut update) = (0f64, 0f64);
    for step in 0..=steps {
        let t0 = Instant::now();
        let mut rngs = dropout_generators(&mut rng, batch_size);
        accumulate_gradients(&trainable.model, batch, &pos_weight, &mut rngs, 1.0, &mut optimizer)?;
        let t1 = Instant::now();
        optimizer.apply(1e-5)?;
        let t2 = Instant::now();
        if step > 0 {
            gradients += (t1 - t0).as_secs_f64();
            update += (t2 - t1).as_secs_f64();
        }
    }
    let n = steps as f64;
    println!(
        "batch {batch_size} x {length}: forward and backward {:.3} s, optimizer {:.3} s per step; {:.1} sequences/s",
        gradients / n,
        update / n,
        (batch_size * steps) as f64 / (gradients + update)
    );
    Ok(())
}
