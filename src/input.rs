//! What `classify`, `report` and `diff` read: drafts segmented into
//! provisions, or the rows of a table, as one list of items in input order.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clause_data::records::{RecordColumns, read_records};
use clause_data::segment::input::Unit;
use clause_data::segment::{Provision, document_name_from_path, segment};
use clause_infer::input::Passage;

/// One text to classify, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Provision id, the row's `id` column, or `<table>:<row>`.
    pub id: String,
    /// Document (draft or table file) name.
    pub document: String,
    /// Article number, for provisions of drafts.
    pub article: Option<String>,
    /// Paragraph number, for provisions of drafts.
    pub paragraph: Option<String>,
    /// Article title, or the row's title column.
    pub title: Option<String>,
    /// Division headings above the article, for provisions of drafts.
    pub chapter: Option<String>,
    /// The text.
    pub text: String,
    /// Byte range in the source draft (for a Word, HTML or PDF draft, in the
    /// text read from it).
    pub range: Option<(usize, usize)>,
    /// First line in the source draft (for a Word, HTML or PDF draft, in the
    /// text read from it).
    pub line: Option<usize>,
    /// Where the provision is in a Word, HTML or PDF original (`¶ 12`, an
    /// element path, `p. 3`); `None` for text drafts and tables.
    pub source: Option<String>,
    /// For a sentence cut from a draft's provision (for a model trained on
    /// sentences, [`Unit::Sentence`]), the provision's id.
    pub provision: Option<String>,
    /// Values of the carried table columns, in [`Inputs::carried`] order.
    pub carried: Vec<serde_json::Value>,
}

impl Item {
    /// The text with its headings, as a model reads it.
    pub fn passage(&self) -> Passage<'_> {
        Passage { text: &self.text, title: self.title.as_deref(), chapter: self.chapter.as_deref() }
    }
}

/// Every item of every input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    /// Names of the table columns carried through (union over tables).
    pub carried: Vec<String>,
    /// Items in input order.
    pub items: Vec<Item>,
}

/// Table columns to read.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The text column.
    pub text: &'a str,
    /// The title column, if any.
    pub title: Option<&'a str>,
}

/// The kinds of input, by extension.
enum Kind {
    Draft,
    Table,
}

fn kind(path: &Path) -> anyhow::Result<Kind> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    // Which files are drafts is clause-read's to say (`Format::of_path`).
    if clause_read::Format::of_path(path).is_some() {
        return Ok(Kind::Draft);
    }
    match extension.as_str() {
        "csv" | "jsonl" | "ndjson" | "parquet" => Ok(Kind::Table),
        _ => bail!(
            "{}: unknown input format `{}`: expected a draft (.md, .txt, .docx, .html, .pdf), a table (.csv, .jsonl, .parquet), \
             a directory or `-`",
            path.display(),
            if extension.is_empty() { "(no extension)".to_string() } else { format!(".{extension}") }
        ),
    }
}

/// Read every input: `-` (a draft on stdin), a directory (its drafts,
/// recursively, in path order), a draft or a table. Drafts are cut into
/// provisions, or, for a model trained on sentences (`unit`), into the
/// sentences of each provision; table rows are taken as they are. An input
/// that yields nothing is an error naming it.
pub fn read_inputs(paths: &[PathBuf], fields: Fields<'_>, unit: Unit) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).context("reading stdin")?;
            let text = String::from_utf8(bytes).map_err(|err| {
                let byte = err.utf8_error().valid_up_to();
                let line = err.as_bytes()[..byte].iter().filter(|&&b| b == b'\n').count() + 1;
                anyhow::anyhow!("stdin: not UTF-8: invalid byte at line {line} (byte {byte})")
            })?;
            push_draft(&mut inputs, "stdin", &Draft::Text(text), Path::new("stdin"), unit)?;
        } else if path.is_dir() {
            let drafts = drafts_under(path)?;
            if drafts.is_empty() {
                bail!("{}: no drafts (.md, .txt, .docx, .html, .pdf) in this directory", path.display());
            }
            for draft in drafts {
                read_draft(&mut inputs, &draft, unit)?;
            }
        } else {
            match kind(path)? {
                Kind::Draft => read_draft(&mut inputs, path, unit)?,
                Kind::Table => read_table(&mut inputs, path, fields)?,
            }
        }
    }
    Ok(inputs)
}

