//! What identifies a model: the sha256 of the `sha256sum` listing of the
//! files it is loaded from, the way a recipe's directory source is
//! identified. `clause.json` records the base model's and the dataset's
//! hashes but not the trained weights', and two trainings of one recipe
//! differ only there.

use std::io::Write;
use std::path::{Path, PathBuf};

use clause_infer::Error;
use clause_infer::card::{self, CARD_FILE, ModelCard};
use sha2::{Digest, Sha256};

/// The hex sha256 of the listing `<sha256>  <path>\n` (paths relative to
/// `dir`, `/`-separated, sorted) of `config.json`, `tokenizer.json`,
/// `clause.json` when there is one, and every weights file it names (each
/// ensemble member's).
pub fn model_sha256(dir: &Path) -> Result<String, Error> {
    let mut files: Vec<PathBuf> = vec![dir.join("config.json"), dir.join("tokenizer.json")];
    let card_path = dir.join(CARD_FILE);
    if card_path.is_file() {
        files.push(card_path.clone());
        files.extend(card::read::<ModelCard>(&card_path)?.weight_files(dir)?);
    } else {
        files.push(dir.join("model.safetensors"));
    }
    let mut listing: Vec<(String, String)> = Vec::with_capacity(files.len());
    for file in &files {
        let relative = file.strip_prefix(dir).unwrap_or(file);
        let name = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        listing.push((name, file_sha256(file)?));
    }
    listing.sort();
    let mut hasher = Sha256::new();
    for (name, hash) in &listing {
        hasher.update(format!("{hash}  {name}\n").as_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

fn file_sha256(path: &Path) -> Result<String, Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io)?;
    hasher.flush().map_err(io)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
