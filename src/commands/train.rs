//! `clause train`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::commands::common::device;
use crate::commands::common::ensure_built;
use anyhow::{Context, bail};
use clause_data::build::{MANIFEST_FILE, Manifest, read_rationale_spans, read_split, read_written_sentences};
use clause_data::example::Example;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_infer::model::Pooling;
use clause_train::TrainConfig;
use clause_train::checkpoint::EpochRecord;
use clause_train::config::RECIPE_SETTINGS_FILE;
use clause_train::ensemble::train_ensemble;
use clause_train::export::TrainedCard;
use clause_train::refit::refit;
use clause_train::trainer::{LabelInfo, Observer, TrainData, TrainOptions, TrainOutcome};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{PoolingArg, TrainArgs};

pub fn run(args: &TrainArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(folds) = args.cross_validate {
        return crate::commands::cross_validate::run(args, folds, out);
    }
    let recipe = LoadedRecipe::load(&args.dataset)?;
    let config = training_config(args, &recipe.dir)?;
    check_out_dir(&args.out)?;
    let base = clause_infer::hub::resolve(&args.base)?;
    let manifest = ensure_built(&recipe, args.data_root.data_root.clone())?;
    let test = if args.no_test { Vec::new() } else { read_split(&recipe, Split::Test)? };
    let data = recipe_train_data(
        &recipe,
        &manifest,
        read_split(&recipe, Split::Train)?,
        read_split(&recipe, Split::Validation)?,
        test,
    )?;
    if args.refit_calibration {
        let card = refit(&args.out, &data, &config, &device(&args.device)?)?;
        writeln!(out, "calibration refitted in {}", args.out.display())?;
        return write_summary(out, &card);
    }
    let interrupt = interrupt_flag()?;
    let options = TrainOptions {
        base: base.dir,
        base_source: base.source,
        out: args.out.clone(),
        config,
        device: device(&args.device)?,
        resume: args.resume,
        interrupt: Some(interrupt),
    };
    eprintln!(
        "training on {} train / {} validation examples of {} ({} labels)",
        data.train.len(),
        data.validation.len(),
        data.dataset,
        data.labels.len()
    );
    let mut progress = Progress::new();
    match train_ensemble(&data, &options, &mut progress)? {
        TrainOutcome::Interrupted { epoch, batch } => {
            writeln!(
                out,
                "stopped in epoch {epoch} after {batch} batches; continue with the same command and --resume"
            )?;
            std::process::exit(130);
        }
        TrainOutcome::Finished(card) => {
            writeln!(out, "model written to {}", args.out.display())?;
            write_summary(out, &card)?;
        }
    }
    Ok(())
}

/// What training reads of a built recipe: its name, the hash of its
/// manifest, its labels and rationale spans, and the given splits.
pub(crate) fn recipe_train_data(
    recipe: &LoadedRecipe,
    manifest: &Manifest,
    train: Vec<Example>,
    validation: Vec<Example>,
    test: Vec<Example>,
) -> anyhow::Result<TrainData> {
    let manifest_path = recipe.build_dir().join(MANIFEST_FILE);
    let manifest_sha256 = clause_data::hash::sha256_hex(
        &std::fs::read(&manifest_path).with_context(|| manifest_path.display().to_string())?,
    );
    Ok(TrainData {
        dataset: manifest.dataset.clone(),
        manifest_sha256,
        labels: recipe
            .recipe
            .labels
            .iter()
            .map(|l| LabelInfo { name: l.name.clone(), description: l.description.clone() })
            .collect(),
        train,
        validation,
        test,
        rationales: read_rationale_spans(recipe)?,
        written: read_written_sentences(recipe)?,
        unit: recipe.recipe.unit(),
    })
}

/// A flag that Ctrl-C sets, so that training stops at the next batch with a
/// checkpoint; a second Ctrl-C quits at once.
pub(crate) fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C does not wait for the checkpoint.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: writing a checkpoint (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(interrupt)
}

/// What a finished run prints: its members, time, and per-label and overall
/// validation and test figures.
fn write_summary(out: &mut dyn Write, card: &TrainedCard) -> anyhow::Result<()> {
    // Training records every member's validation metrics.
    for (k, member) in card.model.ensemble.iter().enumerate() {
        let (micro, macro_) = member.validation.as_ref().map_or((f64::NAN, f64::NAN), |v| (v.micro_f1, v.macro_f1));
        writeln!(
            out,
            "member {} (seed {}): best epoch {} of {}, validation micro-F1 {micro:.3} macro-F1 {macro_:.3}",
            k + 1,
            member.seed,
            member.best_epoch,
            member.epochs,
        )?;
    }
    if card.model.ensemble.is_empty() {
        write!(out, "best epoch {} of {}; ", card.best_epoch, card.history.len())?;
    } else {
        write!(out, "an ensemble of {}, averaged; ", card.model.ensemble.len())?;
    }
    writeln!(
        out,
        "{:.0} s of training, {:.1} sequences/s on {}",
        card.training_seconds, card.sequences_per_second, card.device
    )?;
    writeln!(out, "\n{:<16} {:>9} {:>9} {:>9}", "label", "threshold", "val F1", "test F1")?;
    for (index, label) in card.model.labels.iter().enumerate() {
        let test = card.test.as_ref().map_or("-".to_string(), |t| format!("{:.3}", t.labels[index].f1));
        writeln!(
            out,
            "{:<16} {:>9.3} {:>9.3} {:>9}",
            label.name, label.threshold, card.validation.labels[index].f1, test
        )?;
    }
    for (name, val, test) in [
        ("micro-F1", card.validation.micro_f1, card.test.as_ref().map(|t| t.micro_f1)),
        ("macro-F1", card.validation.macro_f1, card.test.as_ref().map(|t| t.macro_f1)),
        ("LexGLUE macro", card.validation.lexglue_macro_f1, card.test.as_ref().map(|t| t.lexglue_macro_f1)),
    ] {
        let test = test.map_or("-".to_string(), |t| format!("{t:.3}"));
        writeln!(out, "{name:<16} {:>9} {val:>9.3} {test:>9}", "")?;
    }
    Ok(())
}

