//! The training loop.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use clause_data::example::Example;
use clause_data::rationales::Located;
use clause_data::written::WrittenSentence;
use clause_eval::calibration::{Platt, apply_per_label};
use clause_eval::metrics::{Metrics, decide, evaluate, tune_thresholds};
use clause_infer::input::{Context, Unit};
use clause_infer::lexical::LexicalStage;
use clause_infer::model::{BertClassifier, BertConfig, TrainableModel};
use clause_infer::reading::Views;
use clause_infer::rng::SplitMix64;
use clause_infer::tokenize::TextEncoder;

use crate::augment::training_examples;
use crate::batches::{epoch_batches, epoch_examples, negatives_kept, sorted_batches};
use crate::checkpoint::{self, CheckpointTensors, EpochRecord, RunState, checkpoint_dir};
use crate::config::TrainConfig;
use crate::export::{BaseModel, DatasetRef, FORMAT_VERSION, ModelCard, ModelLabel, TrainedCard, write_model_dir};
use crate::lexical::fit_stage;
use crate::optim::AdamW;
use crate::refit::{Fitted, calibrate_and_tune};
use crate::schedule::linear_warmup_decay;
use crate::step::{MicroBatch, accumulate_gradients, dropout_generators};
use crate::{Error, io_error, passages, pos_weights, truth};

/// A label as the dataset declares it.
#[derive(Debug, Clone)]
pub struct LabelInfo {
    /// The label.
    pub name: String,
    /// What it means.
    pub description: String,
}

/// What to train on.
pub struct TrainData {
    /// Dataset name.
    pub dataset: String,
    /// sha256 of the dataset's `manifest.json`.
    pub manifest_sha256: String,
    /// Labels in output order.
    pub labels: Vec<LabelInfo>,
    /// Training split.
    pub train: Vec<Example>,
    /// Validation split: early stopping and thresholds.
    pub validation: Vec<Example>,
    /// Test split: evaluated once, at the end, to report.
    pub test: Vec<Example>,
    /// Rationale spans of the training split's provisions (others are
    /// ignored), for [`TrainConfig::rationale_examples`].
    pub rationales: Vec<Located>,
    /// Sentences written for training from the recipe's guidelines, for
    /// [`TrainConfig::written_sentences`].
    pub written: Vec<WrittenSentence>,
    /// What one example is (the recipe's [`clause_data::recipe::Recipe::unit`]),
    /// recorded in the model card.
    pub unit: Unit,
}

