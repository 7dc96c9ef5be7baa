//! A page's glyphs into lines in reading order.
//!
//! Glyphs whose baselines agree make a row. Small glyphs raised above a
//! row (superscripts) join the row below them; raised digits are footnote
//! marks and are dropped. A page is read in two columns when a vertical
//! band near its middle is crossed by few rows while many rows have text on
//! both sides of it (the gutter); rows that cross it (a title above the
//! columns) are read across the page, and between them each run of rows is
//! read left column first.

use super::{Glyph, Page};

/// A line of text as the later steps see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) text: String,
    /// 1-based page.
    pub(crate) page: usize,
    /// Left and right ends of the text.
    pub(crate) left: f64,
    pub(crate) right: f64,
    /// The right end of the longest line of the same column on the page,
    /// which a full line reaches.
    pub(crate) edge: f64,
    /// The width of its first word (with any punctuation stuck to it).
    pub(crate) lead: f64,
    /// The baseline.
    pub(crate) y: f64,
    /// The size most of its characters are set in.
    pub(crate) size: f64,
    /// Every character (spaces aside) is bold.
    pub(crate) bold: bool,
    /// It began with a superscript number: a footnote's own number.
    pub(crate) marked: bool,
    /// 0 across the page, 1 the left column, 2 the right one.
    pub(crate) column: u8,
}

/// Glyphs of one baseline, with those raised above it.
struct Row<'g> {
    y: f64,
    size: f64,
    glyphs: Vec<(&'g Glyph, bool)>,
}

impl Row<'_> {
    fn left(&self) -> f64 {
        self.glyphs.iter().map(|(g, _)| g.x).fold(f64::INFINITY, f64::min)
    }
    fn right(&self) -> f64 {
        self.glyphs.iter().map(|(g, _)| g.x + g.width).fold(f64::NEG_INFINITY, f64::max)
    }
}

/// The lines of a page, in reading order.
pub(crate) fn page_lines(page: &Page) -> Vec<Line> {
    let rows = rows(&page.glyphs);
    let gutter = gutter(&rows);
    let mut lines = Vec::new();
    let mut band: Vec<(Line, Option<Line>)> = Vec::new();
    for row in &rows {
        let split = gutter.filter(|g| !segments(row).iter().any(|(left, right)| left < g && right > g));
        match split {
            Some(gutter) => {
                let (left, right): (Vec<_>, Vec<_>) =
                    row.glyphs.iter().partition(|(g, _)| g.x + g.width / 2.0 < gutter);
                let left = line(row, left, page.number, 1);
                let right = line(row, right, page.number, 2);
                match (left, right) {
                    (Some(l), r) => band.push((l, r)),
                    (None, Some(r)) => band.push((r, None)),
                    (None, None) => {}
                }
            }
            None => {
                flush_band(&mut band, &mut lines);
                lines.extend(line(row, row.glyphs.iter().collect(), page.number, 0));
            }
        }
    }
    flush_band(&mut band, &mut lines);
    set_edges(&mut lines);
    lines
}

/// A run of rows split by the gutter: the left column, then the right.
fn flush_band(band: &mut Vec<(Line, Option<Line>)>, lines: &mut Vec<Line>) {
    let mut right = Vec::new();
    for (first, second) in band.drain(..) {
        if first.column == 2 {
            right.push(first);
        } else {
            lines.push(first);
            right.extend(second);
        }
    }
    lines.extend(right);
}

/// Set each line's `edge` from the lines of its column (again once running
/// headers, footers and notes are gone, which may reach further).
pub(crate) fn set_edges(lines: &mut [Line]) {
    for column in 0..3 {
        let edge = lines.iter().filter(|l| l.column == column).map(|l| l.right).fold(f64::NEG_INFINITY, f64::max);
        for line in lines.iter_mut().filter(|l| l.column == column) {
            line.edge = edge;
        }
    }
}