/// Refuse, before any work, an output directory that cannot be created:
/// one that is a file, or whose nearest existing ancestor is one.
pub(crate) fn check_out_dir(dir: &Path) -> anyhow::Result<()> {
    let existing = dir.ancestors().filter(|a| !a.as_os_str().is_empty()).find(|a| a.exists());
    if let Some(ancestor) = existing
        && !ancestor.is_dir()
    {
        bail!("--out {}: {} is not a directory", dir.display(), ancestor.display());
    }
    Ok(())
}

/// The defaults, then the recipe's own settings (`train.toml` beside its
/// `dataset.toml`, if any), then `--config`, then flags.
pub(crate) fn training_config(args: &TrainArgs, recipe_dir: &Path) -> anyhow::Result<TrainConfig> {
    let recipe_settings = recipe_dir.join(RECIPE_SETTINGS_FILE);
    let mut files = Vec::new();
    if recipe_settings.is_file() {
        tracing::info!(path = %recipe_settings.display(), "the recipe's training settings");
        files.push(recipe_settings.as_path());
    }
    files.extend(args.config.as_deref());
    let mut config = TrainConfig::from_files(&files)?;
    if let Some(v) = args.epochs {
        config.epochs = v;
    }
    if let Some(v) = args.batch_size {
        config.batch_size = v;
    }
    if let Some(v) = args.learning_rate {
        config.learning_rate = v;
    }
    if let Some(v) = args.max_length {
        config.max_length = v;
    }
    if let Some(v) = args.negative_ratio {
        config.negative_ratio = v;
    }
    if let Some(v) = args.seed {
        config.seed = v;
    }
    if let Some(pooling) = args.pooling {
        config.pooling = match pooling {
            PoolingArg::Mean => Pooling::Mean,
            PoolingArg::Cls => Pooling::Cls,
        };
    }
    if let Err(message) = config.check() {
        bail!("training configuration: {message}");
    }
    Ok(config)
}

/// Progress bars on a terminal; a log line every 50 batches otherwise.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    terminal: bool,
    epoch: usize,
    epochs: usize,
    batches: usize,
    done: usize,
    loss: f64,
    sequences: usize,
    started: Instant,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            epoch: 0,
            epochs: 0,
            batches: 0,
            done: 0,
            loss: 0.0,
            sequences: 0,
            started: Instant::now(),
        }
    }
}

impl Observer for Progress {
    fn epoch_started(&mut self, epoch: usize, epochs: usize, batches: usize, done: usize) {
        (self.epoch, self.epochs, self.batches, self.done) = (epoch, epochs, batches, done);
        (self.loss, self.sequences, self.started) = (0.0, 0, Instant::now());
        if self.terminal {
            let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{epochs}"));
            bar.set_position(done as u64);
            self.bar = Some(bar);
        }
    }

    fn batch_finished(&mut self, loss: f64, sequences: usize) {
        self.done += 1;
        self.loss = if self.sequences == 0 { loss } else { 0.98 * self.loss + 0.02 * loss };
        self.sequences += sequences;
        let rate = self.sequences as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done as u64);
                bar.set_message(format!("loss {:.4}  {rate:.1} seq/s", self.loss));
            }
            None if self.done.is_multiple_of(50) || self.done == self.batches => eprintln!(
                "epoch {}/{} batch {}/{} loss {:.4} {rate:.1} seq/s",
                self.epoch, self.epochs, self.done, self.batches, self.loss
            ),
            None => {}
        }
    }

    fn fold_started(&mut self, fold: usize, folds: usize, held_out: &[clause_data::example::Example]) {
        let documents: std::collections::BTreeSet<&str> = held_out.iter().map(|e| e.document.as_str()).collect();
        eprintln!(
            "fold {fold} of {folds}: holding out {} examples of {}",
            held_out.len(),
            documents.into_iter().collect::<Vec<_>>().join(", ")
        );
    }

    fn member_started(&mut self, member: usize, members: usize, done: bool) {
        if done {
            eprintln!("member {member} of {members}: trained before, kept");
        } else {
            eprintln!("member {member} of {members}");
        }
    }

    fn epoch_finished(&mut self, record: &EpochRecord, improved: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "epoch {}: train loss {:.4}, validation macro-F1 {:.3} micro-F1 {:.3}{} ({:.0} s, {:.1} seq/s)",
            record.epoch,
            record.train_loss,
            record.validation.macro_f1,
            record.validation.micro_f1,
            if improved { ", best so far" } else { "" },
            record.seconds,
            record.sequences_per_second
        );
    }
}
