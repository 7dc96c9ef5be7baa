//! What a page carries besides the draft's text: running headers and
//! footers, page numbers, document symbols, and footnotes.
//!
//! Only lines in a page's margins are candidates: those on the two highest
//! and the two lowest baselines of the page. Such a line goes when
//!
//! - with its digits replaced by a placeholder, it stands in the margins of
//!   at least half of the pages (and of two or more), at the same height:
//!   a running header or footer, whose page number changes; or
//! - it is a page number (`12`, `- 12 -`, `12/41`, `Page 12 of 41`, `p. 12`)
//!   or a document symbol (`A/AC.291/L.15`), or a symbol and a page number
//!   together.
//!
//! Footnotes are the lines at the foot of a page, below all text of the
//! body's size, set smaller than the body, from the first of them that
//! starts with a number (or a superscript number, or `*`) down.

use std::collections::HashMap;

use super::lines::Line;

/// How many baselines at the top and at the bottom of a page are margins.
const MARGIN_BASELINES: usize = 2;

/// Remove running headers and footers, page numbers and document symbols
/// from the margins of each page.
pub(crate) fn remove_headers_and_footers(pages: &mut [Vec<Line>]) {
    let margins: Vec<Vec<usize>> = pages.iter().map(|page| margin_lines(page)).collect();
    let mut seen: HashMap<(String, i64), usize> = HashMap::new();
    for (page, indices) in pages.iter().zip(&margins) {
        let mut keys: Vec<(String, i64)> = indices.iter().filter_map(|i| page.get(*i)).map(key).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            *seen.entry(key).or_default() += 1;
        }
    }
    let with_text = pages.iter().filter(|page| !page.is_empty()).count();
    let repeated = |line: &Line| seen.get(&key(line)).is_some_and(|n| *n >= 2 && n * 2 >= with_text);
    for (page, indices) in pages.iter_mut().zip(margins) {
        let mut index = 0;
        page.retain(|line| {
            let in_margin = indices.contains(&index);
            index += 1;
            !(in_margin && (repeated(line) || is_page_furniture(&line.text)))
        });
    }
}

/// The indices of a page's lines on its highest and lowest baselines.
fn margin_lines(page: &[Line]) -> Vec<usize> {
    let mut baselines: Vec<f64> = page.iter().map(|l| l.y).collect();
    baselines.sort_by(|a, b| b.total_cmp(a));
    baselines.dedup_by(|a, b| (*a - *b).abs() < 1.0);
    let top: Vec<f64> = baselines.iter().take(MARGIN_BASELINES).copied().collect();
    let bottom: Vec<f64> = baselines.iter().rev().take(MARGIN_BASELINES).copied().collect();
    let on = |y: f64, set: &[f64]| set.iter().any(|b| (b - y).abs() < 1.0);
    (0..page.len()).filter(|i| page.get(*i).is_some_and(|l| on(l.y, &top) || on(l.y, &bottom))).collect()
}

/// A line with its digits replaced by `#` and its spaces collapsed, so a
/// footer reads the same on every page, and its baseline to two points: a
/// running header stands at the same height on every page, the last line
/// of the body seldom does (and seldom reads the same).
fn key(line: &Line) -> (String, i64) {
    let digits: String = line.text.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
    (crate::collapse(&digits), (line.y / 2.0).round() as i64)
}

/// A page number or a document symbol, or one of each, filling the line.
pub(crate) fn is_page_furniture(text: &str) -> bool {
    let text = text.trim();
    if is_page_number(text) || is_document_symbol(text) {
        return true;
    }
    // "A/AC.291/L.15 Page 3", "3 A/AC.291/L.15".
    text.split_once(' ').is_some_and(|(first, rest)| {
        (is_document_symbol(first) && is_page_number(rest)) || (is_page_number(first) && is_document_symbol(rest))
    }) || text.rsplit_once(' ').is_some_and(|(rest, last)| is_document_symbol(rest) && is_page_number(last))
}

