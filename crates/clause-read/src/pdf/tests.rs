//! Reading PDFs end to end, on small files written here by hand: text
//! operators, fonts, forms, errors and limits. (LibreOffice's renders are
//! read in tests/documents.rs.)

use super::*;
use crate::{Format, Location, read_bytes};

/// A PDF file of `objects` (object 1 the catalog, numbered in order), with
/// a correct cross-reference table and `trailer_extra` in the trailer.
fn pdf_with(objects: &[String], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    let trailer =
        format!("trailer\n<< /Size {} /Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1);
    out.extend_from_slice(trailer.as_bytes());
    out
}

fn stream(dict: &str, data: &str) -> String {
    format!("<< {dict} /Length {} >>\nstream\n{data}\nendstream", data.len())
}

/// One page drawing `content`, with Helvetica as /F1 (and object 6 as
/// /F2) and `resources_extra` added to its resources; `extra` objects
/// follow as 6, 7, ...
fn one_page(content: &str, resources_extra: &str, extra: &[String]) -> Vec<u8> {
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R /F2 6 0 R >> {resources_extra} >> >>"
        ),
        stream("", content),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    objects.extend_from_slice(extra);
    pdf_with(&objects, "")
}

fn text(bytes: &[u8]) -> String {
    match read_bytes(bytes, Format::Pdf, "draft.pdf") {
        Ok(document) => document.text,
        Err(e) => panic!("{e}"),
    }
}

fn error(bytes: &[u8]) -> Error {
    match read_bytes(bytes, Format::Pdf, "draft.pdf") {
        Ok(document) => panic!("expected an error, read {:?}", document.text),
        Err(e) => e,
    }
}

#[test]
fn text_is_read_in_blocks_located_by_page() {
    let bytes = one_page("BT /F1 12 Tf 72 700 Td (Article 1) Tj 0 -14 Td (The Parties agree.) Tj ET", "", &[]);
    let document = match read_bytes(&bytes, Format::Pdf, "draft.pdf") {
        Ok(document) => document,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(document.text, "Article 1\n\nThe Parties agree.\n");
    assert_eq!(document.locations, [(0, Location::Page(1)), (11, Location::Page(1))]);
}

#[test]
fn kerning_is_no_space_and_a_wide_gap_is_one() {
    // Helvetica has no /Widths here: each code advances half the size.
    let bytes = one_page("BT /F1 12 Tf 72 700 Td [(Hel) -20 (lo) -600 (world) 5 (.)] TJ ET", "", &[]);
    assert_eq!(text(&bytes), "Hello world.\n");
}

#[test]
fn text_state_operators_place_text() {
    // T* with a leading, ' and " move to the next line; Tm sets the
    // position outright.
    let content = "BT /F1 12 Tf 14 TL 72 700 Td (The first line runs) Tj T* (on to the next one) Tj \
                   (and the next one,) ' 1 0 (then it ends.) \" 0 Tc 100 Tz 1 0 0 1 72 600 Tm (Apart.) Tj ET";
    assert_eq!(
        text(&one_page(content, "", &[])),
        "The first line runs on to the next one and the next one, then it ends.\n\nApart.\n"
    );
}

#[test]
fn superscript_note_marks_are_dropped() {
    let content = "BT /F1 12 Tf 72 700 Td (Each Party shall act in good faith.) Tj /F1 7 Tf 4 Ts (1) Tj ET";
    assert_eq!(text(&one_page(content, "", &[])), "Each Party shall act in good faith.\n");
}

#[test]
fn text_inside_forms_is_read_and_rotated_text_is_not() {
    let form = stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Matrix [1 0 0 1 0 -100] \
         /Resources << /Font << /F1 5 0 R >> >>",
        "BT /F1 12 Tf 72 600 Td (Inside a form.) Tj ET",
    );
    let content = "BT /F1 12 Tf 72 700 Td (On the page.) Tj ET q /Fm1 Do Q \
                   BT /F1 30 Tf 0 1 -1 0 300 300 Tm (DRAFT) Tj ET";
    let bytes = one_page(content, "/XObject << /Fm1 6 0 R >>", &[form]);
    assert_eq!(text(&bytes), "On the page.\n\nInside a form.\n");
}

