//! The training loop on a tiny random model and a synthetic task: gradients
//! move every parameter, the model can overfit, and a resumed run ends with
//! the weights of an uninterrupted one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};
use clause_data::example::Example;
use clause_infer::model::{BertConfig, Pooling, TrainableModel};
use clause_infer::rng::SplitMix64;
use clause_train::checkpoint::EpochRecord;
use clause_train::fixtures::WORDS;
use clause_train::loss::weighted_bce_with_logits;
use clause_train::optim::{AdamW, AdamWParams};
use clause_train::trainer::{LabelInfo, Observer, Silent, TrainData, TrainOptions, TrainOutcome, train};
use clause_train::{Error, TrainConfig};

fn tiny_base(dir: &Path) {
    clause_train::fixtures::tiny_base(dir).expect("tiny base model");
}

/// 32 sentences; `surveillance` iff "search" or "seize" occurs, `extradition`
/// iff "extradite" or "surrender", `secrecy` iff "secret" or "confidential".
fn examples(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let mut words: Vec<&str> = (0..4).map(|_| WORDS[6 + rng.below(6)]).collect();
            let mut labels = Vec::new();
            for (bit, (label, pair)) in
                [("surveillance", [0, 1]), ("extradition", [2, 3]), ("secrecy", [4, 5])].iter().enumerate()
            {
                if (i >> bit) & 1 == 1 || (i % 7 == 0 && bit == 2) {
                    words.insert(rng.below(words.len() + 1), WORDS[pair[rng.below(2)]]);
                    labels.push(label.to_string());
                }
            }
            Example {
                id: format!("t:{i}"),
                document: "t".into(),
                text: words.join(" "),
                labels,
                article: None,
                paragraph: None,
                title: None,
                chapter: None,
                origin: String::new(),
            }
        })
        .collect()
}

fn data(train: Vec<Example>, validation: Vec<Example>) -> TrainData {
    TrainData {
        dataset: "synthetic".into(),
        manifest_sha256: "0".repeat(64),
        labels: ["surveillance", "extradition", "secrecy"]
            .iter()
            .map(|l| LabelInfo { name: l.to_string(), description: format!("{l} words") })
            .collect(),
        test: validation.clone(),
        train,
        validation,
        rationales: Vec::new(),
        written: Vec::new(),
        unit: clause_infer::input::Unit::Provision,
    }
}

fn options(base: &Path, out: &Path, config: TrainConfig) -> TrainOptions {
    TrainOptions {
        base_source: base.display().to_string(),
        base: base.to_path_buf(),
        out: out.to_path_buf(),
        config,
        device: Device::Cpu,
        resume: false,
        interrupt: None,
    }
}

fn read_weights(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).expect("weights")
}

fn max_difference(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .map(|(name, x)| {
            let y = &b[name];
            (x - y).expect("sub").abs().expect("abs").max_all().expect("max").to_scalar::<f32>().expect("scalar")
        })
        .fold(0.0, f32::max)
}

#[test]
fn one_optimizer_step_changes_every_parameter() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_base(dir.path());
    let config = BertConfig::from_file(&dir.path().join("config.json")).expect("config");
    let device = Device::Cpu;
    for pooling in [Pooling::Cls, Pooling::Mean] {
        let model =
            TrainableModel::from_pretrained(&config, &dir.path().join("model.safetensors"), 3, pooling, 1, &device)
                .expect("model");
        let before: HashMap<String, Tensor> = model
            .vars
            .data()
            .lock()
            .expect("lock")
            .iter()
            .map(|(n, v)| (n.clone(), v.as_detached_tensor().copy().expect("copy")))
            .collect();
        let mut optimizer = AdamW::new(
            &model.vars,
            AdamWParams { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, max_grad_norm: 1.0, ema_decay: 0.0 },
        )
        .expect("optimizer");
        let ids = Tensor::new(&[[2u32, 4, 9, 12, 3], [2, 6, 3, 0, 0]], &device).expect("ids");
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &device).expect("mask");
        let targets = Tensor::new(&[[1f32, 0.0, 1.0], [0.0, 1.0, 0.0]], &device).expect("targets");
        let weights = Tensor::new(&[2f32, 2.0, 2.0], &device).expect("weights");
        let mut rngs = [SplitMix64::new(3), SplitMix64::new(4)];
        let logits = model.model.forward(&ids, &mask, Some(&mut rngs)).expect("forward");
        let loss = weighted_bce_with_logits(&logits, &targets, &weights).expect("loss");
        optimizer.accumulate(&loss.backward().expect("backward")).expect("accumulate");
        optimizer.apply(1e-3).expect("step");
        let after = model.vars.data().lock().expect("lock");
        for (name, old) in &before {
            let changed: f32 = (after[name].as_tensor() - old)
                .expect("sub")
                .abs()
                .expect("abs")
                .max_all()
                .expect("max")
                .to_scalar()
                .expect("s");
            assert!(changed > 0.0, "{pooling:?}: {name} did not change");
        }
    }
}

