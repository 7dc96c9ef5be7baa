//! Word documents built in memory: numbering, styles, tracked changes,
//! tables, what is left out, and errors.

use std::io::Write;

use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::{Document, Error, Format, Location, read_bytes};

const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

/// A zip archive of the given parts, deflated as Word writes them.
fn archive(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in parts {
        zip.start_file(*name, options).expect("start a zip entry");
        zip.write_all(content.as_bytes()).expect("write a zip entry");
    }
    zip.finish().expect("finish the archive").into_inner()
}

/// A .docx whose body is `body`, with optional styles and numbering.
fn docx(body: &str, styles: &str, numbering: &str) -> Vec<u8> {
    let document =
        format!(r#"<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{body}</w:body></w:document>"#);
    let mut parts = vec![("word/document.xml", document.as_str())];
    let styles = format!("<w:styles {W}>{styles}</w:styles>");
    let numbering = format!("<w:numbering {W}>{numbering}</w:numbering>");
    parts.push(("word/styles.xml", &styles));
    parts.push(("word/numbering.xml", &numbering));
    archive(&parts)
}

fn read(bytes: &[u8]) -> Document {
    read_bytes(bytes, Format::Docx, "test.docx").unwrap_or_else(|e| panic!("{e}"))
}

fn lines(body: &str, styles: &str, numbering: &str) -> Vec<String> {
    read(&docx(body, styles, numbering)).text.lines().filter(|l| !l.is_empty()).map(String::from).collect()
}

/// A paragraph with text, and optionally a list number (numId, ilvl).
fn p(text: &str, num: Option<(u32, u32)>) -> String {
    let numbering = num.map_or(String::new(), |(id, level)| {
        format!(r#"<w:pPr><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="{id}"/></w:numPr></w:pPr>"#)
    });
    format!(r#"<w:p>{numbering}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

fn level(ilvl: u32, start: u32, format: &str, text: &str, extra: &str) -> String {
    format!(
        r#"<w:lvl w:ilvl="{ilvl}"><w:start w:val="{start}"/><w:numFmt w:val="{format}"/>{extra}<w:lvlText w:val="{text}"/></w:lvl>"#
    )
}

/// Abstract list 1: "Article %1", "%2.", "(%3)"; instance 1 draws on it.
fn legal_list() -> String {
    format!(
        r#"<w:abstractNum w:abstractNumId="1">{}{}{}</w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num>"#,
        level(0, 1, "decimal", "Article %1", ""),
        level(1, 1, "decimal", "%2.", ""),
        level(2, 1, "lowerLetter", "(%3)", "")
    )
}

#[test]
fn list_numbers_restart_under_each_article() {
    let body = [
        p("Scope", Some((1, 0))),
        p("First.", Some((1, 1))),
        p("Means:", Some((1, 1))),
        p("one;", Some((1, 2))),
        p("two.", Some((1, 2))),
        p("Definitions", Some((1, 0))),
        p("Only.", Some((1, 1))),
        p("item", Some((1, 2))),
    ]
    .concat();
    assert_eq!(
        lines(&body, "", &legal_list()),
        [
            "Article 1 Scope",
            "1. First.",
            "2. Means:",
            "(a) one;",
            "(b) two.",
            "Article 2 Definitions",
            "1. Only.",
            "(a) item"
        ]
    );
}

#[test]
fn instances_share_counters_unless_they_override_the_start() {
    let numbering = format!(
        r#"{}<w:num w:numId="2"><w:abstractNumId w:val="1"/><w:lvlOverride w:ilvl="1"><w:startOverride w:val="5"/></w:lvlOverride></w:num><w:num w:numId="3"><w:abstractNumId w:val="1"/></w:num>"#,
        legal_list()
    );
    let body =
        [p("a", Some((1, 1))), p("b", Some((1, 1))), p("c", Some((2, 1))), p("d", Some((2, 1))), p("e", Some((3, 1)))];
    // Instance 2 restarts level 2 at 5; instance 3, without an override,
    // continues the shared list.
    assert_eq!(lines(&body.concat(), "", &numbering), ["1. a", "2. b", "5. c", "6. d", "7. e"]);
}

#[test]
fn level_overrides_and_formats() {
    let formats = [
        ("lowerLetter", 27, "aa"),
        ("upperLetter", 2, "B"),
        ("lowerRoman", 4, "iv"),
        ("upperRoman", 9, "IX"),
        ("decimalZero", 7, "07"),
        ("ordinal", 3, "3"),
        ("none", 3, ""),
    ];
    for (format, start, shown) in formats {
        let numbering = format!(
            r#"<w:abstractNum w:abstractNumId="4">{}</w:abstractNum><w:num w:numId="4"><w:abstractNumId w:val="4"/></w:num>"#,
            level(0, start, format, "%1)", "")
        );
        assert_eq!(lines(&p("text", Some((4, 0))), "", &numbering), [format!("{shown}) text")], "{format}");
    }
    // A bullet shows no text; a whole level redefined by an instance.
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="5">{}</w:abstractNum><w:num w:numId="5"><w:abstractNumId w:val="5"/></w:num><w:num w:numId="6"><w:abstractNumId w:val="5"/><w:lvlOverride w:ilvl="0">{}</w:lvlOverride></w:num>"#,
        level(0, 1, "bullet", "\u{F0B7}", ""),
        level(0, 3, "upperRoman", "Part %1", r#"<w:suff w:val="nothing"/>"#)
    );
    assert_eq!(
        lines(&[p("point", Some((5, 0))), p(" One", Some((6, 0)))].concat(), "", &numbering),
        ["point", "Part III One"]
    );
}

#[test]
fn restart_rules_and_legal_numbering() {
    // Articles numbered through sections (lvlRestart 0); paragraphs shown
    // as legal numbers (isLgl) "II.1".
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="7">{}{}{}</w:abstractNum><w:num w:numId="7"><w:abstractNumId w:val="7"/></w:num>"#,
        level(0, 1, "upperRoman", "Section %1", ""),
        level(1, 1, "decimal", "Article %2", r#"<w:lvlRestart w:val="0"/>"#),
        level(2, 1, "decimal", "%1.%3", r#"<w:isLgl/>"#)
    );
    let body = [
        p("A", Some((7, 0))),
        p("x", Some((7, 1))),
        p("y", Some((7, 2))),
        p("B", Some((7, 0))),
        p("z", Some((7, 1))),
        p("w", Some((7, 2))),
    ];
    assert_eq!(
        lines(&body.concat(), "", &numbering),
        ["Section I A", "Article 1 x", "1.1 y", "Section II B", "Article 2 z", "2.1 w"]
    );
}

#[test]
fn numbering_and_headings_through_styles() {
    let styles = r#"
        <w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
        <w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="berschrift3"><w:name w:val="heading 3"/></w:style>
        <w:style w:type="paragraph" w:styleId="ArticleHeading"><w:name w:val="Article Heading"/><w:basedOn w:val="berschrift3"/><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="Para"><w:basedOn w:val="Normal"/><w:pPr><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/></w:numPr></w:pPr></w:style>
        <w:style w:type="paragraph" w:styleId="Unnumbered"><w:basedOn w:val="Para"/><w:pPr><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr></w:style>
        <w:style w:type="numbering" w:styleId="LegalList"><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr></w:style>"#;
    let styled = |style: &str, text: &str| {
        format!(r#"<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#)
    };
    let body = [
        styled("Heading1", "Convention"),
        styled("ArticleHeading", "Scope"),
        styled("Para", "It applies."),
        styled("Unnumbered", "Note."),
        // The paragraph's own numPr overrides its style's.
        r#"<w:p><w:pPr><w:pStyle w:val="Para"/><w:numPr><w:numId w:val="0"/></w:numPr></w:pPr><w:r><w:t>Plain.</w:t></w:r></w:p>"#.to_string(),
        styled("ArticleHeading", "Terms"),
        p("body", None),
    ];
    // Level 0 is found through the level's w:pStyle when the style sets none.
    let numbering = format!(
        r#"<w:abstractNum w:abstractNumId="1">{}{}</w:abstractNum><w:abstractNum w:abstractNumId="2"><w:numStyleLink w:val="LegalList"/></w:abstractNum><w:num w:numId="1"><w:abstractNumId w:val="1"/></w:num><w:num w:numId="9"><w:abstractNumId w:val="2"/></w:num>"#,
        level(0, 1, "decimal", "Article %1", r#"<w:pStyle w:val="ArticleHeading"/>"#),
        level(1, 1, "decimal", "%2.", "")
    );
    assert_eq!(
        lines(&[body.concat(), p("linked", Some((9, 1)))].concat(), styles, &numbering),
        [
            "# Convention",
            "### Article 1 Scope",
            "1. It applies.",
            "Note.",
            "Plain.",
            "### Article 2 Terms",
            "body",
            "1. linked"
        ]
    );
}

#[test]
fn tracked_changes_read_as_accepted() {
    let body = r#"
        <w:p><w:r><w:t xml:space="preserve">The Parties </w:t></w:r>
          <w:del w:id="1" w:author="A"><w:r><w:delText>shall</w:delText></w:r></w:del>
          <w:ins w:id="2" w:author="A"><w:r><w:t>may</w:t></w:r></w:ins>
          <w:r><w:t xml:space="preserve"> act</w:t></w:r>
          <w:moveFrom w:id="3" w:author="A"><w:r><w:t xml:space="preserve"> promptly</w:t></w:r></w:moveFrom>
          <w:moveTo w:id="4" w:author="A"><w:r><w:t xml:space="preserve"> jointly</w:t></w:r></w:moveTo><w:r><w:t>.</w:t></w:r></w:p>
        <w:p><w:pPr><w:pPrChange w:id="5" w:author="A"><w:pPr><w:numPr><w:ilvl w:val="1"/><w:numId w:val="1"/></w:numPr></w:pPr></w:pPrChange>
          <w:rPr><w:del w:id="6" w:author="A"/></w:rPr></w:pPr><w:r><w:t xml:space="preserve">Joined </w:t></w:r></w:p>
        <w:p><w:r><w:t>to the next paragraph.</w:t></w:r></w:p>"#;
    assert_eq!(lines(body, "", &legal_list()), ["The Parties may act jointly.", "Joined to the next paragraph."]);
    let document = read(&docx(body, "", ""));
    // The joined paragraph is located at its first part.
    assert_eq!(
        document.locations.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
        [Location::Paragraph(1), Location::Paragraph(2)]
    );
}

#[test]
fn tables_read_row_by_row_each_cell_a_block() {
    let cell = |text: &str| format!("<w:tc><w:tcPr/>{}</w:tc>", p(text, None));
    let nested = format!("<w:tbl><w:tr>{}{}</w:tr></w:tbl>", cell("inner 1"), cell("inner 2"));
    let body = format!(
        r#"{}<w:tbl><w:tr>{}{}</w:tr><w:tr><w:tc>{}{}</w:tc><w:tc>{}{nested}{}</w:tc></w:tr></w:tbl>{}"#,
        p("Before.", None),
        cell("Offence"),
        cell("Penalty"),
        p("Two", None),
        p("paragraphs", None),
        p("outer", None),
        p("after", None),
        p("After.", None)
    );
    assert_eq!(
        lines(&body, "", ""),
        ["Before.", "Offence", "Penalty", "Two paragraphs", "outer", "inner 1", "inner 2", "after", "After."]
    );
    let document = read(&docx(&body, "", ""));
    let at = document.text.find("Two paragraphs").unwrap_or_default();
    assert_eq!(document.location_at(at), Some(&Location::Paragraph(4)));
}

#[test]
fn what_is_not_text_is_left_out() {
    let body = r#"
        <w:p><w:r><w:t>Each</w:t></w:r><w:r><w:tab/><w:t>Party</w:t><w:br/><w:t>shall</w:t></w:r>
          <w:r><w:rPr><w:vanish/></w:rPr><w:t>hidden</w:t></w:r>
          <w:r><w:rPr><w:vanish w:val="false"/></w:rPr><w:t xml:space="preserve"> act</w:t></w:r>
          <w:r><w:rPr><w:rStyle w:val="FootnoteReference"/></w:rPr><w:footnoteReference w:id="1"/></w:r>
          <w:commentRangeStart w:id="0"/><w:r><w:commentReference w:id="0"/></w:r>
          <w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>
          <w:r><w:drawing><wp:inline><a:graphic><w:txbxContent><w:p><w:r><w:t>box</w:t></w:r></w:p></w:txbxContent></a:graphic></wp:inline></w:drawing></w:r>
          <w:r><w:t xml:space="preserve"> now &amp; then&#x2014;</w:t><w:noBreakHyphen/><w:t>x</w:t></w:r></w:p>
        <w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr></w:p>
        <w:sectPr><w:headerReference w:type="default" r:id="rId1"/></w:sectPr>"#;
    assert_eq!(lines(body, "", ""), ["Each Party shall act now & then—-x"]);
}

#[test]
fn the_body_part_named_by_the_package_relationships() {
    let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="/word/document2.xml"/></Relationships>"#;
    let doc_rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering" Target="../word/lists.xml"/></Relationships>"#;
    let body = format!("<w:document {W}><w:body>{}</w:body></w:document>", p("Scope", Some((1, 0))));
    let numbering = format!("<w:numbering {W}>{}</w:numbering>", legal_list());
    let bytes = archive(&[
        ("_rels/.rels", rels),
        ("word/_rels/document2.xml.rels", doc_rels),
        ("word/document2.xml", &body),
        ("word/lists.xml", &numbering),
    ]);
    assert_eq!(read(&bytes).text, "Article 1 Scope\n");
}

fn error(bytes: &[u8]) -> Error {
    match read_bytes(bytes, Format::Docx, "draft.docx") {
        Ok(document) => panic!("expected an error, read {document:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors() {
    assert!(matches!(error(b"PK\x03\x04 not really"), Error::NotZip { .. }));

    let e = error(&archive(&[("content.xml", "<office/>")]));
    assert_eq!(e.to_string(), "draft.docx: not a Word document (expected a Word body in word/document.xml)");

    // A spreadsheet's main part is not a Word body.
    let e = error(&archive(&[("word/document.xml", "<workbook/>")]));
    assert!(matches!(e, Error::NotWord { .. }), "{e}");

    let e = error(&archive(&[("word/document.xml", &format!("<w:document {W}><w:body><w:p></w:body></w:document>"))]));
    let message = e.to_string();
    assert!(message.starts_with("draft.docx: malformed XML in word/document.xml at byte "), "{message}");

    let broken_styles =
        [("word/document.xml", format!("<w:document {W}/>")), ("word/styles.xml", "<w:styles".to_string())];
    let e = error(&archive(&broken_styles.iter().map(|(n, c)| (*n, c.as_str())).collect::<Vec<_>>()));
    assert!(e.to_string().contains("malformed XML in word/styles.xml"), "{e}");

    let e = error(&docx(&p("  ", None), "", ""));
    assert_eq!(e.to_string(), "draft.docx: no text (expected at least one paragraph with text)");
}

#[test]
fn a_part_too_large_to_unpack_is_refused() {
    let bytes = docx(&p(&"x".repeat(2000), None), "", "");
    assert!(super::read_limited(&bytes, "draft.docx", 4096).is_ok());
    match super::read_limited(&bytes, "draft.docx", 1000) {
        Err(e @ Error::TooLarge { .. }) => assert_eq!(
            e.to_string(),
            "draft.docx: word/document.xml unpacks to more than 1000 bytes (expected a document part of reasonable size)"
        ),
        other => panic!("{other:?}"),
    }
}
