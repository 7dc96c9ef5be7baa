//! From characters placed on pages to the blocks the segmenter reads.
//!
//! A PDF holds no paragraphs, only glyphs at positions. The steps, each in
//! its own module:
//!
//! 1. [`lines`]: glyphs sharing a baseline make a line; a page whose lines
//!    leave a vertical gutter free is read column by column; superscript
//!    digits (footnote marks) are dropped.
//! 2. [`running`]: running headers and footers (a line repeated at the top
//!    or bottom of most pages, digits aside), page numbers and document
//!    symbols in the margins, and footnotes (small type at the foot of a
//!    page, starting with a number) are removed.
//! 3. [`blocks`]: lines join into paragraphs, broken where the spacing
//!    grows, the type changes, or a line starts with a provision marker;
//!    headings (bold or larger type) become Markdown `#` lines; words
//!    hyphenated at line ends are rejoined ([`hyphens`]).
//!
//! Nothing here knows about the PDF file format: the input is plain
//! [`Page`]s, so the heuristics are tested on glyphs made up in the tests.

use crate::Document;

mod blocks;
mod hyphens;
mod lines;
mod markers;
mod running;
#[cfg(test)]
mod tests;

/// One character shown on a page, in the page's user space (points, y up).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glyph {
    /// What the character code stands for (a ligature may be two letters).
    pub(crate) text: String,
    /// The left end of its baseline.
    pub(crate) x: f64,
    pub(crate) y: f64,
    /// How far it advances the pen.
    pub(crate) width: f64,
    /// The font size in user space.
    pub(crate) size: f64,
    pub(crate) bold: bool,
}

/// A page's glyphs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Page {
    /// 1-based position of the page in the file.
    pub(crate) number: usize,
    pub(crate) glyphs: Vec<Glyph>,
}

/// Rebuild the text of `pages` as blocks located by page.
pub(crate) fn document(pages: &[Page]) -> Document {
    let mut lines: Vec<Vec<lines::Line>> = pages.iter().map(lines::page_lines).collect();
    running::remove_headers_and_footers(&mut lines);
    let body = body_size(&lines);
    for page in &mut lines {
        running::remove_footnotes(page, body);
        lines::set_edges(page);
    }
    blocks::blocks(&lines, body)
}

/// The font size most of the text is set in (by characters), to half a
/// point: what headings are larger than and footnotes smaller than.
fn body_size(pages: &[Vec<lines::Line>]) -> f64 {
    let mut counts: Vec<(i64, usize)> = Vec::new();
    for line in pages.iter().flatten() {
        let key = (line.size * 2.0).round() as i64;
        match counts.iter_mut().find(|(size, _)| *size == key) {
            Some((_, count)) => *count += line.text.len(),
            None => counts.push((key, line.text.len())),
        }
    }
    counts.iter().max_by_key(|(_, count)| *count).map_or(12.0, |(size, _)| *size as f64 / 2.0)
}