#[test]
fn a_tiny_model_overfits_32_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_base(dir.path());
    let out = dir.path().join("model");
    let train_set = examples(32, 1);
    let config = TrainConfig {
        epochs: 60,
        batch_size: 8,
        learning_rate: 3e-3,
        warmup_ratio: 0.0,
        hidden_dropout: Some(0.0),
        patience: 1000,
        // No label has that many positives: every threshold stays 0.5, so the
        // score below is that of plain decisions.
        threshold_min_positives: 1000,
        ..TrainConfig::default()
    };
    let outcome =
        train(&data(train_set.clone(), train_set), &options(dir.path(), &out, config), &mut Silent).expect("train");
    let TrainOutcome::Finished(card) = outcome else { panic!("not finished") };
    assert!(card.model.labels.iter().all(|l| l.threshold == 0.5));
    assert_eq!(card.validation.micro_f1, 1.0, "{:#?}", card.history.last());
    assert_eq!(card.validation.macro_f1, 1.0);
    for file in ["config.json", "model.safetensors", "tokenizer.json", "clause.json"] {
        assert!(out.join(file).exists(), "{file}");
    }
    assert!(!out.join("checkpoint").exists(), "the checkpoint is removed after a finished run");
    let hf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).expect("read")).expect("json");
    assert_eq!(hf["id2label"]["1"], "extradition");
    assert_eq!(hf["label2id"]["secrecy"], 2);
    assert_eq!(hf["problem_type"], "multi_label_classification");
    let weights = read_weights(&out);
    assert_eq!(weights["classifier.weight"].dims(), [3, 16]);
    // Mean pooling (the default) has no pooler, and says so.
    assert!(!weights.contains_key("bert.pooler.dense.weight"));
    assert_eq!(hf["clause_pooling"], "mean");
}

/// Interrupts at a given (epoch, batch), as Ctrl-C would.
struct InterruptAt {
    flag: Arc<AtomicBool>,
    epoch: usize,
    after_batches: usize,
    current_epoch: usize,
    seen: usize,
}

