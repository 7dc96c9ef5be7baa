//! The project's annotation files: one reviewable line per provision.
//!
//! ```text
//! # comment
//! <id>\t<text hash>\t<labels>\t<first words of the text, for the reader>
//! ```
//!
//! `labels` is a comma-separated list, or `-` for a provision that carries no
//! label. The text hash (see [`crate::hash::text_hash`]) records which text
//! was labelled, so that a later edit to the source is caught rather than
//! silently inheriting old labels. The excerpt is ignored when reading.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::text::read_utf8;

/// One annotation line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// The provision id.
    pub id: String,
    /// The hash of the text that was labelled.
    pub text_hash: String,
    /// The labels, sorted, without duplicates.
    pub labels: Vec<String>,
    /// 1-based line in the file.
    pub line: usize,
}

/// Characters of text shown after the labels, so a reviewer can see what was
/// labelled without opening the source.
pub const EXCERPT_CHARS: usize = 100;

/// Read an annotation file, checking every label against `known`.
pub fn read_annotations(path: &Path, known: &BTreeSet<String>) -> Result<Vec<Annotation>> {
    let text = read_utf8(path)?;
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.trim_start().starts_with('#') {
            continue;
        }
        let malformed =
            |message: String| Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message };
        let fields: Vec<&str> = trimmed.split('\t').collect();
        if fields.len() < 3 {
            return Err(malformed(format!(
                "expected at least 3 tab-separated fields (id, text hash, labels), found {}",
                fields.len()
            )));
        }
        let id = fields[0].trim();
        if id.is_empty() {
            return Err(malformed("the id field is empty".to_string()));
        }
        let hash = fields[1].trim();
        if hash.len() != 16 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed(format!("the text hash `{hash}` is not 16 hex digits")));
        }
        let labels = parse_labels(fields[2]).map_err(malformed)?;
        for label in &labels {
            if !known.contains(label) {
                return Err(Error::UnknownLabel {
                    path: path.to_path_buf(),
                    line: line.to_string(),
                    label: label.clone(),
                    known: known.iter().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        out.push(Annotation { id: id.to_string(), text_hash: hash.to_ascii_lowercase(), labels, line });
    }
    Ok(out)
}

/// Parse a labels field: `-` (or nothing) for none, else comma-separated.
pub fn parse_labels(field: &str) -> std::result::Result<Vec<String>, String> {
    let field = field.trim();
    if field.is_empty() || field == "-" {
        return Ok(Vec::new());
    }
    let mut labels = BTreeSet::new();
    for label in field.split(',') {
        let label = label.trim();
        if label.is_empty() {
            return Err(format!("empty label in `{field}`; write labels as `a,b` or `-` for none"));
        }
        labels.insert(label.to_string());
    }
    Ok(labels.into_iter().collect())
}

/// Format one annotation line (without the newline).
pub fn format_annotation(id: &str, text_hash: &str, labels: &[String], text: &str) -> String {
    let labels = if labels.is_empty() { "-".to_string() } else { labels.join(",") };
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    excerpt = excerpt.replace(['\t', '\n', '\r'], " ");
    if text.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    format!("{id}\t{text_hash}\t{labels}\t{excerpt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["safeguard", "secrecy"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_labels_none_and_comments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.tsv");
        std::fs::write(
            &path,
            "# header\ndoc:art1\t0123456789abcdef\tsecrecy,safeguard\tText\n\ndoc:art2\t0123456789ABCDEF\t-\n",
        )
        .expect("write");
        let rows = read_annotations(&path, &known()).expect("read");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].labels, vec!["safeguard", "secrecy"]);
        assert_eq!(rows[1].labels, Vec::<String>::new());
        assert_eq!(rows[1].line, 4);
        assert_eq!(rows[1].text_hash, "0123456789abcdef");
    }

    #[test]
    fn unknown_label_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.tsv");
        std::fs::write(&path, "doc:art1\t0123456789abcdef\tsurveilance\n").expect("write");
        let err = read_annotations(&path, &known()).expect_err("must fail").to_string();
        assert!(err.contains("a.tsv:1") && err.contains("surveilance"), "{err}");
    }

    #[test]
    fn malformed_lines_are_rejected_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.tsv");
        for (body, needle) in [
            ("doc:art1 0123456789abcdef -\n", "3 tab-separated"),
            ("doc:art1\txyz\t-\n", "16 hex"),
            ("doc:art1\t0123456789abcdef\tsecrecy,,safeguard\n", "empty label"),
        ] {
            std::fs::write(&path, body).expect("write");
            let err = read_annotations(&path, &known()).expect_err("must fail").to_string();
            assert!(err.contains("a.tsv:1") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn format_round_trips() {
        let line = format_annotation("doc:art1", "0123456789abcdef", &["secrecy".to_string()], "Some\ttext");
        assert_eq!(line, "doc:art1\t0123456789abcdef\tsecrecy\tSome text");
    }
}
