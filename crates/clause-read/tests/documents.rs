//! Each fixture (made by real tools: pandoc's Word and HTML output of the
//! project's example drafts, a Word file numbered only by list numbering,
//! LibreOffice's PDF renders of the Word files, one with running headers,
//! footers and footnotes, one in two columns, a scan and an encrypted PDF,
//! hand-written EUR-Lex-style and Terms-of-Service pages; see
//! scripts/make-document-fixtures) is read, segmented, and compared with
//! segmenting the Markdown it was made from: the share of provisions with
//! the same id, and of those with the same text too.

use std::path::{Path, PathBuf};

use clause_read::{Error, Format, Location, read, read_bytes};
use clause_segment::segment;

mod agreement;

use agreement::agreement;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/examples").join(name)
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
        ("cybercrime-chapter.pdf", example("cybercrime-chapter.md")),
        ("cybercrime-chapter-v2.pdf", example("cybercrime-chapter-v2.md")),
        ("cybercrime-chapter-running.pdf", example("cybercrime-chapter.md")),
        ("cybercrime-chapter-two-column.pdf", example("cybercrime-chapter-v2.md")),
    ];
    let mut failures = Vec::new();
    for (name, markdown) in pairs {
        let result = agreement(&fixture(name), &markdown);
        println!(
            "{name:36} {:3} provisions ({:3} read)  same id {:5.1} %  same text {:5.1} %",
            result.provisions,
            result.found,
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

    let unknown = message(read(Path::new("draft.rtf")));
    assert!(unknown.starts_with("draft.rtf: unknown document format (expected .docx, .pdf"), "{unknown}");

    let latin = message(read_bytes(b"<p>caf\xe9</p>", Format::Html, "page.html"));
    assert!(latin.starts_with("page.html: not UTF-8 text (expected UTF-8"), "{latin}");

    let empty = message(read_bytes(b"<html><body><nav>menu</nav></body></html>", Format::Html, "page.html"));
    assert_eq!(empty, "page.html: no text (expected at least one paragraph with text)");
}

#[test]
fn pdf_headers_footers_page_numbers_and_footnotes_stay_out_of_provisions() {
    let text = text_of("cybercrime-chapter-running.pdf");
    let furniture = [
        "A/AC.291/L.15",
        "Page ",
        " of 6",
        // The three footnotes.
        "Several delegations",
        "subsidiarity",
        "One delegation asked",
        "Proposal by the Chair",
        "CRP.7",
    ];
    for provision in segment("d", &text) {
        for piece in furniture {
            assert!(!provision.text.contains(piece), "{piece:?} in {}: {}", provision.id, provision.text);
        }
    }
    // The notes' marks are gone from the sentences they followed.
    assert!(text.contains("legality, necessity and proportionality.\n"), "{text}");
    assert!(text.contains("about the users of those services.\n"), "{text}");
    assert!(text.contains("obtained by less intrusive means.\n"), "{text}");
}

#[test]
fn pdf_words_hyphenated_at_line_ends_are_whole_again() {
    // LibreOffice hyphenated these at line ends (in-formation, commu-nicate,
    // dis-crimination, of-fence); no hyphen is left before a space.
    for name in ["cybercrime-chapter-running.pdf", "cybercrime-chapter-two-column.pdf"] {
        let text = text_of(name);
        let chars: Vec<char> = text.chars().collect();
        let broken = chars.windows(3).any(|w| w[0].is_alphabetic() && w[1] == '-' && w[2].is_whitespace());
        assert!(!broken, "{name}: {text}");
    }
    let text = text_of("cybercrime-chapter-running.pdf");
    assert!(text.contains("represented in a form that an information system can process"), "{text}");
    assert!(text.contains("offers users the means to communicate through"), "{text}");
}

#[test]
fn pdf_two_columns_are_read_column_by_column() {
    let text = text_of("cybercrime-chapter-two-column.pdf");
    // The title and the Chair's note run across the page, above the columns.
    assert!(text.starts_with("# Draft Convention on Countering the Misuse of Information Systems"), "{text}");
    // The left column ends with article 23; the right one starts with
    // article 24, whose first sentence runs down the right column alone.
    assert!(
        text.contains(
            "(e) \"content data\" means electronic data that convey the substance or meaning of a communication.\n\n\
             Article 24 – Respect for human rights\n\n\
             Each State Party shall ensure that the implementation of its obligations under this Chapter is \
             consistent with its obligations under international human rights law."
        ),
        "{text}"
    );
    // A heading that wraps in its column stays one heading.
    assert!(text.contains("\n## Chapter IV – Procedural measures and international cooperation\n"), "{text}");
}

#[test]
fn pdf_locations_are_pages() {
    let path = fixture("cybercrime-chapter.pdf");
    let document = match read(&path) {
        Ok(document) => document,
        Err(e) => panic!("{e}"),
    };
    assert!(document.locations.iter().all(|(_, location)| matches!(location, Location::Page(_))));
    assert_eq!(document.locations.first().map(|(_, l)| l.to_string()).as_deref(), Some("p. 1"));
    // Article 25 starts on page 2 of the render (checked with pdftotext).
    let provisions = segment("d", &document.text);
    let Some(conditions) = provisions.iter().find(|p| p.id == "d:art25.1") else { panic!("no art25.1") };
    assert_eq!(document.location_at(conditions.start), Some(&Location::Page(2)));
    assert_eq!(document.location_at(conditions.start).map(ToString::to_string).as_deref(), Some("p. 2"));
    let last = provisions.last().map_or(0, |p| p.start);
    assert_eq!(document.location_at(last), Some(&Location::Page(6)));
}

#[test]
fn pdf_scans_and_encrypted_files_are_errors_that_say_so() {
    let message = |name: &str| match read(&fixture(name)) {
        Ok(_) => panic!("{name}: expected an error"),
        Err(e) => (e.to_string(), e),
    };
    let (scan, error) = message("scanned.pdf");
    assert!(matches!(error, Error::NoTextLayer { pages: 1, .. }), "{error:?}");
    assert!(scan.contains("scanned.pdf: the PDF has no text layer (a scanned document?)"), "{scan}");
    assert!(scan.ends_with("run it through OCR, e.g. ocrmypdf, first"), "{scan}");
    let (encrypted, error) = message("encrypted.pdf");
    assert!(matches!(error, Error::Encrypted { .. }), "{error:?}");
    assert!(encrypted.contains("encrypted.pdf: the PDF is encrypted and needs a password"), "{encrypted}");
    let broken = match read_bytes(b"%PDF-1.7\nnothing else", Format::Pdf, "broken.pdf") {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    assert!(broken.starts_with("broken.pdf: not a readable PDF file (expected a PDF document)"), "{broken}");
}
