//! The project's rationale files: for each label of each provision, the
//! words that carry it, as a reviewer would highlight them.
//!
//! ```text
//! # comment
//! <id>\t<label>\t<span, verbatim from the provision text>
//! ```
//!
//! A label may have several spans. A span must occur in its provision's
//! (whitespace-normalised) text and name a label the provision carries, so a
//! rationale can never drift from the text or the label it explains: the
//! build refuses one that does not, naming file and line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::example::Example;
use crate::segment::normalise_whitespace;
use crate::text::{check_label, data_lines, read_utf8};

/// One rationale line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rationale {
    /// The provision id.
    pub id: String,
    /// The label the span carries.
    pub label: String,
    /// The span, whitespace-normalised.
    pub span: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// A rationale found in its provision's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The provision id.
    pub id: String,
    /// The label.
    pub label: String,
    /// Byte offsets of the span in the provision's text.
    pub start: usize,
    /// End byte offset (exclusive).
    pub end: usize,
}

/// How many labels have a rationale, per label and over all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Per label, in label-set order: `(label, labels assigned, labels with a span)`.
    pub per_label: Vec<(String, usize, usize)>,
    /// Rationale lines.
    pub spans: usize,
}

impl Coverage {
    /// Labels assigned over all provisions, and those with a span.
    pub fn totals(&self) -> (usize, usize) {
        self.per_label.iter().fold((0, 0), |(a, b), (_, n, s)| (a + n, b + s))
    }
}

/// Read a rationale file, checking every label against `known`.
pub fn read_rationales(path: &Path, known: &BTreeSet<String>) -> Result<Vec<Rationale>> {
    parse_rationales(path, &read_utf8(path)?, known)
}

/// [`read_rationales`] on contents already read from `path`.
pub fn parse_rationales(path: &Path, text: &str, known: &BTreeSet<String>) -> Result<Vec<Rationale>> {
    let mut out = Vec::new();
    for (line, trimmed) in data_lines(text) {
        let malformed =
            |message: String| Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message };
        let fields: Vec<&str> = trimmed.split('\t').collect();
        let [id, label, span] = fields[..] else {
            return Err(malformed(format!(
                "expected 3 tab-separated fields (id, label, span), found {}",
                fields.len()
            )));
        };
        let (id, label, span) = (id.trim(), label.trim(), normalise_whitespace(span));
        if id.is_empty() {
            return Err(malformed("the id field is empty".to_string()));
        }
        check_label(path, line, label, known)?;
        if span.is_empty() {
            return Err(malformed("the span is empty".to_string()));
        }
        out.push(Rationale { id: id.to_string(), label: label.to_string(), span, line });
    }
    Ok(out)
}

/// Find each rationale of `path` in its example's text. An id that is not an
/// example, a label the example does not carry, or a span that is not in its
/// text is an error naming the line.
pub fn locate(path: &Path, rationales: &[Rationale], examples: &HashMap<&str, &Example>) -> Result<Vec<Located>> {
    let mut out = Vec::with_capacity(rationales.len());
    for rationale in rationales {
        let malformed =
            |message: String| Error::Malformed { path: path.to_path_buf(), line: rationale.line.to_string(), message };
        let Some(example) = examples.get(rationale.id.as_str()) else {
            return Err(malformed(format!("`{}` is not a provision of the recipe's sources", rationale.id)));
        };
        if !example.labels.contains(&rationale.label) {
            return Err(malformed(format!(
                "`{}` does not carry `{}` in its annotation (it carries: {})",
                rationale.id,
                rationale.label,
                if example.labels.is_empty() { "-".to_string() } else { example.labels.join(", ") }
            )));
        }
        let Some(start) = example.text.find(&rationale.span) else {
            let shown: String = rationale.span.chars().take(60).collect();
            return Err(malformed(format!("the span \"{shown}\" does not occur in the text of `{}`", rationale.id)));
        };
        out.push(Located {
            id: rationale.id.clone(),
            label: rationale.label.clone(),
            start,
            end: start + rationale.span.len(),
        });
    }
    Ok(out)
}

