//! The Rust half of `scripts/bench`: prints one JSON object of throughput
//! figures for the same workloads that `scripts/bench_torch.py` runs in
//! PyTorch. A benchmark, not a test.
//!
//! `cargo run --release -p clause-train --example bench -- MODEL_DIR BASE_DIR DATASET_DIR WORK_DIR`
//!
//! It first writes the shared inputs into WORK_DIR as JSON lines: `test.jsonl`
//! (the dataset's test split, for inference as `clause classify` runs it) and
//! `epoch.jsonl` (every 8th sentence of the first training epoch, in the
//! order drawn, for training on the real length distribution).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use clause_data::build::read_split;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::rng::SplitMix64;
use clause_infer::tokenize::TextEncoder;
use clause_train::TrainConfig;
use clause_train::batches::{epoch_batches, epoch_examples};
use clause_train::optim::AdamW;
use clause_train::step::{MicroBatch, accumulate_gradients, dropout_generators};
use serde_json::{Value, json};

/// Each timed figure runs at least this long (after a warm-up), so that
/// short ones are not one noisy sample.
const MIN_TIME: Duration = Duration::from_secs(3);
const LENGTH: usize = 128;
const LABELS: usize = 8;

/// Run `work` repeatedly (once first to warm up) until `MIN_TIME` has
/// passed; return items per second, `items` being what one call processes.
fn throughput(items: usize, mut work: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    work()?;
    let (start, mut calls) = (Instant::now(), 0usize);
    while calls == 0 || start.elapsed() < MIN_TIME {
        work()?;
        calls += 1;
    }
    Ok((items * calls) as f64 / start.elapsed().as_secs_f64())
}

/// Every how manyth sentence of the epoch the training sample takes.
const EPOCH_SAMPLE: usize = 8;