/// How to train.
#[derive(Clone)]
pub struct TrainOptions {
    /// Base model directory (`config.json`, `tokenizer.json`, `model.safetensors`).
    pub base: PathBuf,
    /// How the user named the base model (a directory or a Hub id), for the model card.
    pub base_source: String,
    /// Output model directory; its `checkpoint/` holds the run's state.
    pub out: PathBuf,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Where to compute.
    pub device: Device,
    /// Continue from `<out>/checkpoint`.
    pub resume: bool,
    /// Set (by a Ctrl-C handler) to stop at the next batch with a checkpoint.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// Progress callbacks, for the binary's progress display.
pub trait Observer {
    /// An epoch begins: `epoch` is 1-based, `batches` counts the epoch's
    /// batches, `done` those already trained (after a resume).
    fn epoch_started(&mut self, _epoch: usize, _epochs: usize, _batches: usize, _done: usize) {}
    /// A batch was trained.
    fn batch_finished(&mut self, _loss: f64, _sequences: usize) {}
    /// An epoch ended and was evaluated.
    fn epoch_finished(&mut self, _record: &EpochRecord, _improved: bool) {}
    /// Member `member` (1-based) of an ensemble of `members` begins (or
    /// was finished before a resume, `done`).
    fn member_started(&mut self, _member: usize, _members: usize, _done: bool) {}
    /// Cross-validation began training fold `fold` of `folds`, which holds
    /// `held_out` out.
    fn fold_started(&mut self, _fold: usize, _folds: usize, _held_out: &[Example]) {}
}

/// An observer that reports nothing.
pub struct Silent;
impl Observer for Silent {}

/// The result of a run.
#[derive(Debug, Clone)]
pub enum TrainOutcome {
    /// Training finished and the model directory was written.
    Finished(Box<TrainedCard>),
    /// Interrupted; a checkpoint was written and `--resume` continues.
    Interrupted {
        /// 1-based epoch it stopped in.
        epoch: usize,
        /// Batches done in it.
        batch: usize,
    },
}

/// Everything a run computes from its inputs once.
struct Prepared {
    config: BertConfig,
    encoder: TextEncoder,
    train_ids: Vec<Vec<u32>>,
    /// The same examples without their headings, where headings dropout
    /// reads some of them so.
    train_ids_bare: Option<Vec<Vec<u32>>>,
    train_targets: Vec<Vec<f32>>,
    /// Whether each training example carries at least one label.
    train_has_label: Vec<bool>,
    validation_views: Views,
    validation_truth: Vec<Vec<bool>>,
    test_views: Views,
    test_truth: Vec<Vec<bool>>,
    /// The lexical stage, where the settings ask for one; the views above
    /// carry its margins.
    lexical: Option<LexicalStage>,
    pos_weight: Tensor,
    label_names: Vec<String>,
}

/// Train a classifier; see the crate documentation. A run starts fresh or
/// from its checkpoint ([`Run::start_or_resume`]), trains and validates
/// epoch after epoch while the schedule and early stopping allow
/// ([`Run::train_epoch`], [`Run::end_epoch`]), then scores test once and
/// writes the model directory ([`Run::finish`]).
pub fn train(data: &TrainData, options: &TrainOptions, observer: &mut dyn Observer) -> Result<TrainOutcome, Error> {
    let config = &options.config;
    config.check().map_err(|message| Error::Config { path: PathBuf::from("training configuration"), message })?;
    let mut run = Run::new(data, options)?;
    let (mut state, mut best_weights) = run.start_or_resume()?;
    while run.continues(&state) {
        if let Some(interrupted) = run.train_epoch(&mut state, best_weights.as_ref(), observer)? {
            return Ok(interrupted);
        }
        run.end_epoch(&mut state, &mut best_weights, observer)?;
    }
    run.finish(&state, best_weights.as_ref())
}

/// Weights by parameter name.
type Weights = HashMap<String, Tensor>;

/// One training run: what it reads, the model it trains, and its schedule.
struct Run<'a> {
    data: &'a TrainData,
    options: &'a TrainOptions,
    prepared: Prepared,
    trainable: TrainableModel,
    optimizer: AdamW,
    /// Token length of each training example, for batching.
    lengths: Vec<usize>,
    /// Epochs at most.
    epochs: usize,
    total_steps: usize,
    warmup_steps: usize,
}

impl<'a> Run<'a> {
    fn new(data: &'a TrainData, options: &'a TrainOptions) -> Result<Self, Error> {
        let config = &options.config;
        let prepared = prepare(data, options)?;
        let trainable = TrainableModel::from_pretrained(
            &prepared.config,
            &options.base.join("model.safetensors"),
            data.labels.len(),
            config.pooling,
            config.seed,
            &options.device,
        )?;
        let optimizer = AdamW::new(&trainable.vars, config.adamw_params())?;
        let lengths: Vec<usize> = prepared.train_ids.iter().map(Vec::len).collect();
        let examples_per_epoch = epoch_examples(&prepared.train_has_label, config.negative_ratio, config.seed, 0).len();
        let batches_per_epoch = examples_per_epoch.div_ceil(config.batch_size);
        let steps_per_epoch = batches_per_epoch.div_ceil(config.grad_accumulation);
        let epochs = config.epochs_for(steps_per_epoch);
        tracing::info!(epochs, steps_per_epoch, "epochs at most (early stopping may end sooner)");
        let total_steps = steps_per_epoch * epochs;
        let warmup_steps = (config.warmup_ratio * total_steps as f64).round() as usize;
        std::fs::create_dir_all(&options.out).map_err(io_error(&options.out))?;
        Ok(Self { data, options, prepared, trainable, optimizer, lengths, epochs, total_steps, warmup_steps })
    }

