//! What each line of a draft is: an article or division heading, another
//! markdown heading, a numbered paragraph, a Roman-numbered section, the
//! testimonium, or text. The segmenter (lib.rs) decides from these what
//! provision a line belongs to.

use crate::normalise_whitespace;

#[derive(Clone, Copy)]
pub(crate) struct Line<'a> {
    pub(crate) number: usize,
    pub(crate) start: usize,
    pub(crate) text: &'a str,
}

impl Line<'_> {
    pub(crate) fn end(&self) -> usize {
        // The byte range stops at the last non-whitespace character.
        self.start + self.text.trim_end().len()
    }
    pub(crate) fn first_content_byte(&self) -> usize {
        self.start + (self.text.len() - self.text.trim_start().len())
    }
}

/// The structural heading kinds above articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DivisionKind {
    Part,
    Chapter,
    Section,
    Title,
    SubSection,
}

impl DivisionKind {
    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "part" => Some(Self::Part),
            "chapter" => Some(Self::Chapter),
            "section" => Some(Self::Section),
            "title" => Some(Self::Title),
            "subsection" | "sub-section" => Some(Self::SubSection),
            _ => None,
        }
    }
}

/// How an article numbers its paragraphs; the first style seen in an article
/// wins, so that `(1)` inside a `1.`-numbered article stays a sub-item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberStyle {
    Dot,
    Paren,
    Enclosed,
}

/// A classified line.
pub(crate) enum LineKind<'a> {
    Blank,
    Article {
        number: String,
        title: Option<String>,
    },
    Division {
        kind: DivisionKind,
        label: String,
        title: Option<String>,
    },
    /// A markdown heading that is neither an article nor a division: an
    /// article title, a division title, or an instrument title.
    Heading(&'a str),
    Numbered {
        number: u32,
        style: NumberStyle,
        rest: &'a str,
        rest_offset: usize,
    },
    /// `IV.` (a Roman numeral, a full stop, then a capital): a section of a
    /// document without articles, such as a letter annexed to an agreement.
    Section {
        number: u32,
        numeral: &'a str,
        rest: &'a str,
        rest_offset: usize,
    },
    Closing,
    Text,
}

/// Strip markdown heading marks, emphasis and a leading dash from a title.
pub(crate) fn clean_title(text: &str) -> String {
    let text = text.trim().trim_start_matches('#').trim();
    let text = text.trim_matches(|c| c == '*' || c == '_').trim();
    let text = text.trim_start_matches(['-', '–', '—', ':', '.']).trim();
    normalise_whitespace(text)
}

pub(crate) fn strip_preamble_marker(text: &str) -> &str {
    let trimmed = text.trim_start().trim_start_matches(['*', '_']);
    for marker in ["Preamble", "PREAMBLE", "preamble"] {
        if let Some(rest) = trimmed.strip_prefix(marker)
            && (rest.is_empty() || rest.starts_with([' ', '\t', '*', '_', ':']))
        {
            return rest.trim_start_matches(['*', '_', ':']).trim_start();
        }
    }
    text
}

/// A plain line right after an article heading is its title when it is short
/// and does not read as a sentence or a list item.
pub(crate) fn looks_like_title(text: &str) -> bool {
    let text = text.trim();
    let words = text.split_whitespace().count();
    !text.is_empty()
        && words <= 14
        && text.chars().count() <= 120
        && !text.ends_with(['.', ';', ':', ','])
        && text.chars().next().is_some_and(|c| !c.is_lowercase())
        && sub_paragraph_marker(text).is_none()
}

/// `a)`, `(a)`, `a.`, `(iv)`, `iv)` at the start of a line: length of the marker.
pub(crate) fn sub_paragraph_marker(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let (open, body_start) = if bytes.first() == Some(&b'(') { (true, 1) } else { (false, 0) };
    let body_len = bytes[body_start..].iter().take_while(|b| b.is_ascii_lowercase()).count();
    if body_len == 0 || body_len > 5 {
        return None;
    }
    let body = &text[body_start..body_start + body_len];
    let roman = body.chars().all(|c| "ivxl".contains(c));
    if body_len > 1 && !roman {
        return None;
    }
    let close = bytes.get(body_start + body_len).copied();
    let ok = matches!((open, close), (_, Some(b')')) | (false, Some(b'.')));
    ok.then_some(body_start + body_len + 1)
}

