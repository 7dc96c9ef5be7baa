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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::{check_label, data_lines, read_utf8};

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
    parse_annotations(path, &read_utf8(path)?, known)
}

/// [`read_annotations`] on contents already read from `path`.
pub fn parse_annotations(path: &Path, text: &str, known: &BTreeSet<String>) -> Result<Vec<Annotation>> {
    let mut out = Vec::new();
    for (line, trimmed) in data_lines(text) {
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
            check_label(path, line, label, known)?;
        }
        out.push(Annotation { id: id.to_string(), text_hash: hash.to_ascii_lowercase(), labels, line });
    }
    Ok(out)
}

/// A reviewed label set for one provision, from a corrections file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The provision id.
    pub id: String,
    /// Hash of the text the reviewer saw.
    pub text_hash: String,
    /// The labels the reviewer settled on.
    pub labels: Vec<String>,
    /// The corrections file, for messages.
    pub source: PathBuf,
    /// Its line or row there (`3`, `row 3`), for messages.
    pub line: String,
}

/// An annotation whose labels a correction changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The provision id.
    pub id: String,
    /// The annotation file.
    pub file: PathBuf,
    /// Its line there (1-based).
    pub line: usize,
    /// Labels before.
    pub old: Vec<String>,
    /// Labels after.
    pub new: Vec<String>,
}

/// The outcome of [`apply_corrections`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// New contents of each annotation file that changed.
    pub files: Vec<(PathBuf, String)>,
    /// Every changed annotation, in file and line order.
    pub changes: Vec<Change>,
    /// Corrections that confirmed the labels already there.
    pub unchanged: usize,
}