    /// A fresh state, or the checkpoint's (weights, optimizer and best
    /// weights restored), refused when it was written with other settings
    /// or for another build of the dataset.
    fn start_or_resume(&mut self) -> Result<(RunState, Option<Weights>), Error> {
        let (config, data) = (&self.options.config, self.data);
        if !self.options.resume {
            let state = RunState {
                config: config.clone(),
                dataset_manifest_sha256: data.manifest_sha256.clone(),
                epoch: 0,
                batch: 0,
                epoch_loss: 0.0,
                epoch_batches: 0,
                epoch_sequences: 0,
                epoch_seconds: 0.0,
                step: 0,
                rng: SplitMix64::new(config.seed ^ 0x5eed_d20f_0a7e_0001),
                history: Vec::new(),
                best: None,
                epochs_without_improvement: 0,
                seconds: 0.0,
            };
            return Ok((state, None));
        }
        let loaded = checkpoint::load(&self.options.out, &self.options.device)?;
        let dir = checkpoint_dir(&self.options.out);
        if loaded.state.config != *config {
            return Err(Error::Checkpoint {
                path: dir,
                message: "it was written with a different training configuration; resume with the same settings"
                    .to_string(),
            });
        }
        if loaded.state.dataset_manifest_sha256 != data.manifest_sha256 {
            return Err(Error::Checkpoint {
                path: dir,
                message: "it was written for a different build of the dataset".to_string(),
            });
        }
        set_weights(&self.trainable, &loaded.weights)?;
        self.optimizer.restore(&loaded.optimizer, loaded.state.step)?;
        tracing::info!(epoch = loaded.state.epoch + 1, batch = loaded.state.batch, "resuming");
        Ok((loaded.state, loaded.best))
    }

    /// Whether another epoch runs: the schedule has one left and early
    /// stopping has not ended the run.
    fn continues(&self, state: &RunState) -> bool {
        state.epoch < self.epochs
            && !(state.best.is_some() && state.epochs_without_improvement >= self.options.config.patience)
    }

    /// Train the rest of the current epoch's batches. On an interrupt (at an
    /// optimizer-step boundary) a checkpoint is written and the outcome
    /// returned.
    fn train_epoch(
        &mut self,
        state: &mut RunState,
        best_weights: Option<&Weights>,
        observer: &mut dyn Observer,
    ) -> Result<Option<TrainOutcome>, Error> {
        let (config, device) = (&self.options.config, &self.options.device);
        let examples = epoch_examples(&self.prepared.train_has_label, config.negative_ratio, config.seed, state.epoch);
        let example_lengths: Vec<usize> = examples.iter().map(|&i| self.lengths[i]).collect();
        let batches: Vec<Vec<usize>> = epoch_batches(&example_lengths, config.batch_size, config.seed, state.epoch)
            .into_iter()
            .map(|batch| batch.into_iter().map(|i| examples[i]).collect())
            .collect();
        observer.epoch_started(state.epoch + 1, self.epochs, batches.len(), state.batch);
        let clock = Instant::now();
        while state.batch < batches.len() {
            let at_step_boundary = state.batch.is_multiple_of(config.grad_accumulation);
            if at_step_boundary && self.options.interrupt.as_ref().is_some_and(|flag| flag.load(Ordering::SeqCst)) {
                state.epoch_seconds += clock.elapsed().as_secs_f64();
                save_checkpoint(&self.options.out, state, &self.trainable, &self.optimizer, best_weights)?;
                return Ok(Some(TrainOutcome::Interrupted { epoch: state.epoch + 1, batch: state.batch }));
            }
            crate::pause::here(|| format!("epoch {} batch {}", state.epoch + 1, state.batch));
            let batch = &batches[state.batch];
            let headings = HeadingsDraw { dropout: config.headings_dropout, seed: config.seed, epoch: state.epoch };
            let loss = train_batch(
                &self.trainable.model,
                &self.prepared,
                batch,
                headings,
                &mut state.rng,
                config.grad_accumulation,
                &mut self.optimizer,
                device,
            )?;
            let last_of_step =
                (state.batch + 1).is_multiple_of(config.grad_accumulation) || state.batch + 1 == batches.len();
            if last_of_step {
                let lr = linear_warmup_decay(config.learning_rate, state.step, self.total_steps, self.warmup_steps);
                self.optimizer.apply(lr)?;
                state.step = self.optimizer.steps();
            }
            state.epoch_loss += loss;
            state.epoch_batches += 1;
            state.epoch_sequences += batch.len();
            state.batch += 1;
            observer.batch_finished(loss, batch.len());
        }
        state.epoch_seconds += clock.elapsed().as_secs_f64();
        Ok(None)
    }

