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
use clause_infer::reading::MAX_WINDOWS;

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
/// it (with its headings or without, in windows, sentence by sentence), with a progress bar on a terminal
/// when the job is long enough to want one.
pub fn predict_with_progress(
    classifier: &Classifier,
    passages: &[Passage<'_>],
    plan: BatchPlan,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let started = std::time::Instant::now();
    let views = classifier.views(passages)?;
    warn_of_cut_texts(&views.cut, passages.len());
    let bar = (passages.len() >= PROGRESS_FROM && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(views.ids.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} sequences {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let scores = classifier.score_views(&views, plan, &mut |done| {
        if let Some(bar) = &bar {
            bar.inc(done as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let texts = passages.len();
    tracing::info!(
        texts,
        sequences = views.ids.len(),
        seconds,
        per_second = texts as f64 / seconds.max(1e-9),
        "classified"
    );
    Ok(scores)
}

/// Say how many texts were too long to read whole: the model reads a long
/// text in overlapping windows, up to [`MAX_WINDOWS`] of them, and nothing
/// past the last. A reviewer needs to know that a label raised only by
/// their later words is missed.
fn warn_of_cut_texts(cut: &[usize], texts: usize) {
    if let Some(&first) = cut.first() {
        tracing::warn!(
            "{} of {texts} texts are longer than the model reads ({MAX_WINDOWS} windows) and are read only up to \
             that (the first is text {}); a label raised only by their later words is missed",
            cut.len(),
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
