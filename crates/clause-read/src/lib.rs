//! Readers for drafts as they are published: Word `.docx`, PDF and HTML
//! pages, besides the Markdown and plain text the segmenter reads directly.
//!
//! A reader turns a file into the kind of text `clause_segment::segment`
//! reads: one block (a paragraph, a heading, a list item, a table cell) per
//! line, a blank line between blocks, headings as Markdown `#` lines, and
//! the numbers Word or the browser would display (`Article 5`, `1.`, `(a)`)
//! written out as text. The segmenter does the rest. A PDF has no
//! paragraphs or headings, only characters placed on pages: its reader
//! rebuilds lines, columns and paragraphs from their positions, leaves out
//! running headers and footers, page numbers and footnotes, and rejoins
//! words hyphenated at line ends (see the `pdf` module). A [`Document`] also
//! keeps a map from the produced text back to the source ([`Location`]), so
//! a provision can be found again in the original file.
//!
//! The readers never panic, whatever the input: what cannot be read is an
//! [`Error`] that names the file and what was expected.

use std::fmt;
use std::path::Path;

mod docx;
mod draft;
mod error;
mod html;
mod pdf;
#[cfg(test)]
mod tests;

pub use draft::Draft;
pub use error::Error;

/// The most bytes one part of a `.docx` archive, or one stream of a PDF,
/// may unpack to (64 MiB). A long treaty's `word/document.xml` is a few
/// MiB, a PDF page's content a few dozen KiB; the limit stops a zip or
/// deflate bomb from exhausting memory.
pub const MAX_PART_BYTES: u64 = 64 << 20;

/// The formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Markdown or plain text, passed through unchanged.
    Text,
    /// A Word (Office Open XML) document.
    Docx,
    /// An HTML page.
    Html,
    /// A PDF document with a text layer.
    Pdf,
}

impl Format {
    /// The format a file's extension names (case-insensitive): `md`,
    /// `markdown` and `txt` are text, `docx` is Word, `html` and `htm` are
    /// HTML, `pdf` is PDF. Anything else is `None`.
    pub fn of_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "md" | "markdown" | "txt" => Some(Format::Text),
            "docx" => Some(Format::Docx),
            "html" | "htm" => Some(Format::Html),
            "pdf" => Some(Format::Pdf),
            _ => None,
        }
    }

    /// The format a media type names (`application/pdf`; parameters such as
    /// `; charset=utf-8` are ignored), as a server receives it with a
    /// document. Anything else is `None`.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        let essence = media_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match essence.as_str() {
            "text/plain" | "text/markdown" | "text/x-markdown" => Some(Format::Text),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some(Format::Docx),
            "text/html" | "application/xhtml+xml" => Some(Format::Html),
            "application/pdf" => Some(Format::Pdf),
            _ => None,
        }
    }

    /// The format the first bytes of a file show, for the two that carry a
    /// signature: `%PDF-` (PDF) and a zip archive's `PK\x03\x04` (a Word
    /// file). Text and HTML have none (`None`).
    pub fn of_content(bytes: &[u8]) -> Option<Format> {
        let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        if start.starts_with(b"%PDF-") {
            Some(Format::Pdf)
        } else if start.starts_with(b"PK\x03\x04") {
            Some(Format::Docx)
        } else {
            None
        }
    }

    /// The format as a message names it.
    fn described(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Docx => "a Word .docx (zip) file",
            Format::Html => "an HTML page",
            Format::Pdf => "a PDF",
        }
    }
}

/// Refuse a file whose content is another format than its name says (a PDF
/// named `.html`, a Word file named `.txt`), which its reader would
/// otherwise report as damaged.
pub fn check_content(bytes: &[u8], format: Format, name: &str) -> Result<(), Error> {
    match Format::of_content(bytes) {
        Some(actual) if actual != format => {
            Err(Error::Mislabelled { file: name.to_string(), claimed: format.described(), actual: actual.described() })
        }
        _ => Ok(()),
    }
}

/// Where a block of a [`Document`]'s text came from in the source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A paragraph of a Word document: 1-based, counting every paragraph of
    /// the body in order, table cells' paragraphs included.
    Paragraph(usize),
    /// An HTML element, as the path of element names from `body` down, each
    /// with its position among siblings of the same name when it is not the
    /// first (`body/main/article[2]/p[3]`).
    Element(String),
    /// A line of a text file, 1-based.
    Line(usize),
    /// A page of a PDF, 1-based (the page's position in the file, not the
    /// number printed on it).
    Page(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Paragraph(index) => write!(f, "¶ {index}"),
            Location::Element(path) => f.write_str(path),
            Location::Line(line) => write!(f, "line {line}"),
            Location::Page(page) => write!(f, "p. {page}"),
        }
    }
}