    /// Validate the epoch just trained: tune thresholds and score on
    /// validation, keep its weights when macro-F1 improved, record it, and
    /// write a checkpoint.
    fn end_epoch(
        &mut self,
        state: &mut RunState,
        best_weights: &mut Option<Weights>,
        observer: &mut dyn Observer,
    ) -> Result<(), Error> {
        let (config, prepared) = (&self.options.config, &self.prepared);
        let clock = Instant::now();
        // With averaging on, the averaged weights are the ones judged and
        // kept; the trained ones go back in place to continue from.
        let averaged = self.optimizer.averaged()?;
        let trained = match &averaged {
            Some(averaged) => {
                let trained = weights(&self.trainable)?;
                set_weights(&self.trainable, averaged)?;
                Some(trained)
            }
            None => None,
        };
        let probabilities = self.validation_scores()?;
        if let Some(trained) = &trained {
            set_weights(&self.trainable, trained)?;
        }
        let thresholds =
            tune_thresholds(&probabilities, &prepared.validation_truth, config.threshold_min_positives, 0.5);
        let validation = score(&prepared.label_names, &prepared.validation_truth, &probabilities, &thresholds)?;
        let record = EpochRecord {
            epoch: state.epoch + 1,
            train_loss: state.epoch_loss / state.epoch_batches.max(1) as f64,
            validation,
            thresholds,
            seconds: state.epoch_seconds,
            sequences_per_second: state.epoch_sequences as f64 / state.epoch_seconds.max(1e-9),
        };
        let improved =
            state.best.is_none_or(|best| record.validation.macro_f1 > state.history[best].validation.macro_f1);
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), "validation");
        observer.epoch_finished(&record, improved);
        state.seconds += state.epoch_seconds;
        state.history.push(record);
        let new_best = if improved {
            state.best = Some(state.history.len() - 1);
            state.epochs_without_improvement = 0;
            *best_weights = Some(match averaged {
                Some(averaged) => averaged,
                None => weights(&self.trainable)?,
            });
            best_weights.as_ref()
        } else {
            state.epochs_without_improvement += 1;
            None
        };
        state.epoch += 1;
        state.batch = 0;
        state.epoch_loss = 0.0;
        state.epoch_batches = 0;
        state.epoch_sequences = 0;
        state.epoch_seconds = 0.0;
        save_checkpoint(&self.options.out, state, &self.trainable, &self.optimizer, new_best)
    }

    /// Put the best epoch's weights back, score test once, write the model
    /// directory and remove the checkpoint.
    fn finish(self, state: &RunState, best_weights: Option<&Weights>) -> Result<TrainOutcome, Error> {
        let (config, device, prepared, options) =
            (&self.options.config, &self.options.device, &self.prepared, self.options);
        let best_index = state.best.ok_or_else(|| Error::Data("no epoch was trained".to_string()))?;
        let best = &state.history[best_index];
        if let Some(weights) = best_weights {
            set_weights(&self.trainable, weights)?;
        }
        // Calibration is fitted on the kept weights' validation scores, and
        // the thresholds tuned again on the calibrated scores.
        let Fitted { calibration, thresholds, scores: validation_scores } = calibrate_and_tune(
            self.validation_scores()?,
            &prepared.validation_truth,
            &prepared.validation_views.margins,
            config.threshold_min_positives,
        );
        let validation = score(&prepared.label_names, &prepared.validation_truth, &validation_scores, &thresholds)?;
        let test = if prepared.test_views.passages == 0 {
            None
        } else {
            let mut probabilities = predict_views(
                &self.trainable.model,
                &prepared.encoder,
                &prepared.test_views,
                config.batch_size * 2,
                device,
            )?;
            apply_per_label(&mut probabilities, &calibration, &prepared.test_views.margins);
            Some(score(&prepared.label_names, &prepared.test_truth, &probabilities, &thresholds)?)
        };
        let kept = Kept { best, validation, thresholds, calibration };
        let card = self.card(state, &kept, test)?;
        write_model_dir(
            &options.out,
            &prepared.config,
            &weights(&self.trainable)?,
            &options.base.join("tokenizer.json"),
            prepared.lexical.as_ref(),
            &card,
        )?;
        let dir = checkpoint_dir(&options.out);
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(TrainOutcome::Finished(Box::new(card)))
    }

    /// Raw scores of the validation split with the weights now in place.
    fn validation_scores(&self) -> Result<Vec<Vec<f32>>, Error> {
        let (config, prepared) = (&self.options.config, &self.prepared);
        predict_views(
            &self.trainable.model,
            &prepared.encoder,
            &prepared.validation_views,
            config.batch_size * 2,
            &self.options.device,
        )
    }

    /// The model card of a finished run and what it kept.
    fn card(&self, state: &RunState, kept: &Kept<'_>, test: Option<Metrics>) -> Result<TrainedCard, Error> {
        let (config, data, options) = (&self.options.config, self.data, self.options);
        let trained_sequences: f64 = state.history.iter().map(|r| r.sequences_per_second * r.seconds).sum();
        Ok(TrainedCard {
            model: ModelCard {
                format: FORMAT_VERSION,
                labels: model_labels(&data.labels, &kept.thresholds, &kept.calibration),
                max_length: config.max_length,
                pooling: config.pooling,
                context: config.context,
                reading: config.reading,
                unit: data.unit,
                ensemble: Vec::new(),
            },
            base_model: BaseModel {
                source: options.base_source.clone(),
                sha256: checkpoint::hash_file(&options.base.join("model.safetensors"))?,
            },
            dataset: DatasetRef { name: data.dataset.clone(), manifest_sha256: data.manifest_sha256.clone() },
            training: config.clone(),
            best_epoch: kept.best.epoch,
            validation: kept.validation.clone(),
            history: state.history.clone(),
            test,
            training_seconds: state.seconds,
            sequences_per_second: trained_sequences / state.seconds.max(1e-9),
            device: device_name(&options.device),
            versions: HashMap::from([
                ("clause".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                ("candle".to_string(), env!("CLAUSE_CANDLE_VERSION").to_string()),
            ]),
        })
    }
}

