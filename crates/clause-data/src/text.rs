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

/// The rows of a project file of single sentences (the probe suite, written
/// training sentences), each read by `read_row` from its 1-based line number
/// and fields, in file order: a first data line that is `header` joined by
/// tabs, then at least one line of exactly `N` tab-separated fields. Errors
/// name the file and line.
pub fn sentence_rows<'a, const N: usize, T>(
    path: &Path,
    text: &'a str,
    header: [&str; N],
    mut read_row: impl FnMut(usize, [&'a str; N]) -> Result<T>,
) -> Result<Vec<T>> {
    let malformed =
        |line: usize, message: String| Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message };
    let mut lines = data_lines(text);
    match lines.next() {
        Some((_, first)) if first.split('\t').map(str::trim).eq(header) => {}
        Some((line, _)) => return Err(malformed(line, format!("expected the header `{}`", header.join("<TAB>")))),
        None => return Err(malformed(1, "the file is empty; expected a header and sentences".to_string())),
    }
    let mut rows = Vec::new();
    for (line, raw) in lines {
        let fields: Vec<&str> = raw.split('\t').collect();
        let Ok(fields) = <[&str; N]>::try_from(fields.as_slice()) else {
            return Err(malformed(
                line,
                format!("expected {N} tab-separated fields ({}), found {}", header.join(", "), fields.len()),
            ));
        };
        rows.push(read_row(line, fields)?);
    }
    if rows.is_empty() {
        return Err(malformed(1, "no sentences after the header".to_string()));
    }
    Ok(rows)
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
