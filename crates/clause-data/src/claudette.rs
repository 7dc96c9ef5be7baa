//! Reader for the CLAUDETTE Terms of Service layout: `sentences/X.txt` holds
//! one sentence per line, `tags/X.txt` the same number of lines, each with
//! zero or more space-separated tags such as `ltd2` (category + level) or the
//! auxiliary marker `countrym`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::example::Example;
use crate::segment::normalise_whitespace;
use crate::text::{read_utf8, split_lines};

/// How tags become labels.
#[derive(Debug, Clone)]
pub struct TagRules<'a> {
    /// The dataset's labels (tag categories that are labels).
    pub labels: &'a BTreeSet<String>,
    /// Levels that make a category positive.
    pub levels: &'a [u8],
    /// Categories to skip.
    pub ignore: &'a [String],
}

/// A CLAUDETTE corpus read from disk.
#[derive(Debug, Clone)]
pub struct ClaudetteCorpus {
    /// Every sentence, documents in file-name order, lines in order.
    pub examples: Vec<Example>,
    /// `(path relative to the corpus directory, sha256)` of every file read.
    pub files: Vec<(String, String)>,
}

/// Read every `sentences/*.txt` with its `tags/*.txt` under `dir`.
pub fn read_claudette(dir: &Path, rules: &TagRules<'_>) -> Result<ClaudetteCorpus> {
    let sentences_dir = dir.join("sentences");
    let tags_dir = dir.join("tags");
    let mut names: Vec<String> = std::fs::read_dir(&sentences_dir)
        .map_err(Error::io(&sentences_dir))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".txt"))
        .collect();
    names.sort();
    let mut examples = Vec::new();
    let mut files = Vec::new();
    for name in names {
        let sentence_path = sentences_dir.join(&name);
        let tag_path = tags_dir.join(&name);
        if !tag_path.exists() {
            return Err(Error::Io {
                path: tag_path,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("no tag file for sentences/{name}")),
            });
        }
        let sentence_text = read_utf8(&sentence_path)?;
        let tag_text = read_utf8(&tag_path)?;
        files.push((format!("sentences/{name}"), crate::hash::sha256_hex(sentence_text.as_bytes())));
        files.push((format!("tags/{name}"), crate::hash::sha256_hex(tag_text.as_bytes())));
        let document = name.trim_end_matches(".txt");
        examples.extend(parse_claudette_document(
            document,
            (&sentence_path, &sentence_text),
            (&tag_path, &tag_text),
            rules,
        )?);
    }
    Ok(ClaudetteCorpus { examples, files })
}

/// The examples of one document of the corpus: its sentence file's text and
/// its tag file's text, line-aligned (the paths name errors and origins);
/// [`read_claudette`] reads each pair of files and calls this.
pub fn parse_claudette_document(
    document: &str,
    (sentence_path, sentence_text): (&Path, &str),
    (tag_path, tag_text): (&Path, &str),
    rules: &TagRules<'_>,
) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    let sentences = split_lines(sentence_text);
    let tags = split_lines(tag_text);
    if sentences.len() != tags.len() {
        return Err(Error::LengthMismatch {
            sentences: sentence_path.to_path_buf(),
            sentence_lines: sentences.len(),
            tags: tag_path.to_path_buf(),
            tag_lines: tags.len(),
        });
    }
    for (index, (sentence, tag_line)) in sentences.iter().zip(&tags).enumerate() {
        let line = index + 1;
        let labels = parse_tags(tag_line, rules).map_err(|(label, message)| match label {
            Some(label) => Error::UnknownLabel {
                path: tag_path.to_path_buf(),
                line: line.to_string(),
                label,
                known: rules.labels.iter().cloned().collect::<Vec<_>>().join(", "),
            },
            None => Error::Malformed { path: tag_path.to_path_buf(), line: line.to_string(), message },
        })?;
        let text = normalise_whitespace(sentence);
        if text.is_empty() {
            if !labels.is_empty() {
                return Err(Error::Malformed {
                    path: sentence_path.to_path_buf(),
                    line: line.to_string(),
                    message: "empty sentence carries tags".to_string(),
                });
            }
            continue;
        }
        examples.push(Example {
            id: format!("{document}:{line}"),
            document: document.to_string(),
            text,
            labels,
            article: None,
            paragraph: None,
            title: None,
            chapter: None,
            origin: format!("{}:{line}", sentence_path.display()),
        });
    }
    Ok(examples)
}