fn prepare(data: &TrainData, options: &TrainOptions) -> Result<Prepared, Error> {
    let base = &options.base;
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        if !base.join(file).exists() {
            return Err(Error::BaseModel { path: base.clone(), message: format!("{file} is missing") });
        }
    }
    let mut config = BertConfig::from_file(&base.join("config.json"))?;
    if let Some(p) = options.config.hidden_dropout {
        config.hidden_dropout_prob = p;
    }
    // The card's own check, naming the training configuration.
    clause_infer::card::check_max_length(Path::new("training configuration"), options.config.max_length, &config)?;
    let encoder = TextEncoder::from_file(&base.join("tokenizer.json"), options.config.max_length)?;
    if encoder.vocab_size() > config.vocab_size {
        return Err(Error::BaseModel {
            path: base.clone(),
            message: format!(
                "tokenizer.json has {} tokens but config.json says vocab_size {}: the tokenizer belongs to another model",
                encoder.vocab_size(),
                config.vocab_size
            ),
        });
    }
    if data.train.is_empty() || data.validation.is_empty() {
        return Err(Error::Data(format!(
            "{}: training needs train and validation examples (found {} and {})",
            data.dataset,
            data.train.len(),
            data.validation.len()
        )));
    }
    let label_names: Vec<String> = data.labels.iter().map(|l| l.name.clone()).collect();
    let truth = |examples: &[Example]| truth(examples, &label_names);
    let settings = &options.config;
    let ids = |examples: &[Example], context: Context| -> Result<Vec<Vec<u32>>, Error> {
        let inputs: Vec<Cow<'_, str>> = examples.iter().map(|e| context.compose(&e.passage())).collect();
        let texts: Vec<&str> = inputs.iter().map(|t| t.as_ref()).collect();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(2048) {
            out.extend(encoder.token_ids(chunk)?);
        }
        Ok(out)
    };
    let train = training_examples(data, &label_names, settings);
    let train_truth = truth(&train);
    // Fitted in seconds, so a resumed run fits it again rather than storing it.
    let lexical = settings.lexical.then(|| {
        fit_stage(
            &passages(&train),
            &train_truth,
            &passages(&data.validation),
            &truth(&data.validation),
            settings.reading,
        )
    });
    let views = |examples: &[Example]| -> Result<Views, Error> {
        let passages = passages(examples);
        let mut views = Views::of(&encoder, settings.context, settings.reading, &passages)?;
        if let Some(stage) = &lexical {
            views.margins = stage.margins(&passages);
        }
        Ok(views)
    };
    let positives: Vec<usize> =
        (0..label_names.len()).map(|j| train_truth.iter().filter(|row| row[j]).count()).collect();
    let train_has_label: Vec<bool> = train_truth.iter().map(|row| row.contains(&true)).collect();
    let labelled = train_has_label.iter().filter(|&&b| b).count();
    let examples_per_epoch =
        labelled + negatives_kept(train_has_label.len() - labelled, labelled, settings.negative_ratio);
    let weights = pos_weights(&positives, examples_per_epoch, settings.pos_weight_cap);
    tracing::info!(?positives, ?weights, "positive weights");
    let dropout = settings.headings_dropout > 0.0 && settings.context != Context::Text;
    Ok(Prepared {
        pos_weight: Tensor::new(weights.as_slice(), &options.device)?,
        train_targets: train_truth.iter().map(|row| row.iter().map(|&b| f32::from(u8::from(b))).collect()).collect(),
        train_ids: ids(&train, settings.context)?,
        train_ids_bare: if dropout { Some(ids(&train, Context::Text)?) } else { None },
        train_has_label,
        validation_views: views(&data.validation)?,
        validation_truth: truth(&data.validation),
        test_views: views(&data.test)?,
        test_truth: truth(&data.test),
        lexical,
        encoder,
        config,
        label_names,
    })
}

