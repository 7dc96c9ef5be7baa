//! Find a model's files: a local directory, or a Hugging Face Hub model id
//! served from the local Hub cache (and downloaded into it when online).
//!
//! The cache is the one the Python `huggingface_hub` uses (`$HF_HOME/hub`,
//! by default `~/.cache/huggingface/hub`), so a model fetched once by either
//! tool is found by both. `HF_HUB_OFFLINE=1` forbids network access, as it
//! does in Python: a model missing from the cache is then an error that says
//! where it looked.

use std::path::{Path, PathBuf};

use crate::Error;

/// The files a BERT model directory must hold for this project.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Where a model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModel {
    /// The directory holding the files (for a Hub model, its snapshot in the cache).
    pub dir: PathBuf,
    /// What the user named: the directory as given, or the Hub id.
    pub source: String,
}

/// True when `HF_HUB_OFFLINE` asks for no network access.
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// A Hub model id: `name` or `owner/name`, of letters, digits, `-`, `_` and `.`.
pub fn is_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// Resolve `spec`: an existing directory is used as is; otherwise a Hub id
/// is looked up in the cache named by the environment (`HF_HOME`), and
/// downloaded unless `HF_HUB_OFFLINE` is set.
pub fn resolve(spec: &str) -> Result<ResolvedModel, Error> {
    resolve_in(spec, &hf_hub::Cache::from_env(), offline_from_env())
}

/// [`resolve`] with an explicit cache and network policy.
pub fn resolve_in(spec: &str, cache: &hf_hub::Cache, offline: bool) -> Result<ResolvedModel, Error> {
    let path = Path::new(spec);
    if path.is_dir() {
        return Ok(ResolvedModel { dir: path.to_path_buf(), source: spec.to_string() });
    }
    let hub_error = |message: String| Error::Hub { id: spec.to_string(), message };
    if !is_hub_id(spec) {
        return Err(hub_error("no such directory, and not a Hugging Face Hub model id (owner/name)".to_string()));
    }
    let cached = cache.model(spec.to_string());
    let mut found = Vec::with_capacity(MODEL_FILES.len());
    let mut missing = Vec::new();
    for file in MODEL_FILES {
        match cached.get(file) {
            Some(path) => found.push(path),
            None => missing.push(file),
        }
    }
    if !missing.is_empty() {
        if offline {
            return Err(hub_error(format!(
                "no such directory, and the Hugging Face cache at {} lacks {} (HF_HUB_OFFLINE is set, so nothing \
                 was downloaded; fetch it while online, or give a local directory)",
                cache.path().display(),
                missing.join(", ")
            )));
        }
        found = download(spec, cache).map_err(hub_error)?;
    }
    let dir = found
        .first()
        .and_then(|file| file.parent())
        .map(Path::to_path_buf)
        .ok_or_else(|| hub_error("the cache returned no files".to_string()))?;
    tracing::info!(model = spec, dir = %dir.display(), "model files from the Hugging Face cache");
    Ok(ResolvedModel { dir, source: spec.to_string() })
}

/// Download the model files into the cache; returns their paths.
fn download(id: &str, cache: &hf_hub::Cache) -> Result<Vec<PathBuf>, String> {
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_cache_dir(cache.path().clone())
        .with_progress(false)
        .build()
        .map_err(|err| format!("cannot reach the Hugging Face Hub: {err}"))?;
    let repo = api.model(id.to_string());
    MODEL_FILES.iter().map(|file| repo.get(file).map_err(|err| format!("downloading {file}: {err}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lay out a cache the way huggingface_hub does: refs/main names the
    /// snapshot directory holding the files.
    fn fake_cache(root: &Path, id: &str, files: &[&str]) -> PathBuf {
        let repo = root.join(format!("models--{}", id.replace('/', "--")));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("refs")).expect("refs");
        std::fs::write(repo.join("refs/main"), commit).expect("ref");
        let snapshot = repo.join("snapshots").join(commit);
        std::fs::create_dir_all(&snapshot).expect("snapshot");
        for file in files {
            std::fs::write(snapshot.join(file), "{}").expect("file");
        }
        snapshot
    }

    #[test]
    fn hub_ids() {
        assert!(is_hub_id("sentence-transformers/all-MiniLM-L6-v2"));
        assert!(is_hub_id("bert-base-uncased"));
        assert!(!is_hub_id("models/base/x/y"));
        assert!(!is_hub_id("../x"));
        assert!(!is_hub_id("owner/"));
        assert!(!is_hub_id("a b/c"));
    }

    #[test]
    fn a_directory_is_used_as_is() {
        let dir = tempfile::tempdir().expect("dir");
        let spec = dir.path().to_str().expect("utf8");
        let cache = hf_hub::Cache::new(dir.path().join("none"));
        let resolved = resolve_in(spec, &cache, true).expect("dir");
        assert_eq!(resolved.dir, dir.path());
    }

    #[test]
    fn offline_reads_the_cache_snapshot() {
        let root = tempfile::tempdir().expect("dir");
        let snapshot = fake_cache(root.path(), "org/tiny-bert", &MODEL_FILES);
        let cache = hf_hub::Cache::new(root.path().to_path_buf());
        let resolved = resolve_in("org/tiny-bert", &cache, true).expect("cached");
        assert_eq!(resolved.dir, snapshot);
        assert_eq!(resolved.source, "org/tiny-bert");
    }

    #[test]
    fn offline_without_the_files_names_what_is_missing() {
        let root = tempfile::tempdir().expect("dir");
        fake_cache(root.path(), "org/partial", &["config.json"]);
        let cache = hf_hub::Cache::new(root.path().to_path_buf());
        let message = resolve_in("org/partial", &cache, true).expect_err("missing").to_string();
        assert!(message.contains("org/partial"), "{message}");
        assert!(message.contains("tokenizer.json, model.safetensors"), "{message}");
        assert!(message.contains("HF_HUB_OFFLINE"), "{message}");
        let message = resolve_in("no/such/dir/here", &cache, true).expect_err("not an id").to_string();
        assert!(message.contains("not a Hugging Face Hub model id"), "{message}");
    }
}
