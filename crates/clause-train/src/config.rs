//! Training hyper-parameters, from defaults, a TOML file and flags.

use std::path::Path;

use clause_infer::input::Context;
use clause_infer::model::Pooling;
use clause_infer::reading::Reading;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::optim::AdamWParams;

/// Every hyper-parameter of a training run. The defaults are the settings
/// the project's quality figures were measured with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split at most.
    pub epochs: usize,
    /// Optimizer steps a run aims for: it makes ceil(target_steps / steps
    /// per epoch) passes, at most `epochs`, so that a small dataset gets more
    /// passes than a large one. 0 always makes `epochs` passes.
    pub target_steps: usize,
    /// Examples per optimizer step (per micro-batch when accumulating).
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed before one optimizer step.
    pub grad_accumulation: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW); biases and LayerNorm weights are exempt.
    pub weight_decay: f64,
    /// Share of all optimizer steps spent warming the learning rate up
    /// linearly from 0; it then decays linearly to 0.
    pub warmup_ratio: f64,
    /// Global gradient-norm clip; 0 disables it.
    pub max_grad_norm: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// AdamW epsilon.
    pub adam_eps: f64,
    /// Decay of a running average of the weights after each optimizer step
    /// (bias-corrected, so the starting weights get no extra share). When
    /// above 0, each epoch's validation, the best-epoch choice and the
    /// written model use the averaged weights; 0 uses the weights as trained.
    /// Off by default: on tos-unfair, 0.998 (about two epochs) raised
    /// validation LexGLUE macro-F1 from 0.769 to 0.796, but the test split
    /// did not follow (0.756 against 0.774); on treaty-risk, 0.99 stopped
    /// early at validation micro-F1 0.846 against 0.870.
    pub ema_decay: f64,
    /// Tokens per text at most, special tokens included.
    pub max_length: usize,
    /// How token states become one vector: `cls` (BERT pooler, as Hugging
    /// Face's classifier) or `mean`.
    pub pooling: Pooling,
    /// What the model reads besides each text: `text` (nothing), or
    /// `headings` (the innermost division heading and the article title
    /// before the text, for provisions of drafts; texts without headings
    /// read as with `text`). Recorded in `clause.json`, so that
    /// classifying feeds the model alike.
    pub context: Context,
    /// With `context = "headings"`, the share of training examples that
    /// each epoch reads without their headings (drawn afresh per epoch), so
    /// that a title helps the model but is not needed: a draft's titles can
    /// be missing, wrong or benign over a risky sentence. 0 always reads
    /// them.
    pub headings_dropout: f64,
    /// How validation, test and every later use read a provision: `whole`
    /// (in overlapping windows when long) or `sentences` (also each
    /// sentence on its own, the highest score kept). Recorded in
    /// `clause.json`.
    pub reading: Reading,
    /// Add the examples the rationale spans make (each sentence that holds
    /// a span, alone and buried in a label-less provision; see
    /// [`crate::augment`]) to the training split.
    pub rationale_examples: bool,
    /// Add the recipe's written sentences (`sentences` in its
    /// `dataset.toml`; [`clause_data::written`]), alone and buried in
    /// label-less provisions, to the training split.
    pub written_sentences: bool,
    /// Fit the lexical stage (TF-IDF word 1–3-grams and a linear SVM per
    /// label, [`crate::lexical`]) on the training split and weigh its margin
    /// beside the encoder's score in each label's calibration. On both
    /// recipes' document folds, stacking the two raised out-of-fold
    /// micro-F1 by about four points (`scripts/lexical-stack-check`).
    pub lexical: bool,
    /// Dropout on hidden states and the head; `None` keeps the base config's.
    pub hidden_dropout: Option<f64>,
    /// Cap on each label's positive weight (negatives / positives among the
    /// examples of an epoch).
    pub pos_weight_cap: f32,
    /// Label-less training examples per labelled one that each epoch draws
    /// at most (afresh per epoch, from the seed); 0 keeps them all. Where
    /// most examples carry no label (tos-unfair: 12 to 1), this gives the
    /// rare positives more passes for the same compute; a dataset with fewer
    /// label-less examples (treaty-risk) keeps them all.
    pub negative_ratio: f64,
    /// Epochs without a better validation macro-F1 before stopping.
    pub patience: usize,
    /// Labels with fewer validation positives than this keep threshold 0.5.
    pub threshold_min_positives: usize,
    /// Seed of data order, dropout and the new head's initial weights.
    pub seed: u64,
    /// Models trained, each a whole run with its own early stopping, seeded
    /// `seed`, `seed + 1`, ...; the written model averages their
    /// probabilities, with thresholds tuned on that average. 1 trains one
    /// model. Averaging runs that differ only in their random streams takes
    /// out much of what separates one such run from another, which the
    /// small validation splits cannot choose between.
    pub ensemble: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            // With target_steps, 4 passes over tos-unfair (916 steps each)
            // and 30 over treaty-risk (36 steps each).
            epochs: 30,
            target_steps: 3600,
            batch_size: 16,
            grad_accumulation: 1,
            learning_rate: 1e-4,
            weight_decay: 0.01,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            ema_decay: 0.0,
            max_length: 128,
            // all-MiniLM-L6-v2 was trained as a mean-pooled sentence encoder;
            // its pooler was not, and learns slowly from a cold start.
            pooling: Pooling::Mean,
            context: Context::Text,
            headings_dropout: 0.0,
            reading: Reading::Whole,
            rationale_examples: false,
            written_sentences: false,
            lexical: true,
            hidden_dropout: None,
            pos_weight_cap: 10.0,
            negative_ratio: 3.0,
            patience: 3,
            threshold_min_positives: 3,
            seed: 20261128,
            ensemble: 1,
        }
    }
}

