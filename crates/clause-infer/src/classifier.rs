//! A trained model directory, loaded once, classifying texts in batches.
//!
//! The directory is the Hugging Face layout `clause train` writes
//! (`config.json` with `id2label`, `model.safetensors`, `tokenizer.json`)
//! plus `clause.json`, whose labels, tuned thresholds, pooling and maximum
//! length are read here. A directory without `clause.json` (a classifier
//! fine-tuned elsewhere) still loads: BERT pooler, threshold 0.5, and the
//! model's maximum length, as `BertForSequenceClassification` would run it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::card::{self, ModelCard};
use crate::input::{Context, Passage, Unit};
use crate::lexical::LexicalStage;
use crate::model::{BertClassifier, BertConfig, Pooling};
use crate::ops;
use crate::reading::{Reading, Views, prefix};
use crate::tokenize::TextEncoder;
use crate::{Error, LabelSet};
use clause_eval::calibration::apply_per_label;

pub use crate::card::{CARD_FILE, ModelLabel};

/// The mean of several models' probabilities, text by text and label by
/// label (`members[k][text][label]`), summed in member order. Training
/// tunes an ensemble's thresholds on this mean and inference decides on it,
/// so both use this one function. One member is returned as it is.
pub fn mean_probabilities(members: Vec<Vec<Vec<f32>>>) -> Vec<Vec<f32>> {
    let n = members.len();
    let mut members = members.into_iter();
    let Some(mut sum) = members.next() else {
        return Vec::new();
    };
    if n == 1 {
        return sum;
    }
    for member in members {
        for (row, other) in sum.iter_mut().zip(member) {
            for (p, q) in row.iter_mut().zip(other) {
                *p += q;
            }
        }
    }
    for p in sum.iter_mut().flatten() {
        *p /= n as f32;
    }
    sum
}

/// How [`Classifier::predict`] batches its texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPlan {
    /// Texts per batch. On a CPU with several threads, each thread runs a
    /// forward pass over its share of the batch.
    pub batch_size: usize,
    /// Batch texts of similar token length together (and restore the input
    /// order afterwards), so that padding wastes little compute. Off, texts
    /// are batched in input order: only for measuring what bucketing gains.
    pub by_length: bool,
}

impl Default for BatchPlan {
    fn default() -> Self {
        Self { batch_size: 32, by_length: true }
    }
}

/// A loaded model: encoder, head, tokenizer, labels and thresholds.
pub struct Classifier {
    /// One model, or an ensemble's members, whose probabilities are averaged.
    models: Vec<BertClassifier>,
    encoder: TextEncoder,
    labels: Vec<ModelLabel>,
    pooling: Pooling,
    context: Context,
    reading: Reading,
    unit: Unit,
    /// The lexical stage whose margins calibration weighs, where the model
    /// directory has one.
    lexical: Option<LexicalStage>,
    device: Device,
    dir: PathBuf,
    /// Threads a CPU prediction shares each batch among, when set
    /// ([`Classifier::set_threads`]); else the process's count.
    threads: Option<usize>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier").field("dir", &self.dir).field("labels", &self.labels.len()).finish()
    }
}