/// `12`, `- 12 -`, `– 12 –`, `[12]`, `12/41`, `12 of 41`, `Page 12`,
/// `Page 12 of 41`, `p. 12`, `page 12/41`, and lower-case Roman numerals.
pub(crate) fn is_page_number(text: &str) -> bool {
    let text = text.trim().trim_matches(|c: char| matches!(c, '-' | '–' | '—' | '[' | ']' | '(' | ')')).trim();
    let lower = text.to_lowercase();
    let text = ["page ", "p. ", "p."].iter().find_map(|word| lower.strip_prefix(word)).unwrap_or(&lower).trim();
    let (number, total) = match text.split_once(" of ").or_else(|| text.split_once('/')) {
        Some((number, total)) => (number.trim(), Some(total.trim())),
        None => (text, None),
    };
    let arabic = |s: &str| !s.is_empty() && s.len() <= 4 && s.chars().all(|c| c.is_ascii_digit());
    let roman = |s: &str| !s.is_empty() && s.len() <= 6 && s.chars().all(|c| "ivxlc".contains(c));
    (arabic(number) && total.is_none_or(arabic)) || (roman(number) && total.is_none())
}

/// A UN-style document symbol: two or more `/`-separated parts of capital
/// letters, digits and full stops, starting with a letter (`A/AC.291/L.15`,
/// `E/CN.4/2004/L.10`, `CCPR/C/GC/34`), optionally with a year in
/// brackets or a trailing `Rev.1`-like part.
pub(crate) fn is_document_symbol(text: &str) -> bool {
    let text = text.trim();
    let symbol = text.split_once(' ').map_or(text, |(symbol, rest)| {
        let rest = rest.trim();
        let year = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).is_some_and(|y| y.len() == 4);
        if year { symbol } else { text }
    });
    let parts: Vec<&str> = symbol.split('/').collect();
    parts.len() >= 3
        && parts.first().is_some_and(|p| p.starts_with(|c: char| c.is_ascii_uppercase()))
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-')
                || is_revision(part)
        })
}

/// `Rev.1`, `Add.2`, `Corr.1`: the lower-case parts a symbol may end with.
fn is_revision(part: &str) -> bool {
    ["Rev.", "Add.", "Corr.", "Amend."]
        .iter()
        .any(|prefix| part.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
}

/// Drop a page's footnotes. Going up from the lowest line, as long as no
/// line is larger than the body: a line that starts with a superscript
/// number starts a note (a line of the body never does: a note mark sticks
/// to the word before it); so does one that starts with a number among the
/// lowest lines set smaller than the body. The highest such line and every
/// line below it go.
pub(crate) fn remove_footnotes(page: &mut Vec<Line>, body: f64) {
    let mut bottom_up: Vec<&Line> = page.iter().collect();
    bottom_up.sort_by(|a, b| a.y.total_cmp(&b.y));
    let foot: Vec<&Line> = bottom_up.into_iter().take_while(|l| l.size <= 1.1 * body).collect();
    let small = foot.iter().take_while(|l| l.size < 0.9 * body).count();
    // A page all in small type is no body with notes below it.
    let small_notes = small < page.len();
    let starts = foot.iter().enumerate().filter(|(i, l)| l.marked || (small_notes && *i < small && starts_note(l)));
    let Some(top) = starts.map(|(_, l)| l.y).reduce(f64::max) else { return };
    page.retain(|line| !(line.y <= top && line.size <= 1.1 * body));
}

/// A footnote's first line: a superscript number was dropped from its
/// start, or it starts with a number or a note symbol.
fn starts_note(line: &Line) -> bool {
    let text = line.text.trim_start();
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    let numbered = (1..=3).contains(&digits)
        && text.get(digits..).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '.', ')', '/']));
    line.marked || numbered || text.starts_with(['*', '†', '‡'])
}