#[test]
fn composite_fonts_decode_through_their_unicode_map() {
    let cmap = "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
                /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
                1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n\
                2 beginbfchar\n<0001> <0041>\n<0002> <0062>\nendbfchar\n\
                1 beginbfrange\n<0003> <0004> <0063>\nendbfrange\n\
                endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend";
    let objects = [
        "<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Serif-Bold /Encoding /Identity-H \
         /DescendantFonts [7 0 R] /ToUnicode 8 0 R >>"
            .to_string(),
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+Serif-Bold /DW 500 /W [1 [600 500] 3 4 550] >>"
            .to_string(),
        stream("", cmap),
    ];
    let bytes = one_page("BT /F2 12 Tf 72 700 Td <0001000200030004> Tj ET", "", &objects);
    // A bold face alone on the page is a heading.
    assert_eq!(text(&bytes), "# Abcd\n");
}

#[test]
fn not_a_pdf_is_an_error_naming_the_file() {
    let message = error(b"plain text, not a PDF").to_string();
    assert!(message.starts_with("draft.pdf: not a readable PDF file (expected a PDF document)"), "{message}");
}

#[test]
fn a_page_of_images_without_text_is_a_scan() {
    let image = stream(
        "/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8",
        "\u{0}",
    );
    let bytes = one_page("q 612 0 0 792 0 0 cm /Im1 Do Q", "/XObject << /Im1 6 0 R >>", &[image]);
    let message = error(&bytes).to_string();
    assert!(message.starts_with("draft.pdf: the PDF has no text layer (a scanned document?)"), "{message}");
    assert!(message.contains("ocrmypdf"), "{message}");
    // An inline image counts too.
    let inline = one_page("q 10 0 0 10 0 0 cm BI /W 1 /H 1 /CS /G /BPC 8 ID \u{0} EI Q", "", &[]);
    assert!(matches!(error(&inline), Error::NoTextLayer { pages: 1, .. }));
    // A page with nothing on it is no scan, only empty.
    assert!(matches!(error(&one_page("", "", &[])), Error::NoText { .. }));
}

#[test]
fn a_pdf_that_needs_a_password_is_an_error() {
    // A standard security handler whose password is not the empty one.
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_string(),
        stream("", "garbled"),
    ];
    objects.push(format!(
        "<< /Filter /Standard /V 2 /R 3 /Length 128 /P -4 /O <{}> /U <{}> >>",
        "01".repeat(32),
        "02".repeat(32)
    ));
    let bytes = pdf_with(
        &objects,
        "/Encrypt 5 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>]",
    );
    let message = error(&bytes).to_string();
    assert!(message.starts_with("draft.pdf: the PDF is encrypted and needs a password"), "{message}");
}

#[test]
fn work_on_content_is_capped() {
    let bytes = one_page("BT /F1 12 Tf 72 700 Td (Some text.) Tj ET", "", &[]);
    let pdf = match load(&bytes, "draft.pdf") {
        Ok(pdf) => pdf,
        Err(e) => panic!("{e}"),
    };
    let Some(page) = pdf.page_iter().next() else { panic!("no page") };
    let mut fonts = content::Fonts::new(&pdf);
    let mut budget = content::Budget { operations: 3, glyphs: 100 };
    let result = content::page(&pdf, page, 1, &mut fonts, &mut budget, "draft.pdf");
    assert!(matches!(result, Err(Error::TooComplex { what: "content operations", .. })));
    let mut budget = content::Budget { operations: 100, glyphs: 4 };
    let result = content::page(&pdf, page, 1, &mut fonts, &mut budget, "draft.pdf");
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.starts_with("draft.pdf: the PDF has more than 5000000 characters"), "{message}");
}

#[test]
fn forms_that_draw_themselves_stop() {
    // A form that draws itself: the depth limit ends the recursion.
    let form = stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /Fm1 6 0 R >> /Font << /F1 5 0 R >> >>",
        "BT /F1 12 Tf 72 700 Td (Again.) Tj ET /Fm1 Do",
    );
    let bytes = one_page("/Fm1 Do", "/XObject << /Fm1 6 0 R >>", &[form]);
    assert_eq!(text(&bytes), "Again.\n");
}
