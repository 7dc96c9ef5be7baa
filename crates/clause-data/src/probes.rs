//! The buried-clause probe suite: single sentences, each written to carry
//! one label (or none), that `clause eval --probe buried` inserts into
//! label-less provisions to see whether a risky sentence is found wherever
//! it sits.
//!
//! The file is tab-separated with a header line `label<TAB>rule<TAB>sentence`;
//! `label` is one of the recipe's labels or `none` (a control), `rule` names
//! the guideline the sentence was written from. Blank lines and lines
//! starting with `#` are skipped.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::segment::normalise_whitespace;
use crate::text::{check_label, read_utf8, sentence_rows};

/// What a control sentence's label field says.
pub const CONTROL_LABEL: &str = "none";

/// The header line the file starts with.
pub const HEADER: [&str; 3] = ["label", "rule", "sentence"];

/// One probe sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSentence {
    /// The label it carries; `None` for a control.
    pub label: Option<String>,
    /// The guideline rule it was written from.
    pub rule: String,
    /// The sentence, whitespace-normalised.
    pub sentence: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// Read a probe file, checking every label against `known`.
pub fn read_probe_sentences(path: &Path, known: &BTreeSet<String>) -> Result<Vec<ProbeSentence>> {
    parse_probe_sentences(path, &read_utf8(path)?, known)
}

/// [`read_probe_sentences`] on contents already read from `path`.
pub fn parse_probe_sentences(path: &Path, text: &str, known: &BTreeSet<String>) -> Result<Vec<ProbeSentence>> {
    let malformed =
        |line: usize, message: String| Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message };
    sentence_rows(path, text, HEADER, |line, [label, rule, sentence]| {
        let label = label.trim();
        if label != CONTROL_LABEL {
            check_label(path, line, label, known)?;
        }
        let sentence = normalise_whitespace(sentence);
        if sentence.is_empty() {
            return Err(malformed(line, "the sentence is empty".to_string()));
        }
        Ok(ProbeSentence {
            label: (label != CONTROL_LABEL).then(|| label.to_string()),
            rule: rule.trim().to_string(),
            sentence,
            line,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["surveillance", "secrecy"].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_labelled_and_control_sentences() {
        let text = "label\trule\tsentence\n# a comment\nsurveillance\t3\tThe police may  search.\n\nnone\tcontrol\tIt enters into force.\n";
        let sentences = parse_probe_sentences(Path::new("p.tsv"), text, &known()).expect("parse");
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].label.as_deref(), Some("surveillance"));
        assert_eq!(sentences[0].sentence, "The police may search.");
        assert_eq!((sentences[1].label.as_deref(), sentences[1].line), (None, 5));
    }

    #[test]
    fn bad_files_name_the_line_and_what_was_expected() {
        let parse =
            |text: &str| parse_probe_sentences(Path::new("p.tsv"), text, &known()).expect_err("bad").to_string();
        assert!(parse("").contains("empty"), "{}", parse(""));
        assert!(parse("label\tsentence\n").contains("expected the header"));
        assert!(parse("label\trule\tsentence\n").contains("no sentences"));
        let err = parse("label\trule\tsentence\nsurveillance\t3\n");
        assert!(err.contains("p.tsv") && err.contains('2') && err.contains("3 tab-separated fields"), "{err}");
        let err = parse("label\trule\tsentence\nextradition\t3\tThey surrender.\n");
        assert!(err.contains("extradition"), "{err}");
        let err = parse("label\trule\tsentence\nsecrecy\t3\t  \n");
        assert!(err.contains("empty"), "{err}");
    }
}
