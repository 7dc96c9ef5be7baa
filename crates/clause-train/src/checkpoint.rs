//! Checkpoints: everything a run needs to continue exactly where it stopped.
//!
//! A checkpoint is a directory `<out>/checkpoint/` with the weights, the
//! optimizer moments, the best weights so far and `state.json` (position,
//! random state, history, and the sha256 of each tensor file). It is written
//! to a temporary directory, every file is synced, and the directory is
//! renamed into place, so a crash leaves the previous checkpoint or the new
//! one, never a mix; loading verifies the hashes. Replacing a directory takes
//! two renames, and a crash between them leaves no `checkpoint/` at all: then
//! loading takes the furthest of the directories left beside it that
//! verifies.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use clause_eval::metrics::Metrics;
use clause_infer::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::{Error, io_error};

/// One epoch's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation metrics at the thresholds tuned on validation.
    pub validation: Metrics,
    /// Those thresholds.
    pub thresholds: Vec<f32>,
    /// Seconds the epoch's training took.
    pub seconds: f64,
    /// Training sequences per second.
    pub sequences_per_second: f64,
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The configuration the run was started with.
    pub config: TrainConfig,
    /// sha256 of the dataset manifest it trains on.
    pub dataset_manifest_sha256: String,
    /// 0-based epoch in progress.
    pub epoch: usize,
    /// Next batch of that epoch.
    pub batch: usize,
    /// Summed loss and batches so far in that epoch.
    pub epoch_loss: f64,
    /// Batches counted in `epoch_loss`.
    pub epoch_batches: usize,
    /// Sequences trained on so far in that epoch.
    pub epoch_sequences: usize,
    /// Training seconds so far in that epoch.
    pub epoch_seconds: f64,
    /// Optimizer steps taken.
    pub step: usize,
    /// Dropout generator.
    pub rng: SplitMix64,
    /// Finished epochs.
    pub history: Vec<EpochRecord>,
    /// Index into `history` of the best epoch so far.
    pub best: Option<usize>,
    /// Epochs since the best one.
    pub epochs_without_improvement: usize,
    /// Training seconds of finished epochs.
    pub seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    state: RunState,
    files: HashMap<String, String>,
}

const WEIGHTS: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const BEST: &str = "best.safetensors";
const STATE: &str = "state.json";
const STAGING_PREFIX: &str = ".checkpoint.tmp-";
const OLD_PREFIX: &str = ".checkpoint.old-";

/// The checkpoint directory of a run writing to `out`.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// Tensors to store.
pub struct CheckpointTensors<'a> {
    /// Current weights.
    pub weights: &'a HashMap<String, Tensor>,
    /// Optimizer moments.
    pub optimizer: &'a HashMap<String, Tensor>,
    /// Best weights so far, if any.
    pub best: Option<&'a HashMap<String, Tensor>>,
}

