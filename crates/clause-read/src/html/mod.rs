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

use crate::{Document, Error};

mod decode;
mod depth;
#[cfg(test)]
mod tests;
mod text;
mod tree;

/// The largest page read: EUR-Lex's longest regulations are a few MiB of
/// HTML, and html5ever holds the whole tree, several times the page.
const MAX_PAGE_BYTES: usize = 32 << 20;

/// Elements nested deeper than this (by [`depth::nesting_depth`]'s count)
/// make a page no browser shows sensibly, and one slow to parse; treaty and
/// EUR-Lex pages nest a few dozen deep.
const MAX_DEPTH: usize = 2_000;

/// Read an HTML page into blocks.
pub(crate) fn read(bytes: &[u8], file: &str) -> Result<Document, Error> {
    if bytes.len() > MAX_PAGE_BYTES {
        return Err(Error::PageTooLarge { file: file.to_string(), size: bytes.len(), limit: MAX_PAGE_BYTES });
    }
    let source = decode::decode(bytes, file)?;
    let depth = depth::nesting_depth(&source);
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep { file: file.to_string(), depth, limit: MAX_DEPTH });
    }
    let tree = html5ever::parse_document(tree::Sink::default(), Default::default()).one(source.as_ref());
    Ok(text::extract(&tree))
}
