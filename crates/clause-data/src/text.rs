//! Reading text files with errors that say where they went wrong.

use std::path::Path;

use crate::error::{Error, Result};

/// Read a file as UTF-8. Invalid bytes are reported with their line and
/// offset rather than replaced, so no text is silently altered.
pub fn read_utf8(path: &Path) -> Result<String> {
    decode_utf8(path, std::fs::read(path).map_err(Error::io(path))?)
}

/// [`read_utf8`] on bytes already read from `path` (named in errors).
pub fn decode_utf8(path: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        let byte = err.utf8_error().valid_up_to();
        let line = err.as_bytes()[..byte].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::NotUtf8 { path: path.to_path_buf(), line, byte }
    })
}

/// Lines of a text with `\r\n` or `\n` endings; a final newline does not
/// start another line, and a leading byte-order mark is dropped.
pub fn split_lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().collect()
}

/// The data lines of a project TSV file (annotations, rationales): each with
/// its 1-based line number, without a trailing `\r`; blank lines and `#`
/// comments are skipped.
pub fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, raw)| (index + 1, raw.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
}

/// A label of a project file that the recipe's label set must hold: an
/// error naming the file, the line and the known labels otherwise.
pub fn check_label(path: &Path, line: usize, label: &str, known: &std::collections::BTreeSet<String>) -> Result<()> {
    if known.contains(label) {
        return Ok(());
    }
    Err(Error::UnknownLabel {
        path: path.to_path_buf(),
        line: line.to_string(),
        label: label.to_string(),
        known: known.iter().cloned().collect::<Vec<_>>().join(", "),
    })
}

/// A TOML parse error as `line N (`the line`): problem`, quoting the line so
/// the message names the key as well as the problem.
pub fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let quoted = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line} (`{quoted}`): {}", err.message())
        }
        None => err.message().to_string(),
    }
}