pub(crate) fn classify<'a>(line: &Line<'a>) -> LineKind<'a> {
    let text = line.text.trim();
    if text.is_empty() {
        return LineKind::Blank;
    }
    let is_markdown_heading = text.starts_with('#');
    let body = text.trim_start_matches('#').trim();
    let body_plain = body.trim_matches(|c| c == '*' || c == '_').trim();
    if let Some((number, title)) = article_heading(body_plain, is_markdown_heading) {
        return LineKind::Article { number, title };
    }
    if let Some((kind, label, title)) = division_heading(body_plain, is_markdown_heading) {
        return LineKind::Division { kind, label, title };
    }
    if is_markdown_heading {
        // A bare numeral heading (`### II`) opens a chapter that has no
        // "Chapter" word, as the UN protocols number theirs.
        if roman_value(body_plain).is_some() {
            return LineKind::Division { kind: DivisionKind::Chapter, label: body_plain.to_string(), title: None };
        }
        return LineKind::Heading(body);
    }
    let upper = text.trim_start_matches(['*', '_']);
    if ["IN WITNESS WHEREOF", "IN FAITH WHEREOF", "In witness whereof", "In faith whereof", "DONE at", "Done at"]
        .iter()
        .any(|m| upper.starts_with(m))
    {
        return LineKind::Closing;
    }
    if let Some((number, style, marker_len)) = paragraph_number(text) {
        let lead = line.text.len() - line.text.trim_start().len();
        let rest_offset = lead + marker_len;
        let rest = line.text.get(rest_offset..).unwrap_or("");
        return LineKind::Numbered { number, style, rest, rest_offset };
    }
    if let Some((number, numeral_len)) = section_number(text) {
        let lead = line.text.len() - line.text.trim_start().len();
        let rest_offset = lead + numeral_len + 1;
        let numeral = line.text.get(lead..lead + numeral_len).unwrap_or("");
        let rest = line.text.get(rest_offset..).unwrap_or("");
        return LineKind::Section { number, numeral, rest, rest_offset };
    }
    LineKind::Text
}

/// The value of a Roman numeral from I to XXXIX written the usual way
/// (`IV`, not `IIII`); anything else is `None`.
pub(crate) fn roman_value(text: &str) -> Option<u32> {
    const ONES: [&str; 10] = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX"];
    let tens = text.chars().take_while(|&c| c == 'X').count();
    let ones = ONES.iter().position(|o| *o == &text[tens..])?;
    let value = 10 * tens + ones;
    (tens <= 3 && value > 0).then_some(value as u32)
}

/// `IV.` at the start of a line, then optional spaces and a capital letter
/// ("II.Sharing of PNR: ..."): the section's number and the numeral's byte
/// length (the full stop follows it).
fn section_number(text: &str) -> Option<(u32, usize)> {
    let numeral_len = text.find(|c: char| !matches!(c, 'I' | 'V' | 'X')).unwrap_or(text.len());
    let number = roman_value(&text[..numeral_len])?;
    let after = text[numeral_len..].strip_prefix('.')?;
    after.trim_start().starts_with(|c: char| c.is_uppercase()).then_some((number, numeral_len))
}

