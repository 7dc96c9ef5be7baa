//! The Rust half of `scripts/bench`: prints one JSON object of throughput
//! figures for the same workloads that `scripts/bench_torch.py` runs in
//! PyTorch and `scripts/bench_onnx.py` in ONNX Runtime. A benchmark, not a
//! test.
//!
//! `cargo run --release -p clause-train --example bench -- MODEL_DIR BASE_DIR DATASET_DIR WORK_DIR`
//!
//! It first writes the shared inputs into WORK_DIR as JSON lines: `test.jsonl`
//! (the dataset's test split), `test_labels.jsonl` (each test text's labels)
//! and `labels.json` (the dataset's label names), for inference and its F1
//! (and, once the model is loaded, `test_margins.jsonl`: its lexical
//! stage's margins on each test text, empty without a stage),
//! and `epoch.jsonl` (every 8th sentence of the first training epoch, in the
//! order drawn, for training on the real length distribution).
//!
//! Every figure: one untimed warm-up call, then timed calls until there are
//! at least [`MIN_REPEATS`] and [`min_time`] has passed; the figure is the
//! median of the calls' rates. Tokenisation is outside the timed region (the
//! texts are tokenised once, before the warm-up); building each padded batch
//! from token ids is inside it. The Python halves do the same.
//!
//! Environment, for smoke tests only: `BENCH_MIN_TIME` (seconds, default 3)
//! and `BENCH_TEXTS` (keep the first N texts of the test split and of the
//! epoch sample).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use clause_data::build::read_split;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::input::Passage;
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::rng::SplitMix64;
use clause_infer::tokenize::TextEncoder;
use clause_train::TrainConfig;
use clause_train::batches::{epoch_batches, epoch_examples};
use clause_train::optim::AdamW;
use clause_train::step::{MicroBatch, accumulate_gradients, dropout_generators};
use serde_json::{Value, json};

/// Each timed figure runs at least this long (after a warm-up), so that
/// short ones are not one noisy sample: 3 s, or `BENCH_MIN_TIME` seconds.
fn min_time() -> Duration {
    let seconds = std::env::var("BENCH_MIN_TIME").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(3.0);
    Duration::from_secs_f64(seconds.max(0.0))
}
/// Timed calls of each figure at least.
const MIN_REPEATS: usize = 3;
const LENGTH: usize = 128;
const LABELS: usize = 8;
/// Sentences per training batch, as `clause train` batches by default.
const TRAIN_BATCH: usize = 16;

/// One timed figure: the median rate of its calls, and how many there were.
struct Figure {
    rate: f64,
    repeats: usize,
}

/// Run `work` once to warm up, then time it call by call until it has run
/// [`MIN_REPEATS`] times and [`min_time`] has passed; the median of the
/// calls' rates in items per second, `items` being what one call processes.
fn throughput(items: usize, mut work: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Figure> {
    work()?;
    let (min_time, start) = (min_time(), Instant::now());
    let mut rates = Vec::new();
    while rates.len() < MIN_REPEATS || start.elapsed() < min_time {
        let began = Instant::now();
        work()?;
        rates.push(items as f64 / began.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let middle = rates.len() / 2;
    let rate = if rates.len() % 2 == 1 { rates[middle] } else { (rates[middle - 1] + rates[middle]) / 2.0 };
    Ok(Figure { rate, repeats: rates.len() })
}

/// Median milliseconds of `one(item)` over 3 passes through `items`, after
/// one untimed pass (bench_torch.py's `latency_p50_ms`).
fn latency_p50_ms<T>(items: &[T], mut one: impl FnMut(&T) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for item in items {
        one(item)?;
    }
    let mut times = Vec::with_capacity(3 * items.len());
    for _ in 0..3 {
        for item in items {
            let began = Instant::now();
            one(item)?;
            times.push(1000.0 * began.elapsed().as_secs_f64());
        }
    }
    anyhow::ensure!(!times.is_empty(), "no texts to time");
    times.sort_by(f64::total_cmp);
    let middle = times.len() / 2;
    Ok(if times.len() % 2 == 1 { times[middle] } else { (times[middle - 1] + times[middle]) / 2.0 })
}

/// The JSON object printed: figures, and the timed calls behind each.
#[derive(Default)]
struct Figures {
    values: serde_json::Map<String, Value>,
    repeats: serde_json::Map<String, Value>,
}

impl Figures {
    fn timed(&mut self, key: &str, figure: Figure) {
        self.values.insert(key.into(), json!(figure.rate));
        self.repeats.insert(key.into(), json!(figure.repeats));
    }

    fn set(&mut self, key: &str, value: Value) {
        self.values.insert(key.into(), value);
    }
}

/// Token positions that batches compute, padding included: each batch is
/// padded to its longest sequence.
fn padded_tokens(lengths: &[usize], batches: impl IntoIterator<Item = Vec<usize>>) -> usize {
    batches.into_iter().map(|batch| batch.len() * batch.iter().map(|&i| lengths[i]).max().unwrap_or(0)).sum()
}

/// Every how manyth sentence of the epoch the training sample takes.
const EPOCH_SAMPLE: usize = 8;

/// Texts written one JSON string a line (scripts/bench's `single.jsonl`).
fn read_texts(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|err| anyhow::anyhow!("{}:{}: {err}", path.display(), index + 1))
        })
        .collect()
}