/// Glyphs grouped by baseline, top row first; raised small glyphs moved
/// into the row below them and marked as raised.
fn rows(glyphs: &[Glyph]) -> Vec<Row<'_>> {
    let mut sorted: Vec<&Glyph> = glyphs.iter().filter(|g| g.size > 0.0 && !g.text.is_empty()).collect();
    sorted.sort_by(|a, b| b.y.total_cmp(&a.y).then(a.x.total_cmp(&b.x)));
    let mut rows: Vec<Row<'_>> = Vec::new();
    for glyph in sorted {
        // Rows are made top down, so only the last few can take the glyph.
        let found = rows.iter_mut().rev().take(4).find(|row| (row.y - glyph.y).abs() <= 0.2 * row.size.min(glyph.size));
        match found {
            Some(row) => {
                row.size = row.size.max(glyph.size);
                row.glyphs.push((glyph, false));
            }
            None => rows.push(Row { y: glyph.y, size: glyph.size, glyphs: vec![(glyph, false)] }),
        }
    }
    attach_raised(rows)
}

/// A row of glyphs smaller than a row just below it (one of the next
/// few: the other column's rows come between) and raised above its
/// baseline by less than that row's size is superscript: it joins that row.
fn attach_raised(rows: Vec<Row<'_>>) -> Vec<Row<'_>> {
    let targets: Vec<Option<usize>> = (0..rows.len())
        .map(|i| {
            let raised = rows.get(i)?;
            (i + 1..rows.len().min(i + 5)).find(|j| rows.get(*j).is_some_and(|row| is_raised_over(raised, row)))
        })
        .collect();
    let mut rows: Vec<Option<Row<'_>>> = rows.into_iter().map(Some).collect();
    for (i, target) in targets.into_iter().enumerate() {
        let Some(target) = target else { continue };
        let Some(raised) = rows.get_mut(i).and_then(Option::take) else { continue };
        match rows.get_mut(target).and_then(Option::as_mut) {
            Some(row) => row.glyphs.extend(raised.glyphs.into_iter().map(|(g, _)| (g, true))),
            None => {
                if let Some(slot) = rows.get_mut(i) {
                    *slot = Some(raised);
                }
            }
        }
    }
    rows.into_iter().flatten().collect()
}

fn is_raised_over(raised: &Row<'_>, row: &Row<'_>) -> bool {
    let above = raised.y - row.y;
    let near = raised.left() <= row.right() + row.size && raised.right() >= row.left() - row.size;
    raised.size <= 0.85 * row.size && above > 0.0 && above < 0.8 * row.size && near
}

/// The stretches of a row with text, gaps wider than its size separating
/// them (a word space is narrower; a column gutter wider).
fn segments(row: &Row<'_>) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = row.glyphs.iter().map(|(g, _)| (g.x, g.x + g.width.max(0.0))).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start - last.1 <= row.size => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The x of a column gutter, if the page has one: a band in the middle half
/// of the text, at least half a line's size wide, that at most a third of
/// the rows cross, while at least a quarter of them have text on its left
/// and a quarter on its right.
fn gutter(rows: &[Row<'_>]) -> Option<f64> {
    if rows.len() < 6 {
        return None;
    }
    let row_segments: Vec<Vec<(f64, f64)>> = rows.iter().map(segments).collect();
    let left = row_segments.iter().flatten().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let right = row_segments.iter().flatten().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let width = right - left;
    if !(width.is_finite() && width > 0.0) {
        return None;
    }
    // Crossings counted at one-point steps over the middle half.
    let (from, to) = (left + width / 4.0, right - width / 4.0);
    let steps = ((to - from).ceil() as usize).min(4000);
    let crossing = |x: f64| row_segments.iter().filter(|s| s.iter().any(|(a, b)| *a < x && *b > x)).count();
    let counts: Vec<usize> = (0..=steps).map(|i| crossing(from + i as f64)).collect();
    let fewest = counts.iter().copied().min()?;
    if fewest * 3 > rows.len() {
        return None;
    }
    // The widest run of steps at (about) the fewest crossings: the last
    // line of a paragraph across the page may end just inside the gutter,
    // and should cross it rather than join the left column.
    let allowed = fewest + (rows.len() / 20).max(1);
    let mut best: Option<(usize, usize)> = None;
    let mut start = None;
    for (i, count) in counts.iter().chain(std::iter::once(&usize::MAX)).enumerate() {
        match (*count <= allowed, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if best.is_none_or(|(bs, be)| i - s > be - bs) {
                    best = Some((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    let (run_start, run_end) = best?;
    let size = median(rows.iter().map(|r| r.size).collect()).unwrap_or(0.0);
    if ((run_end - run_start) as f64) < size / 2.0 {
        return None;
    }
    let x = from + (run_start + run_end) as f64 / 2.0;
    // The two columns' baselines seldom line up, so most rows hold one
    // column's line: count the rows with text on each side.
    let on_left = row_segments.iter().filter(|s| s.iter().any(|(_, b)| *b <= x)).count();
    let on_right = row_segments.iter().filter(|s| s.iter().any(|(a, _)| *a >= x)).count();
    (on_left * 4 >= rows.len() && on_right * 4 >= rows.len()).then_some(x)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Digits, and the symbols that number footnotes.
fn is_mark(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_digit() || "*†‡§".contains(c) || c.is_whitespace())
}

/// One line from some of a row's glyphs: ordered left to right, a space
/// where the gap is wider than a fifth of the size, overprinted copies
/// (a bold imitation) once, footnote marks left out.
fn line(row: &Row<'_>, mut glyphs: Vec<&(&Glyph, bool)>, page: usize, column: u8) -> Option<Line> {
    glyphs.sort_by(|a, b| a.0.x.total_cmp(&b.0.x));
    let size = dominant_size(&glyphs)?;
    let baselines = glyphs.iter().filter(|(g, raised)| !raised && (g.size - size).abs() < 0.5).map(|(g, _)| g.y);
    let y = median(baselines.collect()).unwrap_or(row.y);
    let mut text = String::new();
    let mut marked = false;
    let mut bold = true;
    let (mut left, mut right) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut previous: Option<&Glyph> = None;
    let mut lead = None;
    for (glyph, raised) in glyphs.iter().map(|(g, r)| (*g, *r)) {
        if raised && glyph.size <= 0.85 * size && is_mark(&glyph.text) {
            marked |= text.trim().is_empty();
            continue;
        }
        if let Some(before) = previous {
            if before.text == glyph.text && (glyph.x - before.x).abs() < 0.1 * size {
                continue;
            }
            let gap = glyph.x - (before.x + before.width);
            let spaced = text.ends_with(char::is_whitespace) || glyph.text.starts_with(char::is_whitespace);
            if gap > 0.2 * size.min(glyph.size) && !spaced {
                text.push(' ');
            }
        }
        if lead.is_none() && text.trim_start().contains(char::is_whitespace) {
            lead = Some(right - left);
        }
        text.push_str(&glyph.text);
        if !glyph.text.trim().is_empty() {
            bold &= glyph.bold;
            left = left.min(glyph.x);
            right = right.max(glyph.x + glyph.width);
        }
        previous = Some(glyph);
    }
    let text = crate::collapse(&text);
    if text.is_empty() {
        return None;
    }
    let lead = lead.unwrap_or(right - left).max(0.0);
    Some(Line { text, page, left, right, edge: right, lead, y, size, bold, marked, column })
}

/// The size that most of the glyphs (raised ones aside) are set in.
fn dominant_size(glyphs: &[&(&Glyph, bool)]) -> Option<f64> {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for (glyph, raised) in glyphs {
        if *raised || glyph.text.trim().is_empty() {
            continue;
        }
        match counts.iter_mut().find(|(size, _)| (size - glyph.size).abs() < 0.5) {
            Some((_, count)) => *count += 1,
            None => counts.push((glyph.size, 1)),
        }
    }
    counts.into_iter().max_by_key(|(_, count)| *count).map(|(size, _)| size)
}