/// A document read into the text the segmenter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// One block per line, a blank line between blocks (for a text file,
    /// the file itself, less any byte-order mark).
    pub text: String,
    /// Sorted by byte offset into `text`: where the block that starts at
    /// that offset came from.
    pub locations: Vec<(usize, Location)>,
}

impl Document {
    /// Where the text at byte `offset` of [`Document::text`] came from: the
    /// location of the last block that starts at or before it. `None` before
    /// the first block or past the end of the text.
    pub fn location_at(&self, offset: usize) -> Option<&Location> {
        if offset > self.text.len() {
            return None;
        }
        let after = self.locations.partition_point(|(start, _)| *start <= offset);
        after.checked_sub(1).and_then(|index| self.locations.get(index)).map(|(_, location)| location)
    }
}

/// Read a file, in the format its extension names ([`Format::of_path`]).
pub fn read(path: &Path) -> Result<Document, Error> {
    let file = path.display().to_string();
    let format = Format::of_path(path).ok_or_else(|| Error::UnknownFormat { file: file.clone() })?;
    let bytes = std::fs::read(path).map_err(|source| Error::Io { file: file.clone(), source })?;
    read_bytes(&bytes, format, &file)
}

/// Read a document held in memory. `name` names it in errors.
pub fn read_bytes(bytes: &[u8], format: Format, name: &str) -> Result<Document, Error> {
    check_content(bytes, format, name)?;
    let document = match format {
        Format::Text => read_text(bytes, name)?,
        Format::Docx => docx::read(bytes, name)?,
        Format::Html => html::read(bytes, name)?,
        Format::Pdf => pdf::read(bytes, name)?,
    };
    if document.text.trim().is_empty() {
        return Err(Error::NoText { file: name.to_string() });
    }
    Ok(document)
}

/// Text passes through unchanged (less a byte-order mark), so that offsets
/// the segmenter reports are offsets into the file after the mark; each
/// non-blank line is located by its number.
fn read_text(bytes: &[u8], name: &str) -> Result<Document, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = utf8(bytes, name)?;
    let mut locations = Vec::new();
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if !line.trim().is_empty() {
            locations.push((offset, Location::Line(index + 1)));
        }
        offset += line.len();
    }
    Ok(Document { text: text.to_string(), locations })
}

/// `bytes` as UTF-8 text, or an error that gives the line and byte of the
/// first invalid byte (a Latin-1 file is the usual case, and the line says
/// where to look).
pub(crate) fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, Error> {
    std::str::from_utf8(bytes).map_err(|error| {
        let byte = error.valid_up_to();
        let line = bytes[..byte].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::NotUtf8 { file: name.to_string(), line, byte }
    })
}

/// Collects blocks into a [`Document`]: each block's whitespace collapsed
/// to single spaces (so a block is one line), a blank line between blocks.
#[derive(Default)]
pub(crate) struct Blocks {
    text: String,
    locations: Vec<(usize, Location)>,
}

impl Blocks {
    /// Append one block; a block with no visible text is dropped.
    pub(crate) fn push(&mut self, block: &str, location: Location) {
        let block = collapse(block);
        if block.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.locations.push((self.text.len(), location));
        self.text.push_str(&block);
        self.text.push('\n');
    }

    pub(crate) fn finish(self) -> Document {
        Document { text: self.text, locations: self.locations }
    }
}

/// Collapse every run of whitespace (line breaks and no-break spaces
/// included) to one space and trim the ends: the segmenter's own rule, so
/// that a block reads as the segmenter normalises text.
pub(crate) use clause_segment::normalise_whitespace as collapse;

/// A number in upper-case Roman numerals; `None` for 0 and from 4000 on,
/// which have none.
pub(crate) fn roman(value: u32) -> Option<String> {
    const DIGITS: [(u32, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    if value == 0 || value >= 4000 {
        return None;
    }
    let mut rest = value;
    let mut out = String::new();
    for (size, digits) in DIGITS {
        while rest >= size {
            out.push_str(digits);
            rest -= size;
        }
    }
    Some(out)
}
