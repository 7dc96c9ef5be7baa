//! HTML pages: the text a reader sees, as blocks.
//!
//! html5ever builds the tree as a browser would, then one walk collects the
//! visible text. Page furniture is left out (scripts, styles, `head`,
//! navigation, asides, forms, site headers and footers, hidden elements,
//! footnotes); block elements (paragraphs, list items, headings, table
//! cells, ...) each start a block; headings become Markdown `#` lines;
//! ordered lists show the numbers a browser draws. EUR-Lex marks an
//! article's number and its title as two paragraphs (`ti-art`, `sti-art`);
//! they are joined into one `#### Article 5 – Title` heading, and chapter
//! and section headings likewise.

use html5ever::tendril::TendrilSink;

use crate::{Document, Error, MAX_PART_BYTES};

mod decode;
#[cfg(test)]
mod tests;
mod text;
mod tree;

/// Read an HTML page into blocks.
pub(crate) fn read(bytes: &[u8], file: &str) -> Result<Document, Error> {
    if bytes.len() as u64 > MAX_PART_BYTES {
        return Err(Error::TooLarge { file: file.to_string(), part: "the page".to_string(), limit: MAX_PART_BYTES });
    }
    let source = decode::decode(bytes, file)?;
    let tree = html5ever::parse_document(tree::Sink::default(), Default::default()).one(source.as_ref());
    Ok(text::extract(&tree))
}
