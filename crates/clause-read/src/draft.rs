//! A draft as the commands and the server hold it while they segment it.

use crate::{Document, Error, Format, read_bytes};

/// A draft's text as the segmenter reads it and, for a file a reader read
/// (Word, HTML, PDF), the map from that text back to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Draft {
    /// Markdown or plain text: the text is the file, and a provision's line
    /// says where it is.
    Text(String),
    /// A file read into text, with its map of locations.
    Read(Document),
}

impl Draft {
    /// Read `bytes` in `format`; `name` names the draft in errors. Text
    /// must be UTF-8 (a byte-order mark is dropped); the other formats go
    /// through their readers.
    pub fn from_bytes(bytes: &[u8], format: Format, name: &str) -> Result<Draft, Error> {
        let document = read_bytes(bytes, format, name)?;
        Ok(match format {
            Format::Text => Draft::Text(document.text),
            _ => Draft::Read(document),
        })
    }

    /// The text the segmenter reads.
    pub fn text(&self) -> &str {
        match self {
            Draft::Text(text) => text,
            Draft::Read(document) => &document.text,
        }
    }

    /// Where the text at byte `offset` is in the original file, for a file
    /// a reader read (`¶ 12`, `p. 3`, an element path); `None` for text.
    pub fn source_at(&self, offset: usize) -> Option<String> {
        match self {
            Draft::Text(_) => None,
            Draft::Read(document) => document.location_at(offset).map(ToString::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_no_sources_and_a_read_file_has_its_locations() {
        let text = Draft::from_bytes(b"\xEF\xBB\xBFArticle 1\nText.\n", Format::Text, "a.md").expect("text");
        assert_eq!((text.text(), text.source_at(0)), ("Article 1\nText.\n", None));
        let page = b"<html><body><p>One.</p><p>Two.</p></body></html>";
        let html = Draft::from_bytes(page, Format::Html, "a.html").expect("html");
        let second = html.text().find("Two").expect("second block");
        assert_eq!(html.source_at(second).as_deref(), Some("body/p[2]"));
        let error = Draft::from_bytes(b"\xff\xfe", Format::Text, "b.txt").expect_err("not UTF-8").to_string();
        assert!(error.contains("b.txt"), "{error}");
    }
}