/// `1.`, `1)` or `(1)` at the start of a line, followed by whitespace, the end
/// of the line, or a letter or quote (drafts often omit the space). Returns
/// the number, its style and the marker's byte length.
pub(crate) fn paragraph_number(text: &str) -> Option<(u32, NumberStyle, usize)> {
    let bytes = text.as_bytes();
    let enclosed = bytes.first() == Some(&b'(');
    let digits_start = usize::from(enclosed);
    let digit_count = bytes[digits_start..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digit_count == 0 || digit_count > 3 {
        return None;
    }
    let number: u32 = text[digits_start..digits_start + digit_count].parse().ok()?;
    if number == 0 {
        return None;
    }
    let close_at = digits_start + digit_count;
    let style = match (enclosed, bytes.get(close_at)) {
        (true, Some(b')')) => NumberStyle::Enclosed,
        (false, Some(b')')) => NumberStyle::Paren,
        (false, Some(b'.')) => NumberStyle::Dot,
        _ => return None,
    };
    let after = text[close_at + 1..].chars().next();
    let ok = match after {
        None => true,
        Some(c) => c.is_whitespace() || c.is_alphabetic() || "\"'“‘`*(".contains(c),
    };
    ok.then_some((number, style, close_at + 1))
}

/// `Article 5`, `Art. 5`, `ARTICLE 5`, with an optional title after a dash,
/// a full stop or a colon. Without markdown marks, a line is only a heading
/// when what follows the number is a title, not a sentence that cites the
/// article ("Article 5 shall apply ...").
pub(crate) fn article_heading(text: &str, markdown: bool) -> Option<(String, Option<String>)> {
    let rest = ["Article", "ARTICLE", "Art.", "ART.", "article"].iter().find_map(|word| text.strip_prefix(word))?;
    if !rest.starts_with(char::is_whitespace) && !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let rest = rest.trim_start();
    let number_len = rest.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric())).map_or(rest.len(), |(i, _)| i);
    let number = &rest[..number_len];
    let is_number = number.chars().next().is_some_and(|c| c.is_ascii_digit())
        && number.chars().skip_while(char::is_ascii_digit).all(|c| c.is_ascii_alphabetic())
        && number.chars().skip_while(char::is_ascii_digit).count() <= 6;
    let is_roman = !number.is_empty() && number.chars().all(|c| "IVXLC".contains(c));
    if !is_number && !is_roman {
        return None;
    }
    let mut number = number.to_string();
    let mut after = rest[number_len..].trim();
    // "Article 12 bis" keeps its Latin suffix.
    for suffix in ["bis", "ter", "quater", "quinquies", "sexies"] {
        if let Some(more) = after.strip_prefix(suffix)
            && (more.is_empty() || more.starts_with([' ', '.', '-', '–', '—', ':']))
        {
            number.push_str(suffix);
            after = more.trim();
        }
    }
    if after.is_empty() {
        return Some((number, None));
    }
    let separated = after.starts_with(['-', '–', '—', '.', ':', '|']);
    let title = clean_title(after);
    if title.is_empty() {
        return Some((number, None));
    }
    if markdown || (separated && looks_like_title(&title)) || (looks_like_title(&title) && starts_upper(&title)) {
        Some((number, Some(title)))
    } else {
        None
    }
}

pub(crate) fn starts_upper(text: &str) -> bool {
    text.chars().next().is_some_and(char::is_uppercase)
}

/// `CHAPTER II`, `Part 1`, `SECTION 3`, `Title IV`, optionally with a title.
pub(crate) fn division_heading(text: &str, markdown: bool) -> Option<(DivisionKind, String, Option<String>)> {
    let word_len = text.find(|c: char| !c.is_alphabetic() && c != '-').unwrap_or(text.len());
    let kind = DivisionKind::parse(&text[..word_len])?;
    let rest = text[word_len..].trim_start();
    let number_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let number = &rest[..number_len];
    let is_number = !number.is_empty()
        && (number.chars().all(|c| c.is_ascii_digit())
            || number.chars().all(|c| "IVXLCivxlc".contains(c))
            || (number.len() == 1 && number.chars().all(|c| c.is_ascii_uppercase())));
    if !is_number {
        return None;
    }
    let after = rest[number_len..].trim();
    let word = &text[..word_len];
    let label = format!("{} {}", capitalise(word), number);
    if after.is_empty() {
        return Some((kind, label, None));
    }
    let separated = after.starts_with(['-', '–', '—', '.', ':']);
    let title = clean_title(after);
    if title.is_empty() {
        return Some((kind, label, None));
    }
    (markdown || (separated && looks_like_title(&title))).then_some((kind, label, Some(title)))
}

pub(crate) fn capitalise(word: &str) -> String {
    let lower = word.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