/// Write a checkpoint atomically.
pub fn save(out: &Path, state: &RunState, tensors: &CheckpointTensors<'_>) -> Result<(), Error> {
    let target = checkpoint_dir(out);
    let staging = out.join(format!("{STAGING_PREFIX}{}", std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    let mut files = HashMap::new();
    let mut write_tensors = |name: &str, map: &HashMap<String, Tensor>| -> Result<(), Error> {
        let path = staging.join(name);
        candle_core::safetensors::save(map, &path)?;
        files.insert(name.to_string(), sync_and_hash(&path)?);
        Ok(())
    };
    write_tensors(WEIGHTS, tensors.weights)?;
    write_tensors(OPTIMIZER, tensors.optimizer)?;
    if let Some(best) = tensors.best {
        write_tensors(BEST, best)?;
    } else if target.join(BEST).exists() {
        // Keep the best weights of an earlier epoch.
        std::fs::copy(target.join(BEST), staging.join(BEST)).map_err(io_error(target.join(BEST)))?;
        files.insert(BEST.to_string(), sync_and_hash(&staging.join(BEST))?);
    }
    let json = serde_json::to_vec_pretty(&StateFile { state: state.clone(), files })
        .map_err(|err| Error::Checkpoint { path: staging.clone(), message: err.to_string() })?;
    let state_path = staging.join(STATE);
    let mut file = std::fs::File::create(&state_path).map_err(io_error(&state_path))?;
    file.write_all(&json).map_err(io_error(&state_path))?;
    file.sync_all().map_err(io_error(&state_path))?;
    drop(file);
    sync_dir(&staging)?;
    crate::pause::here(|| format!("checkpoint {} staged", state.epoch));
    if target.exists() {
        let old = out.join(format!("{OLD_PREFIX}{}", std::process::id()));
        if old.exists() {
            // Left by a killed run that had this process id; `target` is newer.
            std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
        }
        std::fs::rename(&target, &old).map_err(io_error(&target))?;
        crate::pause::here(|| format!("checkpoint {} swapping", state.epoch));
        std::fs::rename(&staging, &target).map_err(io_error(&target))?;
    } else {
        std::fs::rename(&staging, &target).map_err(io_error(&target))?;
    }
    sync_dir(out)?;
    // Only now that the new checkpoint is durable are the others garbage.
    remove_leftovers(out)
}

fn remove_leftovers(out: &Path) -> Result<(), Error> {
    for leftover in leftovers(out)? {
        std::fs::remove_dir_all(&leftover).map_err(io_error(&leftover))?;
    }
    Ok(())
}

/// Checkpoint directories beside `checkpoint/`: being written, or moved
/// aside while being replaced, by this run or by one that was killed.
fn leftovers(out: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(out).map_err(io_error(out))? {
        let entry = entry.map_err(io_error(out))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(STAGING_PREFIX) || name.starts_with(OLD_PREFIX)) && entry.path().is_dir() {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// A loaded checkpoint.
pub struct Loaded {
    /// Where the run stands.
    pub state: RunState,
    /// Current weights.
    pub weights: HashMap<String, Tensor>,
    /// Optimizer moments.
    pub optimizer: HashMap<String, Tensor>,
    /// Best weights so far.
    pub best: Option<HashMap<String, Tensor>>,
}

/// Read and verify the checkpoint of `out`.
pub fn load(out: &Path, device: &Device) -> Result<Loaded, Error> {
    let dir = checkpoint_dir(out);
    if dir.exists() || !out.is_dir() {
        return load_dir(&dir, device);
    }
    let mut furthest: Option<(PathBuf, Loaded)> = None;
    for leftover in leftovers(out)? {
        match load_dir(&leftover, device) {
            Ok(loaded) => {
                let position = |state: &RunState| (state.epoch, state.batch);
                if furthest.as_ref().is_none_or(|(_, kept)| position(&loaded.state) > position(&kept.state)) {
                    furthest = Some((leftover, loaded));
                }
            }
            // A directory whose writing was cut short.
            Err(err) => tracing::debug!("{}: not a complete checkpoint: {err}", leftover.display()),
        }
    }
    match furthest {
        Some((path, loaded)) => {
            tracing::warn!("{}: no checkpoint in place; resuming from {}", dir.display(), path.display());
            // Put it in place, so that the run directory looks as if the
            // interrupted swap had finished.
            std::fs::rename(&path, &dir).map_err(io_error(&path))?;
            sync_dir(out)?;
            remove_leftovers(out)?;
            Ok(loaded)
        }
        None => load_dir(&dir, device),
    }
}

fn load_dir(dir: &Path, device: &Device) -> Result<Loaded, Error> {
    let dir = dir.to_path_buf();
    let fail = |message: String| Error::Checkpoint { path: dir.clone(), message };
    let state_path = dir.join(STATE);
    if !state_path.exists() {
        return Err(fail("no checkpoint to resume from (state.json missing)".to_string()));
    }
    let text = std::fs::read_to_string(&state_path).map_err(io_error(&state_path))?;
    let file: StateFile =
        serde_json::from_str(&text).map_err(|err| fail(format!("state.json line {}: {err}", err.line())))?;
    for (name, expected) in &file.files {
        let actual = hash_file(&dir.join(name))?;
        if &actual != expected {
            return Err(fail(format!(
                "{name} has sha256 {actual}, state.json recorded {expected}: the checkpoint is corrupted"
            )));
        }
    }
    let read = |name: &str| -> Result<HashMap<String, Tensor>, Error> {
        if !file.files.contains_key(name) {
            return Err(fail(format!("{name} is not recorded in state.json")));
        }
        candle_core::safetensors::load(dir.join(name), device).map_err(Error::Candle)
    };
    Ok(Loaded {
        weights: read(WEIGHTS)?,
        optimizer: read(OPTIMIZER)?,
        best: if file.files.contains_key(BEST) { Some(read(BEST)?) } else { None },
        state: file.state,
    })
}

fn sync_and_hash(path: &Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))?;
    hash_file(path)
}

/// Lower-case hex sha256 of a file.
pub(crate) fn hash_file(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(io_error(path))?;
    Ok(clause_data::hash::sha256_hex(&bytes))
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_error(dir))
}
