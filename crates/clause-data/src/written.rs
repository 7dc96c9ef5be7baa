//! Sentences written for training from a recipe's guidelines.
//!
//! Some labels are rare in real instruments (treaty-risk has 18 training
//! provisions on expression and 11 on secrecy, nearly all in one or two
//! drafting patterns), so a model never sees most of the ways a drafter can
//! restrict speech or impose a gag order. A recipe may list files of single
//! sentences written from its guidelines' rules, each with every label it
//! carries read alone. Training adds them to the training split only (alone
//! and buried in label-less provisions, as it adds rationale sentences:
//! `clause_train::augment`); validation, test and cross-validation's held-out
//! folds stay real provisions.
//!
//! The file is tab-separated with a header line `labels<TAB>rule<TAB>sentence`;
//! `labels` is comma-separated recipe labels, or `none`; `rule` names the
//! guideline the sentence was written from. Blank lines and lines starting
//! with `#` are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::annotations::parse_labels;
use crate::error::{Error, Result};
use crate::segment::normalise_whitespace;
use crate::text::{check_label, read_utf8, sentence_rows};

/// What the labels field of a sentence without a label says.
pub const NO_LABEL: &str = "none";

/// The header line the file starts with.
pub const HEADER: [&str; 3] = ["labels", "rule", "sentence"];

/// One written sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSentence {
    /// Every label it carries, sorted; empty for `none`.
    pub labels: Vec<String>,
    /// The guideline rule it was written from.
    pub rule: String,
    /// The sentence, whitespace-normalised.
    pub sentence: String,
    /// Where it was written, as `path:line`, for messages and example ids.
    pub origin: String,
}

/// Read a file of written sentences, checking every label against `known`.
pub fn read_written_sentences(path: &Path, known: &BTreeSet<String>) -> Result<Vec<WrittenSentence>> {
    parse_written_sentences(path, &read_utf8(path)?, known)
}

/// [`read_written_sentences`] on contents already read from `path`.
pub fn parse_written_sentences(path: &Path, text: &str, known: &BTreeSet<String>) -> Result<Vec<WrittenSentence>> {
    let malformed =
        |line: usize, message: String| Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message };
    sentence_rows(path, text, HEADER, |line, [labels, rule, sentence]| {
        let labels = if labels.trim() == NO_LABEL {
            Vec::new()
        } else {
            let labels = parse_labels(labels).map_err(|message| malformed(line, message))?;
            if labels.is_empty() {
                return Err(malformed(line, format!("no labels; write `{NO_LABEL}` for a sentence without one")));
            }
            for label in &labels {
                check_label(path, line, label, known)?;
            }
            labels
        };
        let sentence = normalise_whitespace(sentence);
        if sentence.is_empty() {
            return Err(malformed(line, "the sentence is empty".to_string()));
        }
        Ok(WrittenSentence {
            labels,
            rule: rule.trim().to_string(),
            sentence,
            origin: format!("{}:{line}", path.display()),
        })
    })
}

/// Every file of `files` (relative to the recipe directory `dir`), read
/// and checked, in order, each with its path.
pub fn read_all(
    dir: &Path,
    files: &[String],
    known: &BTreeSet<String>,
) -> Result<Vec<(PathBuf, Vec<WrittenSentence>)>> {
    files
        .iter()
        .map(|relative| {
            let path = dir.join(relative);
            Ok((path.clone(), read_written_sentences(&path, known)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["secrecy", "surveillance"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_labels_rules_and_sentences() {
        let text = "labels\trule\tsentence\n# a comment\n\nsurveillance,secrecy\t20\tThe provider shall keep  the order\tsecret.\n";
        let err = parse_written_sentences(Path::new("w.tsv"), text, &known()).expect_err("4 fields");
        assert!(err.to_string().contains("w.tsv") && err.to_string().contains("found 4"), "{err}");
        let text = "labels\trule\tsentence\n# a comment\n\nsurveillance,secrecy\t20\tThe provider shall keep  the order secret.\nnone\tnear-miss\tThe Parties shall meet once a year.\n";
        let sentences = parse_written_sentences(Path::new("w.tsv"), text, &known()).expect("parse");
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].labels, ["secrecy", "surveillance"]);
        assert_eq!(sentences[0].sentence, "The provider shall keep the order secret.");
        assert_eq!(sentences[0].origin, "w.tsv:4");
        assert!(sentences[1].labels.is_empty());
        assert_eq!(sentences[1].rule, "near-miss");
    }

    #[test]
    fn bad_lines_are_named() {
        let cases = [
            ("", "w.tsv:1:", "empty"),
            ("label\trule\tsentence\n", "w.tsv:1:", "header"),
            ("labels\trule\tsentence\n", "w.tsv:1:", "no sentences"),
            ("labels\trule\tsentence\nspeech\t1\tA sentence.\n", "w.tsv:2:", "speech"),
            ("labels\trule\tsentence\n-\t1\tA sentence.\n", "w.tsv:2:", "none"),
            ("labels\trule\tsentence\nsecrecy,\t1\tA sentence.\n", "w.tsv:2:", "empty label"),
            ("labels\trule\tsentence\nsecrecy\t1\t  \n", "w.tsv:2:", "empty"),
        ];
        for (text, line, what) in cases {
            let err = parse_written_sentences(Path::new("w.tsv"), text, &known()).expect_err(text).to_string();
            assert!(err.contains(line) && err.contains(what), "{text:?}: {err}");
        }
    }
}