/// The labels of one tag line. On error: `(Some(category), _)` for a category
/// that is neither a label nor ignored, `(None, message)` for a malformed tag.
fn parse_tags(line: &str, rules: &TagRules<'_>) -> std::result::Result<Vec<String>, (Option<String>, String)> {
    let mut labels = BTreeSet::new();
    for tag in line.split_whitespace() {
        let split = tag.find(|c: char| c.is_ascii_digit()).unwrap_or(tag.len());
        let (category, level) = tag.split_at(split);
        if category.is_empty() {
            return Err((None, format!("tag `{tag}` has no category")));
        }
        if rules.ignore.iter().any(|ignored| ignored == category) {
            continue;
        }
        if !rules.labels.contains(category) {
            return Err((Some(category.to_string()), String::new()));
        }
        let level: u8 = level
            .parse()
            .map_err(|_| (None, format!("tag `{tag}`: expected a category followed by a level digit, like `ltd2`")))?;
        if rules.levels.contains(&level) {
            labels.insert(category.to_string());
        }
    }
    Ok(labels.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> BTreeSet<String> {
        ["a", "ltd"].iter().map(|s| s.to_string()).collect()
    }

    fn write_corpus(dir: &Path, sentences: &str, tags: &str) {
        std::fs::create_dir_all(dir.join("sentences")).expect("mkdir");
        std::fs::create_dir_all(dir.join("tags")).expect("mkdir");
        std::fs::write(dir.join("sentences/Acme.txt"), sentences).expect("write");
        std::fs::write(dir.join("tags/Acme.txt"), tags).expect("write");
    }

    #[test]
    fn levels_two_and_three_are_positive() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_corpus(dir.path(), "One.\nTwo.\nThree.\nFour.\n", "ltd2\nltd1 countrym\na3 ltd3 pinc2\n\n");
        let labels = labels();
        let ignore = vec!["pinc".to_string(), "countrym".to_string()];
        let rules = TagRules { labels: &labels, levels: &[2, 3], ignore: &ignore };
        let corpus = read_claudette(dir.path(), &rules).expect("read");
        let got: Vec<_> = corpus.examples.iter().map(|e| (e.id.as_str(), e.labels.join(","))).collect();
        assert_eq!(
            got,
            vec![("Acme:1", "ltd".into()), ("Acme:2", "".into()), ("Acme:3", "a,ltd".into()), ("Acme:4", "".into())]
        );
        assert_eq!(corpus.files.len(), 2);
    }

    #[test]
    fn misaligned_files_are_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_corpus(dir.path(), "One.\nTwo.\n", "ltd2\n");
        let labels = labels();
        let rules = TagRules { labels: &labels, levels: &[2, 3], ignore: &[] };
        let err = read_claudette(dir.path(), &rules).expect_err("must fail").to_string();
        assert!(err.contains("Acme.txt has 2 lines") && err.contains("has 1"), "{err}");
    }

    #[test]
    fn unknown_tag_names_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_corpus(dir.path(), "One.\nTwo.\n", "\nxyz2\n");
        let labels = labels();
        let rules = TagRules { labels: &labels, levels: &[2, 3], ignore: &[] };
        let err = read_claudette(dir.path(), &rules).expect_err("must fail").to_string();
        assert!(err.contains("tags/Acme.txt:2") && err.contains("`xyz`"), "{err}");
    }
}