/// A draft's text and, for a file a reader read, its map back to the file.
pub use clause_read::Draft;

fn read_draft(inputs: &mut Inputs, path: &Path, unit: Unit) -> anyhow::Result<()> {
    let draft = Draft::read(path)?;
    push_draft(inputs, &document_name_from_path(path), &draft, path, unit)
}

fn push_draft(inputs: &mut Inputs, document: &str, draft: &Draft, path: &Path, unit: Unit) -> anyhow::Result<()> {
    let provisions = segment(document, draft.text());
    if provisions.is_empty() {
        bail!("{}: no provisions found: the draft is empty or blank", path.display());
    }
    let width = inputs.carried.len();
    for provision in provisions {
        match unit {
            Unit::Provision => {
                let source = draft.source_at(provision.start);
                inputs.items.push(Item { source, ..item_of(provision, width) });
            }
            Unit::Sentence => inputs.items.extend(sentence_items(&provision, draft, width)),
        }
    }
    Ok(())
}

/// The sentences of a provision as items of their own, for a model trained
/// on sentences ([`Provision::sentences`]), each naming the provision.
fn sentence_items(provision: &Provision, draft: &Draft, carried: usize) -> Vec<Item> {
    provision
        .sentences(draft.text())
        .into_iter()
        .map(|sentence| Item {
            source: draft.source_at(sentence.start),
            provision: Some(provision.id.clone()),
            ..item_of(sentence, carried)
        })
        .collect()
}

fn item_of(provision: Provision, carried: usize) -> Item {
    Item {
        id: provision.id,
        document: provision.document,
        article: provision.article,
        paragraph: provision.paragraph,
        title: provision.title,
        chapter: provision.chapter,
        text: provision.text,
        range: Some((provision.start, provision.end)),
        line: Some(provision.line),
        source: None,
        provision: None,
        carried: vec![serde_json::Value::Null; carried],
    }
}

fn read_table(inputs: &mut Inputs, path: &Path, fields: Fields<'_>) -> anyhow::Result<()> {
    let table = read_records(path, RecordColumns { text: fields.text, title: fields.title, id: "id" })?;
    if table.rows.is_empty() {
        bail!("{}: the table has no rows", path.display());
    }
    // Columns are the union over tables; earlier items get nulls for new ones.
    let positions: Vec<usize> = table
        .carried
        .iter()
        .map(|name| match inputs.carried.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                inputs.carried.push(name.clone());
                inputs.carried.len() - 1
            }
        })
        .collect();
    let width = inputs.carried.len();
    for item in &mut inputs.items {
        item.carried.resize(width, serde_json::Value::Null);
    }
    let document = document_name_from_path(path);
    for row in table.rows {
        let mut carried = vec![serde_json::Value::Null; width];
        for (value, &at) in row.carried.into_iter().zip(&positions) {
            carried[at] = value;
        }
        inputs.items.push(Item {
            id: row.id.unwrap_or_else(|| format!("{document}:{}", row.row)),
            document: document.clone(),
            article: None,
            paragraph: None,
            title: row.title,
            chapter: None,
            text: row.text,
            range: None,
            line: None,
            source: None,
            provision: None,
            carried,
        });
    }
    Ok(())
}