/// Merge reviewed labels into annotation files (given as path and
/// contents) by provision id. A correction whose id is in no file, whose
/// text hash differs from the annotated text's (the reviewer saw another
/// text: stale), or that contradicts another correction of the same id is
/// an error naming its origin; nothing is applied unless everything
/// applies. Changed lines keep their id, hash and excerpt; every other
/// byte of the files is kept.
pub fn apply_corrections(
    files: &[(PathBuf, String)],
    corrections: &[Correction],
    known: &BTreeSet<String>,
) -> Result<Applied> {
    // Ids are unique across a recipe's files (the build checks it).
    let mut located: BTreeMap<String, (usize, Annotation)> = BTreeMap::new();
    for (index, (path, text)) in files.iter().enumerate() {
        for annotation in parse_annotations(path, text, known)? {
            located.insert(annotation.id.clone(), (index, annotation));
        }
    }
    let mut wanted: BTreeMap<(usize, usize), (&Correction, &Annotation)> = BTreeMap::new();
    let mut seen: BTreeMap<&str, &Correction> = BTreeMap::new();
    for correction in corrections {
        let refuse = |message: String| Error::Malformed {
            path: correction.source.clone(),
            line: correction.line.clone(),
            message: format!("id `{}`: {message}", correction.id),
        };
        if let Some(label) = correction.labels.iter().find(|l| !known.contains(*l)) {
            return Err(refuse(format!(
                "label `{label}` is not one of the recipe's: {}",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(earlier) = seen.insert(&correction.id, correction)
            && earlier.labels != correction.labels
        {
            return Err(refuse(format!("contradicts the correction at {}", earlier.line)));
        }
        let Some((file, annotation)) = located.get(correction.id.as_str()) else {
            return Err(refuse("no annotation file of the recipe has this id".to_string()));
        };
        if annotation.text_hash != correction.text_hash {
            return Err(refuse(format!(
                "stale: the text reviewed (hash {}) is not the text annotated at {}:{} (hash {}); \
                 classify the current draft and review again",
                correction.text_hash,
                files[*file].0.display(),
                annotation.line,
                annotation.text_hash
            )));
        }
        wanted.insert((*file, annotation.line), (correction, annotation));
    }
    Ok(rewrite(files, &wanted))
}

/// The files with the `wanted` corrections applied, keyed by file index and
/// line: each changed line gets its new labels field, every other byte stays.
fn rewrite(files: &[(PathBuf, String)], wanted: &BTreeMap<(usize, usize), (&Correction, &Annotation)>) -> Applied {
    let mut applied = Applied { files: Vec::new(), changes: Vec::new(), unchanged: 0 };
    for (index, (path, text)) in files.iter().enumerate() {
        let mut changed = false;
        let mut out = String::with_capacity(text.len());
        for (number, raw) in text.split_inclusive('\n').enumerate() {
            let Some((correction, annotation)) = wanted.get(&(index, number + 1)) else {
                out.push_str(raw);
                continue;
            };
            if correction.labels == annotation.labels {
                applied.unchanged += 1;
                out.push_str(raw);
                continue;
            }
            let ending = &raw[raw.trim_end_matches(['\n', '\r']).len()..];
            let mut fields: Vec<&str> = raw[..raw.len() - ending.len()].split('\t').collect();
            let labels = if correction.labels.is_empty() { "-".to_string() } else { correction.labels.join(",") };
            fields[2] = &labels;
            out.push_str(&fields.join("\t"));
            out.push_str(ending);
            changed = true;
            applied.changes.push(Change {
                id: annotation.id.clone(),
                file: path.clone(),
                line: annotation.line,
                old: annotation.labels.clone(),
                new: correction.labels.clone(),
            });
        }
        if changed {
            applied.files.push((path.clone(), out));
        }
    }
    applied
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
    fn corrections_change_labels_in_place_and_refuse_stale_or_unknown_ids() {
        let path = PathBuf::from("a.tsv");
        let text = "# head\r\ndoc:art1\t0123456789abcdef\tsecrecy\tText one\r\ndoc:art2\tfedcba9876543210\t-\n";
        let files = vec![(path.clone(), text.to_string())];
        let fix = |id: &str, hash: &str, labels: &[&str]| Correction {
            id: id.to_string(),
            text_hash: hash.to_string(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            source: PathBuf::from("fixes.jsonl"),
            line: "row 1".to_string(),
        };
        let applied = apply_corrections(
            &files,
            &[fix("doc:art1", "0123456789abcdef", &[]), fix("doc:art2", "fedcba9876543210", &[])],
            &known(),
        )
        .expect("apply");
        assert_eq!(applied.unchanged, 1);
        assert_eq!(applied.changes.len(), 1);
        assert_eq!((applied.changes[0].line, applied.changes[0].old.clone()), (2, vec!["secrecy".to_string()]));
        assert_eq!(
            applied.files,
            vec![(
                path,
                "# head\r\ndoc:art1\t0123456789abcdef\t-\tText one\r\ndoc:art2\tfedcba9876543210\t-\n".to_string()
            )]
        );
        for (correction, needle) in [
            (fix("doc:art9", "0123456789abcdef", &[]), "no annotation file"),
            (fix("doc:art1", "1111111111111111", &[]), "stale"),
            (fix("doc:art1", "0123456789abcdef", &["secret"]), "label `secret`"),
        ] {
            let err = apply_corrections(&files, &[correction], &known()).expect_err("refused").to_string();
            assert!(err.contains("fixes.jsonl:row 1") && err.contains(needle), "{err}");
        }
        let err = apply_corrections(
            &files,
            &[fix("doc:art1", "0123456789abcdef", &[]), fix("doc:art1", "0123456789abcdef", &["secrecy"])],
            &known(),
        )
        .expect_err("contradiction")
        .to_string();
        assert!(err.contains("contradicts"), "{err}");
    }

    #[test]
    fn format_round_trips() {
        let line = format_annotation("doc:art1", "0123456789abcdef", &["secrecy".to_string()], "Some\ttext");
        assert_eq!(line, "doc:art1\t0123456789abcdef\tsecrecy\tSome text");
    }
}
