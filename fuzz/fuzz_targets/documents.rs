//! The document readers on any bytes, read as a Word .docx, as an HTML page
//! and as a PDF: they never panic, and a document they return is non-empty
//! text whose locations are in order, each at the start of a line.
#![no_main]

use clause_read::{Document, Format, read_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [Format::Docx, Format::Html, Format::Pdf] {
        if let Ok(document) = read_bytes(data, format, "fuzz") {
            check(&document);
        }
    }
});

fn check(document: &Document) {
    let text = &document.text;
    assert!(!text.trim().is_empty(), "a document without text was returned");
    let mut previous = None;
    for (offset, _) in &document.locations {
        assert!(*offset < text.len() && text.is_char_boundary(*offset), "location at {offset} of {} bytes", text.len());
        assert!(*offset == 0 || text.as_bytes().get(offset - 1) == Some(&b'\n'), "location at {offset} not at a line start");
        assert!(previous.is_none_or(|p| p < *offset), "locations out of order at {offset}");
        previous = Some(*offset);
        assert!(document.location_at(*offset).is_some());
    }
}
