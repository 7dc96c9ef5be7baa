//! Lines into blocks: paragraphs and headings, as the segmenter reads them.
//!
//! A line continues the block before it unless something marks a new one:
//!
//! - the type changes (bold against regular, or a size a tenth apart);
//! - the space above it is wider than the block's line spacing;
//! - it starts with a provision marker (`1.`, `(a)`, `Article 5`) and
//!   stands apart from the line before: indented differently, or after a
//!   line that ends a sentence or a list item (`.`, `;`, `:`, `and`, `or`);
//! - the line before stops short of the column's right edge by more than
//!   this line's first word: the typesetter would have put the word there
//!   had the paragraph gone on;
//! - the block so far is an article or division heading: a bare one
//!   (`Article 5`) always ends there, one with a title unless the title
//!   runs on in lower case.
//!
//! Across a page or column break the spacing says nothing, so there a
//! line starts a block only after a short line, or where a sentence ended
//! and the line starts with a capital or a marker (a sentence cut by the
//! page break runs on).
//!
//! A short block set in bold or in larger type than the body is a heading:
//! it is written with Markdown `#` marks, one more for each smaller heading
//! size, as the Word reader writes heading styles.

use super::hyphens::{Compounds, join};
use super::lines::Line;
use super::markers;
use crate::{Blocks, Document, Location};

/// A heading is at most this many lines (a long bold block is emphasis).
const MAX_HEADING_LINES: usize = 4;

struct Block {
    text: String,
    page: usize,
    lines: usize,
    size: f64,
    bold: bool,
}

/// The blocks of a document's lines, located by page.
pub(crate) fn blocks(pages: &[Vec<Line>], body: f64) -> Document {
    let lines: Vec<&Line> = pages.iter().flatten().collect();
    let mut compounds = Compounds::default();
    for line in &lines {
        compounds.learn(&line.text);
    }
    let pitches = Pitches::new(&lines);
    let mut blocks: Vec<Block> = Vec::new();
    let mut previous: Option<&Line> = None;
    for line in lines {
        let continues = match (previous, blocks.last()) {
            (Some(before), Some(block)) => !breaks(before, line, block, &pitches),
            _ => false,
        };
        match blocks.last_mut() {
            Some(block) if continues => {
                join(&mut block.text, &line.text, &compounds);
                block.lines += 1;
            }
            _ => blocks.push(Block {
                text: line.text.clone(),
                page: line.page,
                lines: 1,
                size: line.size,
                bold: line.bold,
            }),
        }
        previous = Some(line);
    }
    write(&blocks, body)
}

/// Whether `line` starts a new block after `before`, the last line of
/// `block`.
fn breaks(before: &Line, line: &Line, block: &Block, pitches: &Pitches) -> bool {
    let restyled = before.bold != line.bold || (line.size - before.size).abs() > 0.1 * before.size;
    if restyled {
        return true;
    }
    if block.lines == 1 && markers::is_heading(&block.text) {
        // `Article 5`, `Article 12 bis`: a number and no title.
        let bare = block.text.split_whitespace().count() <= 3;
        if bare || !line.text.starts_with(char::is_lowercase) {
            return true;
        }
    }
    let ended = ends_item(&before.text);
    // The line before stopped short although this line's first word would
    // have fitted after it: its paragraph ended there (in ragged and
    // justified text alike). A word hyphenated at the line end did not fit.
    let fits = before.right + 0.25 * before.size + line.lead < before.edge - 1.0
        && !before.text.ends_with(['-', '\u{2010}', '\u{ad}']);
    let below = line.page == before.page && line.column == before.column && line.y < before.y;
    if !below {
        let capital = line.text.starts_with(|c: char| !c.is_lowercase());
        return fits || (ended && (capital || markers::starts_provision(&line.text)));
    }
    let spaced = before.y - line.y > pitches.of(before.size) * 1.15 + 0.5;
    let aligned = (line.left - before.left).abs() <= 1.0;
    let marked = markers::starts_provision(&line.text) && (!aligned || ended);
    let heading = markers::is_heading(&line.text) && (!aligned || ended);
    spaced || marked || heading || fits
}

/// A line that ends a sentence: `.`, `:` or `;`, before any closing quotes
/// or brackets.
fn ends_sentence(text: &str) -> bool {
    text.trim_end_matches(['"', '\'', '”', '’', ')', ']']).ends_with(['.', ':', ';'])
}

/// A line that ends a sentence or a list item (`...; and`, `...; or`).
fn ends_item(text: &str) -> bool {
    ends_sentence(text) || text.ends_with(" and") || text.ends_with(" or")
}

/// The usual distance between the baselines of a paragraph's lines, by
/// font size: the most common one between successive lines of that size.
struct Pitches(Vec<(f64, f64)>);

impl Pitches {
    fn new(lines: &[&Line]) -> Pitches {
        let mut counts: Vec<(i64, i64, usize)> = Vec::new();
        for pair in lines.windows(2) {
            let [before, after] = pair else { continue };
            let same =
                before.page == after.page && before.column == after.column && (before.size - after.size).abs() < 0.5;
            let gap = before.y - after.y;
            if !same || gap < 0.8 * before.size || gap > 2.5 * before.size {
                continue;
            }
            let key = ((before.size * 2.0).round() as i64, (gap * 4.0).round() as i64);
            match counts.iter_mut().find(|(size, pitch, _)| (*size, *pitch) == key) {
                Some((_, _, count)) => *count += 1,
                None => counts.push((key.0, key.1, 1)),
            }
        }
        let mut pitches: Vec<(f64, f64, usize)> = Vec::new();
        for (size, pitch, count) in counts {
            let size = size as f64 / 2.0;
            match pitches.iter_mut().find(|(s, _, _)| *s == size) {
                Some(best) if best.2 >= count => {}
                Some(best) => *best = (size, pitch as f64 / 4.0, count),
                None => pitches.push((size, pitch as f64 / 4.0, count)),
            }
        }
        Pitches(pitches.into_iter().map(|(size, pitch, _)| (size, pitch)).collect())
    }

    fn of(&self, size: f64) -> f64 {
        let key = (size * 2.0).round() / 2.0;
        self.0.iter().find(|(s, _)| *s == key).map_or(1.2 * size, |(_, pitch)| *pitch)
    }
}

/// Write the blocks, headings with their `#` marks.
fn write(blocks: &[Block], body: f64) -> Document {
    let is_heading = |block: &Block| {
        let styled = block.bold || block.size >= 1.15 * body;
        styled && block.lines <= MAX_HEADING_LINES && !block.text.ends_with([',', ';'])
    };
    // Heading sizes, largest first, to half a point.
    let mut sizes: Vec<i64> = blocks.iter().filter(|b| is_heading(b)).map(|b| (b.size * 2.0).round() as i64).collect();
    sizes.sort_by(|a, b| b.cmp(a));
    sizes.dedup();
    let mut out = Blocks::default();
    for block in blocks {
        let location = Location::Page(block.page);
        if is_heading(block) {
            let key = (block.size * 2.0).round() as i64;
            let level = sizes.iter().position(|s| *s == key).map_or(1, |p| p + 1).min(6);
            out.push(&format!("{} {}", "#".repeat(level), block.text), location);
        } else {
            out.push(&block.text, location);
        }
    }
    out.finish()
}