fn write_texts(path: &Path, texts: &[&str]) -> anyhow::Result<()> {
    let lines: Vec<String> = texts.iter().map(|text| json!(text).to_string()).collect();
    std::fs::write(path, lines.join("\n") + "\n").map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// `BENCH_TEXTS`: keep only the first N texts of each input (smoke tests).
fn text_limit() -> usize {
    std::env::var("BENCH_TEXTS").ok().and_then(|s| s.parse::<usize>().ok()).unwrap_or(usize::MAX)
}

/// The test split, and the sample of the first epoch; the test split's
/// labels and the dataset's label names go to WORK_DIR for the F1 figures.
fn prepare(dataset: &Path, work: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let recipe = LoadedRecipe::load(dataset)?;
    let limit = text_limit();
    let test_split: Vec<_> = read_split(&recipe, Split::Test)?.into_iter().take(limit).collect();
    let test: Vec<String> = test_split.iter().map(|e| e.text.clone()).collect();
    let train = read_split(&recipe, Split::Train)?;
    let has_label: Vec<bool> = train.iter().map(|e| !e.labels.is_empty()).collect();
    let config = TrainConfig::default();
    let epoch: Vec<String> = epoch_examples(&has_label, config.negative_ratio, config.seed, 0)
        .into_iter()
        .step_by(EPOCH_SAMPLE)
        .take(limit)
        .map(|i| train[i].text.clone())
        .collect();
    std::fs::create_dir_all(work)?;
    write_texts(&work.join("test.jsonl"), &test.iter().map(String::as_str).collect::<Vec<_>>())?;
    write_texts(&work.join("epoch.jsonl"), &epoch.iter().map(String::as_str).collect::<Vec<_>>())?;
    let labels: Vec<String> = test_split.iter().map(|e| json!(e.labels).to_string()).collect();
    let path = work.join("test_labels.jsonl");
    std::fs::write(&path, labels.join("\n") + "\n").map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    let path = work.join("labels.json");
    std::fs::write(&path, json!(recipe.recipe.label_names()).to_string())
        .map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    Ok((test, epoch))
}

/// The model's lexical-stage margins on each test text, one JSON array a
/// line, which its calibration weighs: `bench_onnx.py` needs them for the
/// F1 figures. Empty for a model without the stage.
fn write_margins(classifier: &Classifier, texts: &[String], path: &Path) -> anyhow::Result<()> {
    let passages: Vec<Passage<'_>> = texts.iter().map(|t| Passage::text(t)).collect();
    let lines: Vec<String> = classifier.views(&passages)?.margins.iter().map(|row| json!(row).to_string()).collect();
    let text = if lines.is_empty() { String::new() } else { lines.join("\n") + "\n" };
    std::fs::write(path, text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
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
    Ok(2.0 * (n as f64).powi(3) * per_second.rate / 1e9)
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
    let mut figures = Figures::default();
    figures.set("gemm_gflops", json!(gemm(&device)?));

    let start = Instant::now();
    let classifier = Classifier::load(model_dir, &device)?;
    figures.set("load_seconds", json!(start.elapsed().as_secs_f64()));
    write_margins(&classifier, &test, &work.join("test_margins.jsonl"))?;

    let mut rng = SplitMix64::new(5);
    for batch in [1, 8, 32, 128] {
        let ids: Vec<Vec<u32>> = random_ids(&mut rng, batch, &device)?.to_vec2()?;
        let plan = BatchPlan { batch_size: batch, by_length: false };
        let figure = throughput(batch, || {
            classifier.predict_ids(&ids, plan, &mut |_| {})?;
            Ok(())
        })?;
        figures.timed(&format!("infer_b{batch}"), figure);
    }

    // Single texts, as `serve` answers them (scripts/bench writes them):
    // each classified alone, at its own length.
    let single = read_texts(&work.join("single.jsonl"))?;
    let single = classifier.token_ids(&single.iter().map(String::as_str).collect::<Vec<_>>())?;
    let plan = BatchPlan { batch_size: 1, by_length: false };
    let p50 = latency_p50_ms(&single, |sequence| {
        classifier.predict_ids(std::slice::from_ref(sequence), plan, &mut |_| {})?;
        Ok(())
    })?;
    figures.set("single_p50_ms", json!(p50));

    // The test split as `clause classify` batches it: sorted by length,
    // batches of 32 shared out one part a thread, each part padded to its
    // longest. Each text is read once, truncated to the model's maximum
    // length (`clause classify` would read a longer one in overlapping
    // windows; the other sides cannot), and tokenised before the clock.
    let texts: Vec<&str> = test.iter().map(String::as_str).collect();
    let ids = classifier.token_ids(&texts)?;
    let plan = BatchPlan::default();
    let figure = throughput(texts.len(), || {
        classifier.predict_ids(&ids, plan, &mut |_| {})?;
        Ok(())
    })?;
    figures.timed("infer_real", figure);
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    // The parts `Classifier::predict_ids` runs: the sorted order cut into
    // batch_size / threads sequences a part.
    let threads = candle_core::utils::get_num_threads().max(1);
    let part = if threads <= 1 { plan.batch_size } else { plan.batch_size.div_ceil(threads) };
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| (lengths[i], i));
    figures.set("infer_real_tokens", json!(lengths.iter().sum::<usize>()));
    figures.set("infer_real_padded_tokens", json!(padded_tokens(&lengths, order.chunks(part).map(<[usize]>::to_vec))));
    drop(classifier);

    let mut trainer = Trainer::new(base, &device)?;
    let ids = random_ids(&mut rng, TRAIN_BATCH, &device)?;
    let mask = Tensor::ones((TRAIN_BATCH, LENGTH), DType::U32, &device)?;
    figures.timed("train_b16", throughput(TRAIN_BATCH, || trainer.step(&ids, &mask))?);

    // The epoch sample, batched as `clause train` batches: shuffled, cut into
    // pools of 50 batches, each pool sorted by length and cut into batches of
    // 16, each padded to its longest; the batches in shuffled order
    // (`epoch_batches`; bench_torch.py groups the same way). Tokenised
    // before the clock; each timed call is one pass over the sample.
    let encoder = TextEncoder::from_file(&base.join("tokenizer.json"), LENGTH)?;
    let sentences: Vec<&str> = epoch.iter().map(String::as_str).collect();
    let token_ids = encoder.token_ids(&sentences)?;
    let lengths: Vec<usize> = token_ids.iter().map(Vec::len).collect();
    let batches = epoch_batches(&lengths, TRAIN_BATCH, 13, 0);
    let figure = throughput(sentences.len(), || {
        for batch in &batches {
            let sequences: Vec<&[u32]> = batch.iter().map(|&i| token_ids[i].as_slice()).collect();
            let encoded = encoder.batch(&sequences, &device)?;
            trainer.step(&encoded.ids, &encoded.attention_mask)?;
        }
        Ok(())
    })?;
    figures.timed("train_epoch", figure);
    figures.set("train_epoch_tokens", json!(lengths.iter().sum::<usize>()));
    figures.set("train_epoch_padded_tokens", json!(padded_tokens(&lengths, batches)));
    figures.set("threads", json!(std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<usize>().ok())));
    let Figures { mut values, repeats } = figures;
    values.insert("repeats".into(), Value::Object(repeats));
    println!("{}", Value::Object(values));
    Ok(())
}