/// Coverage of `located` over the labels of `examples`.
pub fn coverage<'a>(
    labels: &[String],
    examples: impl IntoIterator<Item = &'a Example>,
    located: &[Located],
) -> Coverage {
    let with_span: BTreeSet<(&str, &str)> = located.iter().map(|l| (l.id.as_str(), l.label.as_str())).collect();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for example in examples {
        for label in &example.labels {
            let entry = counts.entry(label.as_str()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(with_span.contains(&(example.id.as_str(), label.as_str())));
        }
    }
    Coverage {
        per_label: labels
            .iter()
            .map(|l| {
                let (n, s) = counts.get(l.as_str()).copied().unwrap_or_default();
                (l.clone(), n, s)
            })
            .collect(),
        spans: located.len(),
    }
}

/// The recipe's rationale files, read and located, in recipe order, with the
/// path of each for the manifest.
pub fn read_all(
    dir: &Path,
    files: &[String],
    known: &BTreeSet<String>,
    examples: &HashMap<&str, &Example>,
) -> Result<Vec<(PathBuf, Vec<Located>)>> {
    files
        .iter()
        .map(|relative| {
            let path = dir.join(relative);
            let rationales = read_rationales(&path, known)?;
            Ok((path.clone(), locate(&path, &rationales, examples)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["secrecy", "surveillance"].iter().map(|s| s.to_string()).collect()
    }

    fn example(id: &str, text: &str, labels: &[&str]) -> Example {
        Example {
            id: id.into(),
            document: "d".into(),
            text: text.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            article: None,
            paragraph: None,
            title: None,
            chapter: None,
            origin: "d.md:1".into(),
        }
    }

    #[test]
    fn spans_are_located_in_their_text_and_counted_per_label() {
        let path = Path::new("r.tsv");
        let text = "# comment\n\nd:art1\tsecrecy\tshall keep   confidential\r\nd:art1\tsurveillance\tmay intercept\n";
        let rationales = parse_rationales(path, text, &known()).expect("parse");
        assert_eq!(rationales[0].span, "shall keep confidential");
        assert_eq!(rationales[1].line, 4);
        let art1 = example(
            "d:art1",
            "Each Party may intercept and shall keep confidential the fact.",
            &["surveillance", "secrecy"],
        );
        let art2 = example("d:art2", "Each Party shall keep records.", &["secrecy"]);
        let examples: HashMap<&str, &Example> = [("d:art1", &art1), ("d:art2", &art2)].into_iter().collect();
        let located = locate(path, &rationales, &examples).expect("locate");
        assert_eq!(&art1.text[located[0].start..located[0].end], "shall keep confidential");
        let coverage = coverage(&["surveillance".into(), "secrecy".into()], [&art1, &art2], &located);
        assert_eq!(coverage.per_label, vec![("surveillance".into(), 1, 1), ("secrecy".into(), 2, 1)]);
        assert_eq!((coverage.totals(), coverage.spans), ((3, 2), 2));
    }

    #[test]
    fn a_bad_line_names_the_file_the_line_and_what_is_wrong() {
        let path = Path::new("datasets/x/rationales/d.tsv");
        let err = parse_rationales(path, "d:art1\tsecrecy\n", &known()).expect_err("two fields").to_string();
        assert!(err.contains("rationales/d.tsv:1:") && err.contains("3 tab-separated"), "{err}");
        let err = parse_rationales(path, "\nd:art1\tgossip\tword\n", &known()).expect_err("label").to_string();
        assert!(err.contains("d.tsv:2") && err.contains("gossip"), "{err}");
        let err = parse_rationales(path, "d:art1\tsecrecy\t  \n", &known()).expect_err("empty").to_string();
        assert!(err.contains("span is empty"), "{err}");

        let art1 = example("d:art1", "Each Party shall keep it confidential.", &["secrecy"]);
        let examples: HashMap<&str, &Example> = [("d:art1", &art1)].into_iter().collect();
        let locate_line = |line: &str| {
            let rationales = parse_rationales(path, line, &known()).expect("parse");
            locate(path, &rationales, &examples).expect_err("refused").to_string()
        };
        let err = locate_line("d:art1\tsecrecy\tkeep it secret\n");
        assert!(err.contains("d.tsv:1:") && err.contains("does not occur in the text of `d:art1`"), "{err}");
        let err = locate_line("d:art1\tsurveillance\tshall keep\n");
        assert!(err.contains("does not carry `surveillance`") && err.contains("carries: secrecy"), "{err}");
        let err = locate_line("d:art9\tsecrecy\tshall keep\n");
        assert!(err.contains("`d:art9` is not a provision"), "{err}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in ["\t\t", "\t\t\t\t", "a\tb\tc\td", "#\n\t", "\u{feff}x\tsecrecy\ty", "x\tsecrecy\t\u{2028}"] {
            let _ = parse_rationales(Path::new("r.tsv"), text, &known());
        }
    }
}