impl Classifier {
    /// Load the model directory `dir` onto `device`. Every missing file,
    /// unreadable field or tensor that disagrees with `config.json` is an
    /// error naming the file and what was expected.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, Error> {
        if !dir.is_dir() {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "model directory not found"),
            });
        }
        let config_path = dir.join("config.json");
        for file in ["config.json", "tokenizer.json", "model.safetensors"] {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(Error::Io {
                    path,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "missing: a model directory holds config.json, tokenizer.json and model.safetensors",
                    ),
                });
            }
        }
        let config = BertConfig::from_file(&config_path)?;
        let label_set = LabelSet::from_config(&config_path)?;
        let card_path = dir.join(CARD_FILE);
        let card = if card_path.is_file() {
            card::read::<ModelCard>(&card_path)?
        } else {
            ModelCard::uncarded(label_set.names(), &config)
        };
        card.check(&card_path, &config, label_set.names())?;
        let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), card.max_length)?;
        if encoder.vocab_size() > config.vocab_size {
            return Err(Error::Tokenizer {
                path: dir.join("tokenizer.json"),
                message: format!(
                    "{} tokens but config.json says vocab_size {}: the tokenizer belongs to another model",
                    encoder.vocab_size(),
                    config.vocab_size
                ),
            });
        }
        let lexical = LexicalStage::load(dir, card.labels.len())?;
        let weight_files = card.weight_files(dir)?;
        let mut models = Vec::with_capacity(weight_files.len());
        for weights in weight_files {
            let vb = mmap_weights(&weights, device)?;
            let model =
                BertClassifier::new(&config, card.labels.len(), card.pooling, vb).map_err(|err| Error::Weights {
                    path: weights.clone(),
                    message: format!(
                        "{}: the weights do not fit config.json (hidden_size {}, {} layers, vocab_size {}, {} labels)",
                        without_backtrace(&err),
                        config.hidden_size,
                        config.num_hidden_layers,
                        config.vocab_size,
                        card.labels.len()
                    ),
                })?;
            models.push(model);
        }
        Ok(Self {
            models,
            encoder,
            labels: card.labels,
            pooling: card.pooling,
            context: card.context,
            reading: card.reading,
            unit: card.unit,
            lexical,
            device: device.clone(),
            dir: dir.into(),
            threads: None,
        })
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Labels in output order, with descriptions and thresholds.
    pub fn labels(&self) -> &[ModelLabel] {
        &self.labels
    }

    /// Each label's decision threshold, in label order.
    pub fn thresholds(&self) -> Vec<f32> {
        self.labels.iter().map(|l| l.threshold).collect()
    }

    /// How token states become one vector.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Share each batch among `threads` threads on a CPU (at least one),
    /// instead of the process's count (`RAYON_NUM_THREADS`, else the
    /// cores): for several classifiers in one process, each with its own
    /// (the Python module). One thread runs every batch on the calling
    /// thread.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = Some(threads.max(1));
    }

    /// Threads a prediction shares each batch among: 1 off the CPU.
    pub fn threads(&self) -> usize {
        if !self.device.is_cpu() {
            return 1;
        }
        self.threads.unwrap_or_else(candle_core::utils::get_num_threads)
    }

    /// Models whose probabilities are averaged: 1, or an ensemble's members.
    pub fn members(&self) -> usize {
        self.models.len()
    }

    /// What the model reads besides each text.
    pub fn context(&self) -> Context {
        self.context
    }

    /// How the model reads a provision: whole, or also sentence by sentence.
    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// What one of its training examples was: a provision, or a sentence
    /// (so a draft's provisions are cut into sentences for it).
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The sequences that read `passages` as the model was trained to read
    /// them: with its headings, in windows, and sentence by sentence where
    /// its card says so. What [`Classifier::score_views`] takes.
    pub fn views(&self, passages: &[Passage<'_>]) -> Result<Views, Error> {
        let mut views = Views::of(&self.encoder, self.context, self.reading, passages)?;
        if let Some(stage) = &self.lexical {
            views.margins = stage.margins(passages);
        }
        Ok(views)
    }

    /// Every label's probability for every passage, read through `views`
    /// ([`Classifier::views`]): each sequence scored, the highest score per
    /// label kept, then calibrated. `progress` is told how many sequences
    /// each finished batch held.
    pub fn score_views(
        &self,
        views: &Views,
        plan: BatchPlan,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, Error> {
        let mut scores = self.raw_scores(views, plan, progress)?;
        self.calibrate(&mut scores, views);
        Ok(scores)
    }

    /// [`Classifier::score_views`] before calibration: what calibration is
    /// fitted on.
    pub fn raw_scores(
        &self,
        views: &Views,
        plan: BatchPlan,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, Error> {
        Ok(views.combine(&self.predict_ids(&views.ids, plan, progress)?))
    }

    /// Map raw scores of `views`' passages to probabilities with each
    /// label's calibration, where its card has one, weighing the lexical
    /// stage's margins where the model has the stage.
    pub fn calibrate(&self, scores: &mut [Vec<f32>], views: &Views) {
        let maps: Vec<_> = self.labels.iter().map(|l| l.calibration).collect();
        apply_per_label(scores, &maps, &views.margins);
    }

    /// Every label's probability for every passage ([`Classifier::views`],
    /// then [`Classifier::score_views`]).
    pub fn predict_passages(
        &self,
        passages: &[Passage<'_>],
        plan: BatchPlan,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, Error> {
        self.score_views(&self.views(passages)?, plan, progress)
    }

    /// Tokens per text at most; longer texts are truncated.
    pub fn max_length(&self) -> usize {
        self.encoder.max_length()
    }

    /// Token ids of each text, truncated to one window, tokenised in
    /// parallel: for measuring the encoder alone (the benchmark). Texts are
    /// cut to [`MAX_BYTES_PER_TOKEN`] bytes per token of the maximum length
    /// first: the tokenizer would otherwise align every byte of a
    /// megabyte-long provision (gigabytes of memory) only to keep its first
    /// few hundred tokens.
    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, Error> {
        let limit = self.max_length().saturating_mul(MAX_BYTES_PER_TOKEN);
        let cut: Vec<&str> = texts.iter().map(|text| prefix(text, limit)).collect();
        self.encoder.token_ids(&cut)
    }

    /// Every label's probability for every bare text (no headings), in
    /// input order: [`Classifier::predict_passages`].
    pub fn predict(
        &self,
        texts: &[&str],
        plan: BatchPlan,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, Error> {
        let passages: Vec<Passage<'_>> = texts.iter().map(|t| Passage::text(t)).collect();
        self.predict_passages(&passages, plan, progress)
    }

    /// The raw scores of sequences already tokenised, one row per sequence,
    /// uncalibrated; what the views of passages are scored with.
    ///
    /// On a CPU with several threads, each batch is shared out as one part a
    /// thread, and the threads run their parts side by side, each on one
    /// core ([`ops::serially`]): that keeps every core on large matrix
    /// products, where one forward pass split across the cores waited for
    /// all of them at every small step. The parts of a batch are its texts in
    /// order, so the probabilities are those of a pass per part. A request
    /// of a single text (what `serve` mostly answers) has only one part to
    /// give: its one pass is split across the cores instead, kernels and
    /// matrix products, so that its latency is not one core's.
    pub fn predict_ids(
        &self,
        ids: &[Vec<u32>],
        plan: BatchPlan,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, Error> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        if plan.by_length {
            order.sort_by_key(|&i| (ids[i].len(), i));
        }
        let threads = self.threads();
        let batch_size = plan.batch_size.max(1);
        let mut out = vec![Vec::new(); ids.len()];
        if threads <= 1 {
            // On the calling thread only, kernels and products included.
            return ops::serially(|| {
                for batch in order.chunks(batch_size) {
                    for (index, row) in self.predict_batch(ids, batch)? {
                        out[index] = row;
                    }
                    progress(batch.len());
                }
                Ok(out)
            });
        }
        let parts: Vec<&[usize]> = order.chunks(batch_size.div_ceil(threads)).collect();
        if let [part] = parts.as_slice() {
            let rows = self.predict_batch(ids, part)?;
            progress(rows.len());
            for (index, row) in rows {
                out[index] = row;
            }
            return Ok(out);
        }
        let next = AtomicUsize::new(0);
        let (sender, finished) = mpsc::channel::<Result<Vec<(usize, Vec<f32>)>, Error>>();
        std::thread::scope(|scope| {
            for _ in 0..threads.min(parts.len()) {
                let sender = sender.clone();
                let (parts, next) = (&parts, &next);
                scope.spawn(move || {
                    ops::serially(|| {
                        while let Some(part) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
                            let result = self.predict_batch(ids, part);
                            let failed = result.is_err();
                            if sender.send(result).is_err() || failed {
                                break;
                            }
                        }
                    })
                });
            }
            drop(sender);
            for result in finished {
                match result {
                    Ok(rows) => {
                        progress(rows.len());
                        for (index, row) in rows {
                            out[index] = row;
                        }
                    }
                    Err(err) => {
                        // The other threads stop at their next part.
                        next.store(parts.len(), Ordering::Relaxed);
                        return Err(err);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Probabilities of the texts `batch` indexes in `ids`, as one forward
    /// pass: (index, probabilities) pairs.
    fn predict_batch(&self, ids: &[Vec<u32>], batch: &[usize]) -> Result<Vec<(usize, Vec<f32>)>, Error> {
        let sequences: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
        let encoded = self.encoder.batch(&sequences, &self.device)?;
        let mut members = Vec::with_capacity(self.models.len());
        for model in &self.models {
            let logits = model.forward(&encoded.ids, &encoded.attention_mask, None)?;
            members.push(candle_nn::ops::sigmoid(&logits)?.to_dtype(DType::F32)?.to_vec2()?);
        }
        Ok(batch.iter().copied().zip(mean_probabilities(members)).collect())
    }

    /// Indices of the labels whose probability reaches its threshold.
    pub fn decide(&self, probabilities: &[f32]) -> Vec<usize> {
        clause_eval::decision::flagged(probabilities, &self.thresholds())
    }
}

/// Bytes of text kept per token of the maximum length before tokenising. A
/// word piece spans at most 100 characters (400 bytes), so in text with
/// ordinary words and gaps this cut never reaches a token the model sees.
pub const MAX_BYTES_PER_TOKEN: usize = 512;

/// The weights, memory-mapped rather than read into a buffer first: the
/// tensors are copied out of the map once, into the model's own storage.
#[allow(unsafe_code)]
fn mmap_weights(path: &Path, device: &Device) -> Result<VarBuilder<'static>, Error> {
    // SAFETY: the map is only read while the model is built (candle copies
    // each tensor into owned storage); the file must not be truncated during
    // those milliseconds, the usual condition for mapping a file.
    unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }.map_err(|err| Error::Weights {
        path: path.to_path_buf(),
        message: format!("not a valid safetensors file (truncated or corrupted?): {}", without_backtrace(&err)),
    })
}

/// A candle error's message without the backtrace candle appends to it when
/// `RUST_BACKTRACE` is set: the message is for the user, the backtrace
/// points into candle.
fn without_backtrace(err: &candle_core::Error) -> String {
    let message = err.to_string();
    message.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::Tensor;

    use super::*;
    use crate::model::TrainableModel;

    /// A model directory without `clause.json`: a 16-wide BERT over a
    /// four-token vocabulary with two labels.
    fn model_dir(dir: &Path) -> BertConfig {
        let config = serde_json::json!({
            "vocab_size": 4, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 4,
            "intermediate_size": 32, "max_position_embeddings": 16, "hidden_act": "gelu", "model_type": "bert",
            "id2label": {"0": "a", "1": "b"}
        });
        std::fs::write(dir.join("config.json"), config.to_string()).expect("write");
        let tokenizer = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": {"[PAD]": 0, "[UNK]": 1, "the": 2, "data": 3}}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).expect("write");
        let config: BertConfig = serde_json::from_value(config).expect("config");
        let model = TrainableModel::random(&config, 2, Pooling::Cls, 5, &Device::Cpu).expect("model");
        let data = model.vars.data().lock().expect("lock");
        let tensors: HashMap<String, Tensor> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("save");
        config
    }

    #[test]
    fn huge_texts_are_cut_before_tokenising_without_changing_their_tokens() {
        assert_eq!(prefix("abc", 5), "abc");
        assert_eq!(prefix("aé", 2), "a");
        assert_eq!(prefix("aéb", 3), "aé");
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        let classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        let huge = "the data ".repeat(1 << 20);
        let short = "the data ".repeat(20);
        let ids = classifier.token_ids(&[&huge, &short]).expect("tokenise");
        assert_eq!(ids[0].len(), classifier.max_length());
        assert_eq!(ids[0], ids[1]);
    }

    #[test]
    fn broken_weights_and_configs_that_do_not_fit_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        let classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        assert_eq!(classifier.predict(&["the data"], BatchPlan::default(), &mut |_| {}).expect("predict")[0].len(), 2);

        let weights = dir.path().join("model.safetensors");
        let bytes = std::fs::read(&weights).expect("read");
        std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("write");
        let err = Classifier::load(dir.path(), &Device::Cpu).expect_err("truncated").to_string();
        assert!(err.contains("model.safetensors: not a valid safetensors file"), "{err}");
        std::fs::write(&weights, &bytes).expect("write");

        let config_path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read")).expect("json");
        config["hidden_size"] = serde_json::json!(32);
        std::fs::write(&config_path, config.to_string()).expect("write");
        let err = Classifier::load(dir.path(), &Device::Cpu).expect_err("wider config").to_string();
        assert!(
            err.contains("model.safetensors: shape mismatch for ")
                && err.contains("do not fit config.json (hidden_size 32")
                && !err.contains("candle_core"),
            "{err}"
        );
    }

    #[test]
    fn a_model_trained_with_headings_reads_them_everywhere_and_explains_only_the_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        // A random head barely moves its outputs; a large one makes every
        // removed span move them measurably.
        let weights = dir.path().join("model.safetensors");
        let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).expect("load weights");
        let head = (tensors["classifier.weight"].clone() * 300.0).expect("scale");
        tensors.insert("classifier.weight".into(), head);
        candle_core::safetensors::save(&tensors, &weights).expect("save");
        let plain = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        assert_eq!(plain.context(), Context::Text);
        let card = serde_json::json!({
            "labels": [{"name": "a", "description": "", "threshold": 0.0}, {"name": "b", "description": "", "threshold": 0.0}],
            "max_length": 16, "pooling": "cls", "context": "headings"
        });
        std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        let classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        assert_eq!(classifier.context(), Context::Headings);

        let passage = Passage {
            text: "data the data, the the data, data data the, the data data",
            title: Some("the"),
            chapter: None,
        };
        let input = classifier.context().compose(&passage);
        assert_eq!(input, "the. data the data, the the data, data data the, the data data");
        let score = |text: &str| classifier.predict(&[text], BatchPlan::default(), &mut |_| {}).expect("predict");
        let score_passage = |text: &str| {
            let passage = Passage { text, ..passage };
            classifier.predict_passages(&[passage], BatchPlan::default(), &mut |_| {}).expect("predict")
        };
        // Short enough for one window: the headings read as text before it.
        assert_eq!(score_passage("data the data"), score("the. data the data"));
        let whole = score_passage(passage.text);
        let explained = classifier.explain(&[passage], &whole, &[vec![0, 1]], 8).expect("explain");
        let mut spans = 0;
        for explanation in &explained[0] {
            for span in &explanation.spans {
                // The drop is measured with the heading still in front.
                let rest = crate::explain::without(passage.text, &(span.start..span.end));
                let occluded = score_passage(&rest);
                let drop = whole[0][explanation.label] - occluded[0][explanation.label];
                assert!((span.drop - drop).abs() < 1e-6, "{} against {drop}", span.drop);
                assert_eq!(span.text, passage.text[span.start..span.end]);
                spans += 1;
            }
        }
        assert!(spans > 0, "a random model lowers some label when a span goes");
    }

    #[test]
    fn long_texts_are_read_in_windows_sentences_one_by_one_and_scores_calibrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        let card = serde_json::json!({
            "labels": [
                {"name": "a", "description": "", "threshold": 0.5, "calibration": {"slope": 0.5, "intercept": -1.0}},
                {"name": "b", "description": "", "threshold": 0.5}
            ],
            "max_length": 8, "pooling": "cls", "reading": "sentences"
        });
        std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        let classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        assert_eq!(classifier.reading(), Reading::Sentences);
        let long = "the data ".repeat(20);
        let two = "the data the data the data. data the data the data the.";
        let passages = [Passage::text(&long), Passage::text(two)];
        let views = classifier.views(&passages).expect("views");
        // 40 tokens in windows of 8 overlapping by 2: 7 windows, and no
        // sentence boundary; the second text whole (14 tokens, full stops
        // included: 2 windows) and its two sentences.
        let counts: Vec<usize> = (0..2).map(|p| views.owners.iter().filter(|&&o| o == p).count()).collect();
        assert_eq!(counts, [7, 4]);
        assert!(views.cut.is_empty() && views.ids.iter().all(|ids| ids.len() <= 8));
        let raw = classifier.predict_ids(&views.ids, BatchPlan::default(), &mut |_| {}).expect("raw");
        let scores = classifier.predict_passages(&passages, BatchPlan::default(), &mut |_| {}).expect("scores");
        for (p, row) in scores.iter().enumerate() {
            let best = |label: usize| {
                raw.iter().zip(&views.owners).filter(|(_, o)| **o == p).map(|(r, _)| r[label]).fold(0.0f32, f32::max)
            };
            let map = clause_eval::calibration::Platt { slope: 0.5, intercept: -1.0, margin: 0.0 };
            assert_eq!(row[0], map.apply(best(0), 0.0));
            assert_eq!(row[1], best(1));
        }
    }

    #[test]
    fn a_lexical_stage_is_weighed_wherever_scores_are_calibrated() {
        use crate::lexical::Vocabulary;
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        let card = serde_json::json!({
            "labels": [
                {"name": "a", "description": "", "threshold": 0.5,
                 "calibration": {"slope": 0.5, "intercept": -1.0, "margin": 2.0}},
                {"name": "b", "description": "", "threshold": 0.5}
            ],
            "max_length": 8, "pooling": "cls"
        });
        std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        let vocabulary = Vocabulary::fit(&["the data", "the"]);
        let mut weights = vec![vec![0.0; vocabulary.len()]; 2];
        weights[0][vocabulary.term("data").expect("term")] = 3.0;
        let stage = LexicalStage {
            headings: false,
            reading: crate::reading::Reading::Whole,
            c: 1.0,
            vocabulary,
            weights,
            biases: vec![-1.0, 0.0],
        };
        stage.save(dir.path()).expect("save");
        let classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        let passages = [Passage::text("the data"), Passage::text("the the")];
        let views = classifier.views(&passages).expect("views");
        assert_eq!(views.margins, stage.margins(&passages));
        assert!(views.margins[0][0] > 0.0 && views.margins[1][0] == -1.0, "{:?}", views.margins);
        let raw = classifier.raw_scores(&views, BatchPlan::default(), &mut |_| {}).expect("raw");
        let scores = classifier.predict_passages(&passages, BatchPlan::default(), &mut |_| {}).expect("scores");
        let map = clause_eval::calibration::Platt { slope: 0.5, intercept: -1.0, margin: 2.0 };
        for p in 0..2 {
            assert_eq!(scores[p][0], map.apply(raw[p][0], views.margins[p][0]));
            assert_eq!(scores[p][1], raw[p][1], "label b has no calibration");
        }
        assert!(scores[0][0] > map.apply(raw[0][0], 0.0));
        // A stage fitted for another label set is named.
        std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        let three = LexicalStage { biases: vec![0.0; 3], weights: vec![vec![0.0; stage.vocabulary.len()]; 3], ..stage };
        three.save(dir.path()).expect("save");
        let err = Classifier::load(dir.path(), &Device::Cpu).expect_err("labels").to_string();
        assert!(err.contains(crate::lexical::LEXICAL_FILE), "{err}");
    }

    #[test]
    fn a_lone_text_split_across_threads_scores_as_on_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        model_dir(dir.path());
        let mut classifier = Classifier::load(dir.path(), &Device::Cpu).expect("load");
        let texts = ["the data the", "data", "the the data data the"];
        let mut scored = Vec::new();
        for threads in [1, 2] {
            classifier.set_threads(threads);
            let mut seen = 0;
            let alone: Vec<Vec<f32>> = texts
                .iter()
                .map(|text| classifier.predict(&[text], BatchPlan::default(), &mut |n| seen += n).expect("alone"))
                .map(|mut rows| rows.remove(0))
                .collect();
            assert_eq!(seen, texts.len(), "progress counts every text");
            let plan = BatchPlan { batch_size: 2, by_length: true };
            let together = classifier.predict(&texts, plan, &mut |_| {}).expect("together");
            scored.push((alone, together));
        }
        for (alone, together) in &scored {
            for (a, b) in alone
                .iter()
                .flatten()
                .zip(together.iter().flatten())
                .chain(alone.iter().flatten().zip(scored[0].0.iter().flatten()))
            {
                assert!((a - b).abs() < 1e-6, "{a} against {b}");
            }
        }
    }

    #[test]
    fn an_ensemble_averages_its_members_and_names_a_bad_member() {
        assert_eq!(mean_probabilities(vec![vec![vec![0.2, 1.0]], vec![vec![0.4, 0.0]]]), [[0.3f32, 0.5]]);
        assert_eq!(mean_probabilities(vec![vec![vec![0.2, 1.0]]]), [[0.2f32, 1.0]]);
        assert!(mean_probabilities(Vec::new()).is_empty());
        let dir = tempfile::tempdir().expect("tempdir");
        for member in ["m1", "m2"] {
            std::fs::create_dir_all(dir.path().join(member)).expect("mkdir");
        }
        model_dir(&dir.path().join("m1"));
        // A second member: the same shapes, other weights.
        let weights = dir.path().join("m1/model.safetensors");
        let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).expect("load weights");
        let head = (tensors["classifier.weight"].clone() * -3.0).expect("scale");
        tensors.insert("classifier.weight".into(), head);
        candle_core::safetensors::save(&tensors, dir.path().join("m2/model.safetensors")).expect("save");
        for file in ["config.json", "tokenizer.json"] {
            std::fs::copy(dir.path().join("m1").join(file), dir.path().join(file)).expect("copy");
            std::fs::copy(dir.path().join("m1").join(file), dir.path().join("m2").join(file)).expect("copy");
        }
        std::fs::copy(&weights, dir.path().join("model.safetensors")).expect("copy");
        let card = |members: &[&str]| {
            let ensemble: Vec<_> = members.iter().map(|m| serde_json::json!({"dir": m, "seed": 1})).collect();
            let card = serde_json::json!({
                "labels": [{"name": "a", "description": "", "threshold": 0.5}, {"name": "b", "description": "", "threshold": 0.5}],
                "max_length": 16, "pooling": "cls", "ensemble": ensemble
            });
            std::fs::write(dir.path().join(CARD_FILE), card.to_string()).expect("write");
        };
        let texts = ["the data", "data the the data"];
        let predict = |path: &Path| {
            let classifier = Classifier::load(path, &Device::Cpu).expect("load");
            classifier.predict(&texts, BatchPlan::default(), &mut |_| {}).expect("predict")
        };
        // The members load alone without a card: BERT pooler, 16 tokens, as
        // the ensemble's card says.
        card(&["m1", "m2"]);
        assert_eq!(Classifier::load(dir.path(), &Device::Cpu).expect("load").members(), 2);
        let (one, two) = (predict(&dir.path().join("m1")), predict(&dir.path().join("m2")));
        assert_ne!(one, two);
        assert_eq!(predict(dir.path()), mean_probabilities(vec![one, two]));

        card(&["m1", "../m2"]);
        let err = Classifier::load(dir.path(), &Device::Cpu).expect_err("outside").to_string();
        assert!(err.contains("field `ensemble`: member directory `../m2`"), "{err}");
        card(&["m1", "m3"]);
        let err = Classifier::load(dir.path(), &Device::Cpu).expect_err("missing").to_string();
        assert!(err.contains("m3/model.safetensors") && err.contains("ensemble member"), "{err}");
    }
}