/// Whether training example `index` reads its headings in `epoch`: all do
/// but a `dropout` share, drawn from the seed, the epoch and the index
/// alone, so that a resumed run draws alike.
fn reads_headings(dropout: f64, seed: u64, epoch: usize, index: usize) -> bool {
    let mut rng = SplitMix64::new(
        seed ^ 0x6865_6164_696e_6773
            ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (index as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9),
    );
    f64::from(rng.next_f32()) >= dropout
}

/// What decides, per example, whether it reads its headings this epoch.
#[derive(Debug, Clone, Copy)]
struct HeadingsDraw {
    dropout: f64,
    seed: u64,
    epoch: usize,
}

/// Train on one micro-batch: its gradients, scaled for accumulation, go
/// into `optimizer`; returns its mean loss.
#[allow(clippy::too_many_arguments)] // one micro-batch step needs the run's parts; a struct of them would be built per batch
fn train_batch(
    model: &BertClassifier,
    prepared: &Prepared,
    batch: &[usize],
    headings: HeadingsDraw,
    rng: &mut SplitMix64,
    accumulation: usize,
    optimizer: &mut AdamW,
    device: &Device,
) -> Result<f64, Error> {
    let sequences: Vec<&[u32]> = batch
        .iter()
        .map(|&i| match &prepared.train_ids_bare {
            Some(bare) if !reads_headings(headings.dropout, headings.seed, headings.epoch, i) => bare[i].as_slice(),
            _ => prepared.train_ids[i].as_slice(),
        })
        .collect();
    let encoded = prepared.encoder.batch(&sequences, device)?;
    let targets: Vec<f32> = batch.iter().flat_map(|&i| prepared.train_targets[i].iter().copied()).collect();
    let targets = Tensor::from_vec(targets, (batch.len(), prepared.label_names.len()), device)?;
    let micro_batch = MicroBatch { ids: &encoded.ids, attention_mask: &encoded.attention_mask, targets: &targets };
    let mut rngs = dropout_generators(rng, batch.len());
    accumulate_gradients(model, micro_batch, &prepared.pos_weight, &mut rngs, 1.0 / accumulation as f64, optimizer)
}

