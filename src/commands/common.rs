//! Helpers that several commands share: the device, loading a model,
//! predicting with a progress bar, and a dataset build that is up to date.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use candle_core::Device;
use clause_data::build::{BuildOptions, Manifest, build as build_dataset, is_stale, read_manifest};
use clause_data::recipe::LoadedRecipe;
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::input::Passage;

/// Texts from which a progress bar is worth drawing.
const PROGRESS_FROM: usize = 256;

/// `cpu`, `cuda`, `cuda:N`; a GPU that cannot be opened falls back to the
/// CPU with a message, since a long run on the CPU beats no run.
pub fn device(spec: &str) -> anyhow::Result<Device> {
    let ordinal = match spec {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => bail!("--device {other:?}: expected cpu, cuda or cuda:N"),
        },
    };
    match Device::new_cuda(ordinal) {
        Ok(device) => Ok(device),
        Err(err) => {
            eprintln!("warning: cannot use cuda:{ordinal} ({err}); running on the CPU");
            Ok(Device::Cpu)
        }
    }
}

/// Load a model directory, naming it in errors.
pub fn load_model(dir: &Path, device_spec: &str) -> anyhow::Result<Classifier> {
    let device = device(device_spec)?;
    let started = std::time::Instant::now();
    let classifier =
        Classifier::load(dir, &device).with_context(|| format!("loading the model in {}", dir.display()))?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), labels = classifier.labels().len(), "model loaded");
    Ok(classifier)
}

/// Probabilities of every passage, read as the model was trained to read
/// it (with its headings or without), with a progress bar on a terminal
/// when the job is long enough to want one.
pub fn predict_with_progress(
    classifier: &Classifier,
    passages: &[Passage<'_>],
    plan: BatchPlan,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let bar = (passages.len() >= PROGRESS_FROM && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(passages.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} provisions {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = std::time::Instant::now();
    let ids = classifier.passage_ids(passages)?;
    warn_of_truncation(&ids, classifier.max_length());
    let scores = classifier.predict_ids(&ids, plan, &mut |done| {
        if let Some(bar) = &bar {
            bar.inc(done as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let texts = passages.len();
    tracing::info!(texts, seconds, per_second = texts as f64 / seconds.max(1e-9), "classified");
    Ok(scores)
}

/// Say how many texts filled the model's whole token window: the model reads
/// nothing past it, so a label that only their later words would raise is
/// missed. A reviewer of long provisions needs to know that.
fn warn_of_truncation(ids: &[Vec<u32>], max_length: usize) {
    let at_limit: Vec<usize> =
        ids.iter().enumerate().filter(|(_, ids)| ids.len() >= max_length).map(|(i, _)| i).collect();
    if let Some(&first) = at_limit.first() {
        tracing::warn!(
            "{} of {} texts reach the model's limit of {max_length} tokens and are read only up to it \
             (the first is text {}); a label raised only by their later words is missed",
            at_limit.len(),
            ids.len(),
            first + 1,
        );
    }
}

/// The recipe's build, rebuilt first when it is missing or older than the
/// recipe or its annotations.
pub fn ensure_built(recipe: &LoadedRecipe, data_root: Option<PathBuf>) -> anyhow::Result<Manifest> {
    match read_manifest(recipe) {
        Ok(manifest) if !is_stale(recipe, &manifest) => Ok(manifest),
        _ => {
            eprintln!("building {} (missing or older than its recipe or annotations)", recipe.recipe.name);
            Ok(build_dataset(recipe, &BuildOptions { data_root })?.manifest)
        }
    }
}