/// The drafts (text, Word, HTML) under `dir`, sorted by path; hidden
/// entries are skipped.
fn drafts_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            std::fs::read_dir(&current).with_context(|| format!("reading directory {}", current.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading directory {}", current.display()))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if matches!(kind(&path), Ok(Kind::Draft)) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields<'static> = Fields { text: "text", title: None };

    #[test]
    fn drafts_and_tables_in_input_order_with_carried_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let draft = dir.path().join("d.md");
        std::fs::write(&draft, "Article 1\n\n1. The Party shall act.\n2. It may refuse.\n").expect("write");
        let table = dir.path().join("t.jsonl");
        std::fs::write(&table, "{\"text\": \"Hello there\", \"page\": 4}\n{\"id\": \"z\", \"text\": \"Bye\"}\n")
            .expect("write");
        let inputs = read_inputs(&[draft, table], FIELDS, Unit::Provision).expect("read");
        let ids: Vec<&str> = inputs.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["d:art1.1", "d:art1.2", "t:1", "z"]);
        assert_eq!(inputs.carried, ["page"]);
        assert_eq!(inputs.items[0].carried, [serde_json::Value::Null]);
        assert_eq!(inputs.items[2].carried, [serde_json::json!(4)]);
        assert_eq!(inputs.items[0].range.map(|(s, _)| s), Some(11));
    }

    #[test]
    fn a_sentence_model_reads_each_paragraph_sentence_by_sentence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("terms.md");
        let text = "# Terms\n\nWe may change these terms at any time, without\nnotice. You accept the new terms \
                    if you keep using the service.\n\n## 2. Content\n\nWe may remove any content that we \
                    consider inappropriate.\n";
        std::fs::write(&path, text).expect("write");
        let provisions = read_inputs(std::slice::from_ref(&path), FIELDS, Unit::Provision).expect("read");
        assert_eq!(provisions.items.len(), 1, "one provision: {:?}", provisions.items);
        let inputs = read_inputs(&[path], FIELDS, Unit::Sentence).expect("read");
        let ids: Vec<&str> = inputs.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["terms:preamble.s1", "terms:preamble.s2", "terms:preamble.s3"]);
        let texts: Vec<&str> = inputs.items.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "We may change these terms at any time, without notice.",
                "You accept the new terms if you keep using the service.",
                "We may remove any content that we consider inappropriate.",
            ]
        );
        for item in &inputs.items {
            assert_eq!(item.provision.as_deref(), Some("terms:preamble"));
            let (start, end) = item.range.expect("range");
            assert_eq!(clause_data::segment::normalise_whitespace(&text[start..end]), item.text);
        }
        let lines: Vec<Option<usize>> = inputs.items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [Some(3), Some(4), Some(8)]);
    }

    #[test]
    fn directories_are_searched_recursively_in_path_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("b/c")).expect("mkdir");
        std::fs::write(dir.path().join("b/c/z.txt"), "Article 2\nText two.\n").expect("write");
        std::fs::write(dir.path().join("a.md"), "Article 1\nText one.\n").expect("write");
        std::fs::write(dir.path().join("notes.rtf"), "x").expect("write");
        std::fs::write(dir.path().join(".hidden.md"), "Article 9\nNo.\n").expect("write");
        let inputs = read_inputs(&[dir.path().to_path_buf()], FIELDS, Unit::Provision).expect("read");
        let ids: Vec<&str> = inputs.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["a:art1", "z:art2"]);
    }

    #[test]
    fn bad_inputs_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.md");
        std::fs::write(&empty, "  \n\n").expect("write");
        let err = read_inputs(std::slice::from_ref(&empty), FIELDS, Unit::Provision).expect_err("empty").to_string();
        assert!(err.contains("empty.md") && err.contains("no provisions"), "{err}");
        let rtf = dir.path().join("draft.rtf");
        std::fs::write(&rtf, "x").expect("write");
        let err = read_inputs(&[rtf], FIELDS, Unit::Provision).expect_err("rtf").to_string();
        assert!(err.contains("draft.rtf") && err.contains("unknown input format `.rtf`"), "{err}");
        let docx = dir.path().join("draft.docx");
        std::fs::write(&docx, "x").expect("write");
        let err = read_inputs(&[docx], FIELDS, Unit::Provision).expect_err("docx").to_string();
        assert!(err.contains("draft.docx") && err.contains("not a Word .docx file"), "{err}");
        let latin1 = dir.path().join("l.txt");
        std::fs::write(&latin1, b"Article 1\nCaf\xe9\n").expect("write");
        let err = format!("{:#}", read_inputs(&[latin1], FIELDS, Unit::Provision).expect_err("latin1"));
        assert!(err.contains("l.txt:2") && err.contains("UTF-8"), "{err}");
        let err =
            read_inputs(&[dir.path().join("missing.md")], FIELDS, Unit::Provision).expect_err("missing").to_string();
        assert!(err.contains("missing.md"), "{err}");
        let nothing = dir.path().join("nothing");
        std::fs::create_dir(&nothing).expect("mkdir");
        let err = read_inputs(&[nothing], FIELDS, Unit::Provision).expect_err("no drafts").to_string();
        assert!(err.contains("no drafts"), "{err}");
    }
}