/// The file beside a dataset recipe's `dataset.toml` that holds the settings
/// its author chose for it (say, a longer `max_length` for long provisions):
/// `clause train` reads it before `--config` and flags.
pub const RECIPE_SETTINGS_FILE: &str = "train.toml";

impl TrainConfig {
    /// Read a TOML file of overrides; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        Self::from_files(&[path])
    }

    /// The defaults, overridden key by key by each TOML file in turn (a
    /// later file wins). Each file is checked on its own first, so an
    /// unknown key or a value out of range names its file and line.
    pub fn from_files(paths: &[&Path]) -> Result<Self, Error> {
        let mut merged = toml::Table::new();
        for path in paths {
            let text =
                std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
            let config_error = |err: toml::de::Error| Error::Config {
                path: path.to_path_buf(),
                message: clause_data::text::describe_toml_error(&text, &err),
            };
            let alone: Self = toml::from_str(&text).map_err(config_error)?;
            alone.check().map_err(|message| Error::Config { path: path.to_path_buf(), message })?;
            merged.extend(toml::from_str::<toml::Table>(&text).map_err(config_error)?);
        }
        let config: Self = toml::Value::Table(merged).try_into().map_err(|err: toml::de::Error| Error::Config {
            path: paths.last().map(|p| p.to_path_buf()).unwrap_or_default(),
            message: err.to_string(),
        })?;
        Ok(config)
    }

    /// The optimizer's share of the settings.
    pub fn adamw_params(&self) -> AdamWParams {
        AdamWParams {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.adam_eps,
            weight_decay: self.weight_decay,
            max_grad_norm: self.max_grad_norm,
            ema_decay: self.ema_decay,
        }
    }

    /// Passes over a training split of `steps_per_epoch` optimizer steps.
    pub fn epochs_for(&self, steps_per_epoch: usize) -> usize {
        if self.target_steps == 0 {
            return self.epochs;
        }
        self.epochs.min(self.target_steps.div_ceil(steps_per_epoch.max(1))).max(1)
    }

    /// The ranges every field must be in, as a message naming the field.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("grad_accumulation", self.grad_accumulation),
            ("max_length", self.max_length),
            ("ensemble", self.ensemble),
        ];
        if let Some((field, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{field}` must be at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(format!("`learning_rate` = {} must be positive", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return Err(format!("`warmup_ratio` = {} must be in [0, 1)", self.warmup_ratio));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(format!("`ema_decay` = {} must be in [0, 1)", self.ema_decay));
        }
        if let Some(p) = self.hidden_dropout
            && !(0.0..1.0).contains(&p)
        {
            return Err(format!("`hidden_dropout` = {p} must be in [0, 1)"));
        }
        if !(0.0..1.0).contains(&self.headings_dropout) {
            return Err(format!("`headings_dropout` = {} must be in [0, 1)", self.headings_dropout));
        }
        if !(self.negative_ratio >= 0.0 && self.negative_ratio.is_finite()) {
            return Err(format!("`negative_ratio` = {} must be 0 (keep all) or positive", self.negative_ratio));
        }
        if self.pos_weight_cap < 1.0 {
            return Err(format!("`pos_weight_cap` = {} must be at least 1", self.pos_weight_cap));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("train.toml");
        std::fs::write(&path, "epochs = 3\npooling = \"mean\"\n").expect("write");
        let config = TrainConfig::from_file(&path).expect("read");
        assert_eq!(config.epochs, 3);
        assert_eq!(config.pooling, Pooling::Mean);
        assert_eq!(config.batch_size, TrainConfig::default().batch_size);
        std::fs::write(&path, "epochs = 3\nlearning_rat = 0.1\n").expect("write");
        let err = TrainConfig::from_file(&path).expect_err("unknown key").to_string();
        assert!(err.contains("train.toml") && err.contains("line 2") && err.contains("learning_rat"), "{err}");
        std::fs::write(&path, "batch_size = 0\n").expect("write");
        let err = TrainConfig::from_file(&path).expect_err("zero").to_string();
        assert!(err.contains("`batch_size` must be at least 1"), "{err}");
    }

    #[test]
    fn later_files_override_earlier_ones_key_by_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (recipe, mine) = (dir.path().join("recipe.toml"), dir.path().join("mine.toml"));
        std::fs::write(&recipe, "max_length = 256\nepochs = 20\n").expect("write");
        std::fs::write(&mine, "epochs = 3\n").expect("write");
        let config = TrainConfig::from_files(&[&recipe, &mine]).expect("read");
        assert_eq!((config.max_length, config.epochs), (256, 3));
        assert_eq!(config.batch_size, TrainConfig::default().batch_size);
        assert_eq!(TrainConfig::from_files(&[]).expect("none"), TrainConfig::default());
        // An error in the first file names it, though a later one is fine.
        std::fs::write(&recipe, "max_length = 0\n").expect("write");
        let err = TrainConfig::from_files(&[&recipe, &mine]).expect_err("zero").to_string();
        assert!(err.contains("recipe.toml") && err.contains("`max_length` must be at least 1"), "{err}");
    }

    #[test]
    fn epochs_follow_the_step_target_up_to_the_maximum() {
        let config = TrainConfig { epochs: 30, target_steps: 3600, ..TrainConfig::default() };
        assert_eq!(config.epochs_for(916), 4);
        assert_eq!(config.epochs_for(36), 30);
        assert_eq!(config.epochs_for(3600), 1);
        assert_eq!(config.epochs_for(100_000), 1);
        assert_eq!(TrainConfig { target_steps: 0, ..config }.epochs_for(36), 30);
    }
}