fn write_texts(path: &Path, texts: &[&str]) -> anyhow::Result<()> {
    let lines: Vec<String> = texts.iter().map(|text| json!(text).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// The test split, and the sample of the first epoch.
fn prepare(dataset: &Path, work: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let recipe = LoadedRecipe::load(dataset)?;
    let test: Vec<String> = read_split(&recipe, Split::Test)?.into_iter().map(|e| e.text).collect();
    let train = read_split(&recipe, Split::Train)?;
    let has_label: Vec<bool> = train.iter().map(|e| !e.labels.is_empty()).collect();
    let config = TrainConfig::default();
    let epoch: Vec<String> = epoch_examples(&has_label, config.negative_ratio, config.seed, 0)
        .into_iter()
        .step_by(EPOCH_SAMPLE)
        .map(|i| train[i].text.clone())
        .collect();
    std::fs::create_dir_all(work)?;
    write_texts(&work.join("test.jsonl"), &test.iter().map(String::as_str).collect::<Vec<_>>())?;
    write_texts(&work.join("epoch.jsonl"), &epoch.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok((test, epoch))
}

fn random_ids(rng: &mut SplitMix64, batch: usize, device: &Device) -> anyhow::Result<Tensor> {
    // Ordinary word-piece ids: above the special and unused tokens.
    let ids: Vec<u32> = (0..batch * LENGTH).map(|_| 2000 + rng.below(28_000) as u32).collect();
    Ok(Tensor::from_vec(ids, (batch, LENGTH), device)?)
}

fn gemm(device: &Device) -> anyhow::Result<f64> {
    let n = 2048;
    let mut rng = SplitMix64::new(3);
    let mut matrix = || -> anyhow::Result<Tensor> {
        let values: Vec<f32> = (0..n * n).map(|_| rng.next_normal()).collect();
        Ok(Tensor::from_vec(values, (n, n), device)?)
    };
    let (a, b) = (matrix()?, matrix()?);
    let per_second = throughput(1, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    Ok(2.0 * (n as f64).powi(3) * per_second / 1e9)
}

/// One training step as `clause train` takes it: forward with dropout,
/// weighted BCE and backward, split across threads, then AdamW.
struct Trainer {
    model: TrainableModel,
    optimizer: AdamW,
    rng: SplitMix64,
    pos_weight: Tensor,
}

impl Trainer {
    fn new(base: &Path, device: &Device) -> anyhow::Result<Self> {
        let config = BertConfig::from_file(&base.join("config.json"))?;
        let model = TrainableModel::from_pretrained(
            &config,
            &base.join("model.safetensors"),
            LABELS,
            Pooling::Mean,
            7,
            device,
        )?;
        // The optimizer as `clause train` sets it up by default.
        let optimizer = AdamW::new(&model.vars, TrainConfig::default().adamw_params())?;
        let pos_weight = Tensor::ones(LABELS, DType::F32, device)?;
        Ok(Self { model, optimizer, rng: SplitMix64::new(11), pos_weight })
    }

    fn step(&mut self, ids: &Tensor, mask: &Tensor) -> anyhow::Result<()> {
        let batch = ids.dim(0)?;
        let targets: Vec<f32> = (0..batch * LABELS).map(|i| f32::from(i % 5 == 0)).collect();
        let targets = Tensor::from_vec(targets, (batch, LABELS), ids.device())?;
        let batch = MicroBatch { ids, attention_mask: mask, targets: &targets };
        let mut rngs = dropout_generators(&mut self.rng, ids.dim(0)?);
        accumulate_gradients(&self.model.model, batch, &self.pos_weight, &mut rngs, 1.0, &mut self.optimizer)?;
        self.optimizer.apply(1e-5)?;
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    // The same thread and allocator settings as the `clause` binary, or the
    // figures would not be the binary's: candle's element-wise pool would
    // stand between the data-parallel threads, and large tensors would be
    // unmapped on free.
    clause_infer::runtime::keep_candle_ops_on_calling_threads();
    let refused = clause_infer::runtime::keep_freed_memory();
    anyhow::ensure!(refused.is_empty(), "mallopt refused {refused:?}");
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let [model_dir, base, dataset, work] = args.as_slice() else {
        anyhow::bail!("usage: bench MODEL_DIR BASE_DIR DATASET_DIR WORK_DIR");
    };
    let (test, epoch) = prepare(dataset, work)?;
    let device = Device::Cpu;
    let mut figures = serde_json::Map::new();
    figures.insert("gemm_gflops".into(), json!(gemm(&device)?));

    let start = Instant::now();
    let classifier = Classifier::load(model_dir, &device)?;
    figures.insert("load_seconds".into(), json!(start.elapsed().as_secs_f64()));

    let mut rng = SplitMix64::new(5);
    for batch in [1, 8, 32, 128] {
        let ids: Vec<Vec<u32>> = random_ids(&mut rng, batch, &device)?.to_vec2()?;
        let plan = BatchPlan { batch_size: batch, by_length: false };
        let rate = throughput(batch, || {
            classifier.predict_ids(&ids, plan, &mut |_| {})?;
            Ok(())
        })?;
        figures.insert(format!("infer_b{batch}"), json!(rate));
    }

    // As `clause classify` runs it: tokenisation included, length buckets.
    let texts: Vec<&str> = test.iter().map(String::as_str).collect();
    let start = Instant::now();
    classifier.predict(&texts, BatchPlan::default(), &mut |_| {})?;
    figures.insert("infer_real".into(), json!(texts.len() as f64 / start.elapsed().as_secs_f64()));
    drop(classifier);

    let mut trainer = Trainer::new(base, &device)?;
    let ids = random_ids(&mut rng, 16, &device)?;
    let mask = Tensor::ones((16, LENGTH), DType::U32, &device)?;
    figures.insert("train_b16".into(), json!(throughput(16, || trainer.step(&ids, &mask))?));

    // The epoch sample, batched as `clause train` batches: 16 sentences of
    // similar length, padded to the longest.
    let encoder = TextEncoder::from_file(&base.join("tokenizer.json"), LENGTH)?;
    let sentences: Vec<&str> = epoch.iter().map(String::as_str).collect();
    let token_ids = encoder.token_ids(&sentences)?;
    let lengths: Vec<usize> = token_ids.iter().map(Vec::len).collect();
    let batches = epoch_batches(&lengths, 16, 13, 0);
    let start = Instant::now();
    for batch in &batches {
        let sequences: Vec<&[u32]> = batch.iter().map(|&i| token_ids[i].as_slice()).collect();
        let encoded = encoder.batch(&sequences, &device)?;
        trainer.step(&encoded.ids, &encoded.attention_mask)?;
    }
    figures.insert("train_epoch".into(), json!(sentences.len() as f64 / start.elapsed().as_secs_f64()));
    figures
        .insert("threads".into(), json!(std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<usize>().ok())));
    println!("{}", Value::Object(figures));
    Ok(())
}
