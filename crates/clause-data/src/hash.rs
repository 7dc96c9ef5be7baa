//! Content hashes used in recipes, annotations and manifests.

use sha2::{Digest, Sha256};
use std::path::Path;

use crate::error::{Error, Result};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex sha256 of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    Ok(sha256_hex(&bytes))
}

/// The digest of a set of files: sha256 over `<sha256>  <relative path>\n`
/// lines in path order, the format of `sha256sum`, so it can be checked by
/// hand with `sha256sum FILES | sha256sum`.
pub fn tree_digest(files: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    let mut listing = String::new();
    for (relative, sha) in sorted {
        listing.push_str(sha);
        listing.push_str("  ");
        listing.push_str(relative);
        listing.push('\n');
    }
    sha256_hex(listing.as_bytes())
}

/// The hash an annotation stores of the text it labelled: the first 16 hex
/// digits of the sha256 of the whitespace-normalised text. Short enough to
/// read in a review, long enough that an edit never collides.
pub fn text_hash(text: &str) -> String {
    let mut full = sha256_hex(text.as_bytes());
    full.truncate(16);
    full
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn tree_digest_is_order_independent_and_content_sensitive() {
        let a = vec![("x".to_string(), "1".to_string()), ("y".to_string(), "2".to_string())];
        let b = vec![("y".to_string(), "2".to_string()), ("x".to_string(), "1".to_string())];
        let c = vec![("x".to_string(), "1".to_string()), ("y".to_string(), "3".to_string())];
        assert_eq!(tree_digest(&a), tree_digest(&b));
        assert_ne!(tree_digest(&a), tree_digest(&c));
    }

    #[test]
    fn text_hash_is_sixteen_hex_digits() {
        let hash = text_hash("Each Party shall adopt such measures.");
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