/// What a finished run keeps: its best epoch, and the calibration, the
/// thresholds and the validation figures of that epoch's weights.
struct Kept<'a> {
    best: &'a EpochRecord,
    validation: Metrics,
    thresholds: Vec<f32>,
    calibration: Vec<Option<Platt>>,
}

/// The labels of a model card: names and descriptions, with each label's
/// threshold and calibration.
pub fn model_labels(labels: &[LabelInfo], thresholds: &[f32], calibration: &[Option<Platt>]) -> Vec<ModelLabel> {
    labels
        .iter()
        .zip(thresholds)
        .zip(calibration)
        .map(|((label, &threshold), &calibration)| ModelLabel {
            name: label.name.clone(),
            description: label.description.clone(),
            threshold,
            calibration,
        })
        .collect()
}

/// Raw scores of every passage `views` reads: each sequence scored, the
/// highest per label kept ([`Views::combine`]), as a classifier reads.
pub fn predict_views(
    model: &BertClassifier,
    encoder: &TextEncoder,
    views: &Views,
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, Error> {
    Ok(views.combine(&predict(model, encoder, &views.ids, batch_size, device)?))
}

/// Sigmoid probabilities of every sequence, in input order.
pub fn predict(
    model: &BertClassifier,
    encoder: &TextEncoder,
    ids: &[Vec<u32>],
    batch_size: usize,
    device: &Device,
) -> Result<Vec<Vec<f32>>, Error> {
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let mut out = vec![Vec::new(); ids.len()];
    for batch in sorted_batches(&lengths, batch_size) {
        let sequences: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
        let encoded = encoder.batch(&sequences, device)?;
        let logits = model.forward(&encoded.ids, &encoded.attention_mask, None)?;
        let probabilities: Vec<Vec<f32>> = candle_nn::ops::sigmoid(&logits)?.to_dtype(DType::F32)?.to_vec2()?;
        for (index, row) in batch.into_iter().zip(probabilities) {
            out[index] = row;
        }
    }
    Ok(out)
}

fn score(
    names: &[String],
    truth: &[Vec<bool>],
    probabilities: &[Vec<f32>],
    thresholds: &[f32],
) -> Result<Metrics, Error> {
    evaluate(names, truth, &decide(probabilities, thresholds)).map_err(|err| Error::Data(err.to_string()))
}

/// A copy of the current weights by name. A copy, not a view: `Var::set`
/// writes in place, so a view of the best epoch's weights would follow later
/// updates.
pub fn weights(trainable: &TrainableModel) -> Result<HashMap<String, Tensor>, Error> {
    let data = trainable.vars.data().lock().map_err(|_| Error::Data("parameter lock poisoned".to_string()))?;
    data.iter().map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?))).collect()
}

fn set_weights(trainable: &TrainableModel, weights: &HashMap<String, Tensor>) -> Result<(), Error> {
    let data = trainable.vars.data().lock().map_err(|_| Error::Data("parameter lock poisoned".to_string()))?;
    for (name, var) in data.iter() {
        let tensor = weights.get(name).ok_or_else(|| Error::Data(format!("checkpoint lacks `{name}`")))?;
        var.set(tensor)?;
    }
    Ok(())
}

fn save_checkpoint(
    out: &Path,
    state: &RunState,
    trainable: &TrainableModel,
    optimizer: &AdamW,
    best: Option<&HashMap<String, Tensor>>,
) -> Result<(), Error> {
    let weights = weights(trainable)?;
    let optimizer = optimizer.state();
    checkpoint::save(out, state, &CheckpointTensors { weights: &weights, optimizer: &optimizer, best })
}

fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