impl Observer for InterruptAt {
    fn epoch_started(&mut self, epoch: usize, _epochs: usize, _batches: usize, done: usize) {
        self.current_epoch = epoch;
        self.seen = done;
        if epoch == self.epoch && self.after_batches == 0 {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
    fn batch_finished(&mut self, _loss: f64, _sequences: usize) {
        self.seen += 1;
        if self.current_epoch == self.epoch && self.seen == self.after_batches {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
    fn epoch_finished(&mut self, _record: &EpochRecord, _improved: bool) {}
}

#[test]
fn resuming_gives_the_weights_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_base(dir.path());
    let plain = TrainConfig { epochs: 2, batch_size: 4, patience: 1000, ..TrainConfig::default() };
    // With a running average, the written model is the average, which the
    // checkpoint must carry for the resumed run to end on the same one.
    let averaged = TrainConfig { ema_decay: 0.9, ..plain.clone() };
    let data = data(examples(32, 1), examples(16, 2));

    for (name, config) in [("plain", plain), ("averaged", averaged)] {
        let straight = dir.path().join(format!("{name}-straight"));
        train(&data, &options(dir.path(), &straight, config.clone()), &mut Silent).expect("train");
        let expected = read_weights(&straight);

        // Stopped at the start of epoch 2, and in the middle of epoch 1.
        for (epoch, after_batches) in [(2, 0), (1, 3)] {
            let out = dir.path().join(format!("{name}-resumed-{epoch}-{after_batches}"));
            let flag = Arc::new(AtomicBool::new(false));
            let mut first = options(dir.path(), &out, config.clone());
            first.interrupt = Some(flag.clone());
            let mut observer = InterruptAt { flag: flag.clone(), epoch, after_batches, current_epoch: 0, seen: 0 };
            let outcome = train(&data, &first, &mut observer).expect("first part");
            assert!(matches!(outcome, TrainOutcome::Interrupted { .. }), "{outcome:?}");
            assert!(out.join("checkpoint/state.json").exists());
            assert!(!out.join("model.safetensors").exists());

            let mut second = options(dir.path(), &out, config.clone());
            second.resume = true;
            let outcome = train(&data, &second, &mut Silent).expect("resumed");
            assert!(matches!(outcome, TrainOutcome::Finished(_)));
            let difference = max_difference(&expected, &read_weights(&out));
            assert!(
                difference <= 1e-6,
                "{name}, interrupted at epoch {epoch} batch {after_batches}: weights differ by {difference}"
            );
        }
    }
    // The average is not the last step's weights.
    let difference = max_difference(
        &read_weights(&dir.path().join("plain-straight")),
        &read_weights(&dir.path().join("averaged-straight")),
    );
    assert!(difference > 1e-4, "the averaged model equals the plain one (difference {difference})");
}

/// A run of 2 epochs on 16 examples, interrupted at the start of epoch 2,
/// so that `<dir>/run` holds the checkpoint written after epoch 1.
fn interrupted_after_epoch_1() -> (tempfile::TempDir, TrainConfig, TrainData, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_base(dir.path());
    let config = TrainConfig { epochs: 2, batch_size: 4, ..TrainConfig::default() };
    let data = data(examples(16, 1), examples(8, 2));
    let out = dir.path().join("run");
    let flag = Arc::new(AtomicBool::new(false));
    let mut first = options(dir.path(), &out, config.clone());
    first.interrupt = Some(flag.clone());
    let mut observer = InterruptAt { flag, epoch: 2, after_batches: 0, current_epoch: 0, seen: 0 };
    train(&data, &first, &mut observer).expect("first part");
    (dir, config, data, out)
}

#[test]
fn resume_refuses_a_corrupted_checkpoint_or_other_settings() {
    let (dir, config, data, out) = interrupted_after_epoch_1();

    let mut changed = options(dir.path(), &out, TrainConfig { learning_rate: 1.0, ..config.clone() });
    changed.resume = true;
    let err = train(&data, &changed, &mut Silent).expect_err("other settings").to_string();
    assert!(err.contains("checkpoint") && err.contains("different training configuration"), "{err}");

    let weights = out.join("checkpoint/model.safetensors");
    let mut bytes = std::fs::read(&weights).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&weights, bytes).expect("write");
    let mut resumed = options(dir.path(), &out, config);
    resumed.resume = true;
    let err = train(&data, &resumed, &mut Silent).expect_err("corrupted").to_string();
    assert!(err.contains("model.safetensors") && err.contains("corrupted"), "{err}");
}

/// A run killed between the two renames that replace a checkpoint leaves
/// none in place: loading takes the complete one moved aside, not a staged
/// one whose writing was cut short, and puts it back in place.
#[test]
fn a_checkpoint_moved_aside_is_found_and_a_partial_one_ignored() {
    let (_dir, _, _, out) = interrupted_after_epoch_1();

    std::fs::rename(out.join("checkpoint"), out.join(".checkpoint.old-7")).expect("move aside");
    let partial = out.join(".checkpoint.tmp-8");
    std::fs::create_dir(&partial).expect("mkdir");
    std::fs::write(partial.join("model.safetensors"), b"cut short").expect("write");
    let loaded = clause_train::checkpoint::load(&out, &Device::Cpu).expect("recovered");
    assert_eq!((loaded.state.epoch, loaded.state.batch), (1, 0));
    assert!(out.join("checkpoint/state.json").exists());
    assert!(!out.join(".checkpoint.old-7").exists() && !partial.exists());
}

#[test]
fn an_incomplete_base_model_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    tiny_base(dir.path());
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    let data = data(examples(8, 1), examples(8, 2));
    let err = train(&data, &options(dir.path(), &dir.path().join("out"), TrainConfig::default()), &mut Silent)
        .expect_err("missing tokenizer");
    assert!(matches!(err, Error::BaseModel { .. }));
    assert!(err.to_string().contains("tokenizer.json is missing"), "{err}");
}
