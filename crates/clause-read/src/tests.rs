//! The crate's front door: formats, text files, locations.

use std::path::Path;

use super::*;

#[test]
fn formats_by_extension() {
    let cases = [
        ("draft.md", Some(Format::Text)),
        ("draft.MARKDOWN", Some(Format::Text)),
        ("notes.txt", Some(Format::Text)),
        ("draft.v2.docx", Some(Format::Docx)),
        ("page.HTM", Some(Format::Html)),
        ("page.html", Some(Format::Html)),
        ("draft.PDF", Some(Format::Pdf)),
        ("draft.doc", None),
        ("README", None),
    ];
    for (path, format) in cases {
        assert_eq!(Format::of_path(Path::new(path)), format, "{path}");
    }
}

#[test]
fn text_passes_through_with_line_locations() {
    let document =
        read_bytes(b"\xEF\xBB\xBFArticle 1\n\n1. Text.\n", Format::Text, "d.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(document.text, "Article 1\n\n1. Text.\n");
    assert_eq!(document.locations, [(0, Location::Line(1)), (11, Location::Line(3))]);
    assert_eq!(document.location_at(12), Some(&Location::Line(3)));
    assert_eq!(document.location_at(10), Some(&Location::Line(1)));
    let blank = read_bytes(b" \n\n", Format::Text, "d.md");
    assert!(matches!(blank, Err(Error::NoText { .. })), "{blank:?}");
    let latin = read_bytes(b"caf\xe9", Format::Text, "d.txt");
    assert!(matches!(latin, Err(Error::NotUtf8 { line: 1, byte: 3, .. })), "{latin:?}");
}

#[test]
fn blocks_are_lines_with_blank_lines_between() {
    let mut blocks = Blocks::default();
    blocks.push("  first\n block ", Location::Paragraph(1));
    blocks.push(" \u{a0} ", Location::Paragraph(2));
    blocks.push("second", Location::Paragraph(3));
    let document = blocks.finish();
    assert_eq!(document.text, "first block\n\nsecond\n");
    assert_eq!(document.locations, [(0, Location::Paragraph(1)), (13, Location::Paragraph(3))]);
    assert_eq!(document.location_at(0), Some(&Location::Paragraph(1)));
    assert_eq!(document.location_at(12), Some(&Location::Paragraph(1)));
    assert_eq!(document.location_at(13), Some(&Location::Paragraph(3)));
    assert_eq!(document.location_at(document.text.len()), Some(&Location::Paragraph(3)));
    assert_eq!(document.location_at(document.text.len() + 1), None);
    assert_eq!(Document { text: "x".into(), locations: Vec::new() }.location_at(0), None);
}

#[test]
fn locations_display() {
    assert_eq!(Location::Paragraph(12).to_string(), "¶ 12");
    assert_eq!(Location::Element("body/main/article[2]/p[3]".into()).to_string(), "body/main/article[2]/p[3]");
    assert_eq!(Location::Line(4).to_string(), "line 4");
    assert_eq!(Location::Page(12).to_string(), "p. 12");
}

#[test]
fn roman_numerals() {
    assert_eq!(roman(1).as_deref(), Some("I"));
    assert_eq!(roman(14).as_deref(), Some("XIV"));
    assert_eq!(roman(3999).as_deref(), Some("MMMCMXCIX"));
    assert_eq!(roman(0), None);
    assert_eq!(roman(4000), None);
}

#[test]
fn content_that_contradicts_the_name_is_refused() {
    assert_eq!(Format::of_content(b"%PDF-1.7\n..."), Some(Format::Pdf));
    assert_eq!(Format::of_content(b"PK\x03\x04rest"), Some(Format::Docx));
    assert_eq!(Format::of_content(b"<html>"), None);
    for (bytes, format, needles) in [
        (&b"%PDF-1.4\n"[..], Format::Html, ["named as an HTML page", "the file is a PDF"]),
        (b"PK\x03\x04\0\0", Format::Text, ["named as text", "a Word .docx (zip) file"]),
        (b"\xEF\xBB\xBF%PDF-1.4", Format::Docx, ["named as a Word", "the file is a PDF"]),
    ] {
        let error = read_bytes(bytes, format, "f.x").expect_err("mislabelled").to_string();
        assert!(error.starts_with("f.x: ") && needles.iter().all(|n| error.contains(n)), "{error}");
    }
    let page = vec![b' '; (32 << 20) + 1];
    let error = read_bytes(&page, Format::Html, "big.html").expect_err("too large").to_string();
    assert!(error.contains("big.html: the page is 33554433 bytes, more than 33554432"), "{error}");
}

#[test]
fn media_types_name_their_readers() {
    for (media_type, format) in [
        ("application/pdf", Format::Pdf),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", Format::Docx),
        ("Text/HTML; charset=utf-8", Format::Html),
        ("text/markdown", Format::Text),
        ("text/plain;charset=UTF-8", Format::Text),
    ] {
        assert_eq!(Format::of_media_type(media_type), Some(format), "{media_type}");
    }
    assert_eq!(Format::of_media_type("application/msword"), None);
    assert_eq!(Format::of_media_type(""), None);
}
