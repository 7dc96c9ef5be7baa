//! A draft as the commands and the server hold it while they segment it.

use std::path::Path;

use crate::{Document, Error, Format, check_content, read_bytes, utf8};

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
    /// Read a draft file in the format its extension names; a file with
    /// another extension (or none) is read as text, as drafts always were.
    /// This is the one rule by which every command and the dataset builder
    /// read a draft.
    pub fn read(path: &Path) -> Result<Draft, Error> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| Error::Io { file: name.clone(), source })?;
        Draft::from_bytes(&bytes, Format::of_path(path).unwrap_or(Format::Text), &name)
    }

    /// Read `bytes` in `format`; `name` names the draft in errors. Text
    /// must be UTF-8 and is kept as it is, byte-order mark included, so
    /// that the segmenter's byte ranges point into the file; the other
    /// formats go through their readers. A file whose content is another
    /// format than `format` (a PDF named `.txt`) is refused as such.
    pub fn from_bytes(bytes: &[u8], format: Format, name: &str) -> Result<Draft, Error> {
        match format {
            Format::Text => {
                check_content(bytes, format, name)?;
                Ok(Draft::Text(utf8(bytes, name)?.to_string()))
            }
            _ => Ok(Draft::Read(read_bytes(bytes, format, name)?)),
        }
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
        assert_eq!((text.text(), text.source_at(0)), ("\u{feff}Article 1\nText.\n", None));
        let page = b"<html><body><p>One.</p><p>Two.</p></body></html>";
        let html = Draft::from_bytes(page, Format::Html, "a.html").expect("html");
        let second = html.text().find("Two").expect("second block");
        assert_eq!(html.source_at(second).as_deref(), Some("body/p[2]"));
        let error = Draft::from_bytes(b"Title\n\xff\xfe", Format::Text, "b.txt").expect_err("not UTF-8").to_string();
        assert!(error.starts_with("b.txt:2: not valid UTF-8 (byte 6"), "{error}");
        let error = Draft::from_bytes(b"%PDF-1.7\n", Format::Text, "c.txt").expect_err("a PDF").to_string();
        assert!(error.contains("c.txt") && error.contains("PDF"), "{error}");
    }
}
