//! Each fixture (made by real tools: pandoc's Word and HTML output of the
//! project's example drafts, a Word file numbered only by list numbering,
//! hand-written EUR-Lex-style and Terms-of-Service pages; see
//! scripts/make-document-fixtures) is read, segmented, and compared with
//! segmenting the Markdown it was made from: the share of provisions with
//! the same id, and of those with the same text too.

use std::path::{Path, PathBuf};

use clause_read::{Error, Format, Location, read, read_bytes};
use clause_segment::{Provision, normalise_whitespace, segment};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/examples").join(name)
}

/// A provision's text as a reader sees it: whitespace normalised, and
/// without the Markdown emphasis marks (`*...*`) that the Markdown's
/// segmentation keeps but a rendered document shows as italics. The
/// drafts have no literal asterisks.
fn visible(text: &str) -> String {
    normalise_whitespace(&text.replace('*', ""))
}

/// Shares of the Markdown's provisions that the document reproduces, over
/// the larger of the two counts (so extra provisions count against it too).
struct Agreement {
    provisions: usize,
    same_id: f64,
    same_text: f64,
}

fn agreement(document: &Path, markdown: &Path) -> Agreement {
    let read_text = match read(document) {
        Ok(read) => read.text,
        Err(e) => panic!("{e}"),
    };
    let original = std::fs::read_to_string(markdown).unwrap_or_else(|e| panic!("{}: {e}", markdown.display()));
    let expected = segment("draft", &original);
    let got = segment("draft", &read_text);
    let find = |id: &str| got.iter().find(|p: &&Provision| p.id == id);
    let same_id = expected.iter().filter(|p| find(&p.id).is_some()).count();
    let same_text =
        expected.iter().filter(|p| find(&p.id).is_some_and(|g| visible(&g.text) == visible(&p.text))).count();
    for p in &expected {
        match find(&p.id) {
            None => eprintln!("  {}: missing {}", document.display(), p.id),
            Some(g) if visible(&g.text) != visible(&p.text) => {
                eprintln!(
                    "  {}: {} differs:\n    expected {:?}\n    got      {:?}",
                    document.display(),
                    p.id,
                    p.text,
                    g.text
                )
            }
            Some(_) => {}
        }
    }
    let total = expected.len().max(got.len()).max(1) as f64;
    Agreement { provisions: expected.len(), same_id: same_id as f64 / total, same_text: same_text as f64 / total }
}

/// Every fixture against its original: ids ≥ 98 %, texts ≥ 95 %.
#[test]
fn fixtures_segment_like_their_markdown() {
    let pairs = [
        ("cybercrime-chapter.docx", example("cybercrime-chapter.md")),
        ("cybercrime-chapter.html", example("cybercrime-chapter.md")),
        ("cybercrime-chapter-v2.docx", example("cybercrime-chapter-v2.md")),
        ("cybercrime-chapter-v2.html", example("cybercrime-chapter-v2.md")),
        ("cybercrime-chapter-numbering.docx", example("cybercrime-chapter.md")),
        ("eurlex-style.html", fixture("eurlex-style.md")),
        ("eurlex-oj-style.html", fixture("eurlex-style.md")),
        ("terms-of-service.html", fixture("terms-of-service.md")),
    ];
    let mut failures = Vec::new();
    for (name, markdown) in pairs {
        let result = agreement(&fixture(name), &markdown);
        println!(
            "{name:36} {:3} provisions  same id {:5.1} %  same text {:5.1} %",
            result.provisions,
            100.0 * result.same_id,
            100.0 * result.same_text
        );
        if result.same_id < 0.98 || result.same_text < 0.95 {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "below the bars (ids 98 %, texts 95 %): {failures:?}");
}

fn text_of(name: &str) -> String {
    match read(&fixture(name)) {
        Ok(document) => document.text,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn tracked_changes_comments_footnotes_and_tables() {
    let text = text_of("reviewed-agreement.docx");
    // The insertion is kept, the deletion dropped.
    assert!(text.contains("1. The Parties shall consult one another on the matters in the Annex.\n"), "{text}");
    assert!(!text.contains("cooperate"), "{text}");
    // The comment and the footnote live in their own parts.
    assert!(!text.contains("shorter time limit"), "{text}");
    assert!(!text.contains("Footnote text"), "{text}");
    assert!(text.contains("2. Each Party shall reply within thirty days.\n"), "{text}");
    // Each table cell is a block, row by row.
    assert!(text.contains("Offence\n\nPenalty\n\nLate reply\n\nA written warning\n\nRepeated late reply\n"), "{text}");
    let ids: Vec<String> = segment("d", &text).into_iter().map(|p| p.id).collect();
    assert_eq!(ids, ["d:preamble", "d:art1.1", "d:art1.2", "d:art2"]);
}

#[test]
fn numbering_alone_gives_article_headings_and_paragraph_numbers() {
    let text = text_of("cybercrime-chapter-numbering.docx");
    assert!(text.contains("\n## Chapter IV Procedural measures and international cooperation\n"), "{text}");
    assert!(text.contains("\n### Section 2 Procedural powers\n"), "{text}");
    assert!(text.contains("\n#### Article 42 Secretariat\n"), "{text}");
    let provisions = segment("d", &text);
    let production = provisions.iter().find(|p| p.id == "d:art27.1").map(|p| p.text.as_str());
    assert!(production.is_some_and(|t| t.contains("to require: (a) any person")), "{production:?}");
}

#[test]
fn locations_point_back_into_the_source() {
    let document = match read(&fixture("cybercrime-chapter.docx")) {
        Ok(document) => document,
        Err(e) => panic!("{e}"),
    };
    let at = document.text.find("#### Article 23").unwrap_or_default();
    assert_eq!(document.location_at(at), Some(&Location::Paragraph(6)));
    assert_eq!(document.location_at(at).map(ToString::to_string).as_deref(), Some("¶ 6"));

    let page = match read(&fixture("terms-of-service.html")) {
        Ok(document) => document,
        Err(e) => panic!("{e}"),
    };
    let at = page.text.find("We may remove").unwrap_or_default();
    assert_eq!(page.location_at(at), Some(&Location::Element("body/main/article/section[3]/p".into())));
    // Offsets inside a block belong to it.
    assert_eq!(page.location_at(at + 10), page.location_at(at));
}

#[test]
fn errors_name_the_file_and_what_was_expected() {
    let message = |result: Result<clause_read::Document, Error>| match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let not_zip = message(read_bytes(b"plain text", Format::Docx, "draft.docx"));
    assert!(not_zip.starts_with("draft.docx: not a Word .docx file (expected a zip archive)"), "{not_zip}");

    let missing = message(read(&fixture("no-such-file.docx")));
    assert!(missing.contains("no-such-file.docx: cannot read the file"), "{missing}");

    let unknown = message(read(Path::new("draft.pdf")));
    assert!(unknown.starts_with("draft.pdf: unknown document format (expected .docx"), "{unknown}");

    let latin = message(read_bytes(b"<p>caf\xe9</p>", Format::Html, "page.html"));
    assert!(latin.starts_with("page.html: not UTF-8 text (expected UTF-8"), "{latin}");

    let empty = message(read_bytes(b"<html><body><nav>menu</nav></body></html>", Format::Html, "page.html"));
    assert_eq!(empty, "page.html: no text (expected at least one paragraph with text)");
}
