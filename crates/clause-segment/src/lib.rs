//! Provision segmenter for treaty and legislation text.
//!
//! A *provision* is one numbered paragraph of an article with its lettered
//! sub-paragraphs joined to it; an article without numbered paragraphs is one
//! provision; the preamble is one provision; the testimonium that closes an
//! instrument ("IN WITNESS WHEREOF ...") is one provision.
//!
//! The segmenter is a single pass over lines. It never fails and never panics:
//! every input, however malformed, yields some list of provisions (possibly
//! empty), and every byte range it reports lies on character boundaries of the
//! input.

use serde::{Deserialize, Serialize};

/// What part of an instrument a provision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionKind {
    /// Text before the first article of an instrument.
    Preamble,
    /// A whole article that has no numbered paragraphs.
    Article,
    /// Text of an article that precedes its first numbered paragraph.
    ArticleIntro,
    /// One numbered paragraph of an article.
    Paragraph,
    /// The testimonium and signature block that closes an instrument.
    Closing,
}

/// One provision of a segmented document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provision {
    /// `<document>:art<N>`, `<document>:art<N>.<P>`, `<document>:preamble` or
    /// `<document>:closing`.
    pub id: String,
    /// The document name (the file stem before its first `.` unless given),
    /// with `-2`, `-3`, ... appended for the second and later instruments in
    /// one file (a covenant followed by its optional protocol).
    pub document: String,
    /// The instrument's title, from a markdown title line, if the file has one.
    pub instrument: Option<String>,
    /// The chapter / part / section / title headings above the provision,
    /// outermost first, joined with " > ".
    pub chapter: Option<String>,
    /// The article number as written (`5`, `12bis`, `IV`).
    pub article: Option<String>,
    /// The paragraph number as written, without its punctuation.
    pub paragraph: Option<String>,
    /// The article's title, if it has one.
    pub title: Option<String>,
    /// What part of the instrument this is.
    pub kind: ProvisionKind,
    /// The provision's text with whitespace normalised; a leading paragraph
    /// number is removed (it is in `paragraph`), sub-paragraph markers stay.
    pub text: String,
    /// First line of the provision in the source (1-based).
    pub line: usize,
    /// Byte offset of the provision's first byte in the source file.
    pub start: usize,
    /// Byte offset one past the provision's last byte in the source file.
    pub end: usize,
}

/// The document name a path gets by default: its file name up to the first `.`.
pub fn document_name_from_path(path: &std::path::Path) -> String {
    let file = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = file.split('.').next().unwrap_or_default();
    if stem.is_empty() { file } else { stem.to_string() }
}

/// Collapse every run of whitespace to one space and trim the ends.
pub fn normalise_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Split `source` into provisions. `document` names the document in ids.
pub fn segment(document: &str, source: &str) -> Vec<Provision> {
    let mut segmenter = Segmenter::new(document);
    let bom = if source.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut offset = bom;
    for (index, raw) in source[bom..].split_inclusive('\n').enumerate() {
        let content = raw.trim_end_matches(['\n', '\r']);
        segmenter.line(Line { number: index + 1, start: offset, text: content });
        offset += raw.len();
    }
    segmenter.finish()
}

#[derive(Clone, Copy)]
struct Line<'a> {
    number: usize,
    start: usize,
    text: &'a str,
}

impl Line<'_> {
    fn end(&self) -> usize {
        // The byte range stops at the last non-whitespace character.
        self.start + self.text.trim_end().len()
    }
    fn first_content_byte(&self) -> usize {
        self.start + (self.text.len() - self.text.trim_start().len())
    }
}

/// The structural heading kinds above articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DivisionKind {
    Part,
    Chapter,
    Section,
    Title,
    SubSection,
}

impl DivisionKind {
    fn parse(word: &str) -> Option<Self> {
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
enum NumberStyle {
    Dot,
    Paren,
    Enclosed,
}

/// A classified line.
enum LineKind<'a> {
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
    Closing,
    Text,
}

struct Division {
    kind: DivisionKind,
    heading: String,
}

/// A provision being collected.
struct Open {
    kind: ProvisionKind,
    paragraph: Option<String>,
    line: usize,
    start: usize,
    end: usize,
    text: String,
}

impl Open {
    fn new(kind: ProvisionKind, paragraph: Option<String>, line: &Line<'_>) -> Self {
        Self {
            kind,
            paragraph,
            line: line.number,
            start: line.first_content_byte(),
            end: line.end(),
            text: String::new(),
        }
    }
    fn push(&mut self, text: &str, line: &Line<'_>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        if self.text.is_empty() && self.kind != ProvisionKind::Paragraph {
            // The provision starts at its first content, not at a blank line.
            self.start = line.start + line.text.find(text).unwrap_or(0);
            self.line = line.number;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        self.text.push_str(text);
        self.end = line.end();
    }
}

struct Segmenter {
    base_document: String,
    instrument_index: usize,
    instrument: Option<String>,
    divisions: Vec<Division>,
    /// Set while the next line may name the division just opened.
    division_title_pending: bool,
    article: Option<String>,
    article_title: Option<String>,
    /// Set right after an article heading, until the article's first content.
    article_title_pending: bool,
    paragraph_style: Option<NumberStyle>,
    last_paragraph: u32,
    highest_article: u32,
    seen_article: bool,
    closed: bool,
    open: Option<Open>,
    /// A plain-text line that may be the article's title, held until the
    /// next line shows whether it was.
    held_title: Option<(String, usize, usize, usize)>,
    out: Vec<Provision>,
}

impl Segmenter {
    fn new(document: &str) -> Self {
        Self {
            base_document: document.to_string(),
            instrument_index: 1,
            instrument: None,
            divisions: Vec::new(),
            division_title_pending: false,
            article: None,
            article_title: None,
            article_title_pending: false,
            paragraph_style: None,
            last_paragraph: 0,
            highest_article: 0,
            seen_article: false,
            closed: false,
            open: None,
            held_title: None,
            out: Vec::new(),
        }
    }

    fn document(&self) -> String {
        if self.instrument_index == 1 {
            self.base_document.clone()
        } else {
            format!("{}-{}", self.base_document, self.instrument_index)
        }
    }

    fn line(&mut self, line: Line<'_>) {
        let kind = classify(&line);
        if !matches!(kind, LineKind::Blank) {
            self.resolve_held_title(&kind, &line);
        }
        match kind {
            LineKind::Blank => {}
            LineKind::Article { number, title } => self.start_article(number, title),
            LineKind::Division { kind, label, title } => {
                self.flush();
                self.close_article();
                self.push_division(kind, label, title);
            }
            LineKind::Heading(heading) => self.heading(heading, &line),
            LineKind::Closing => {
                // "IN WITNESS WHEREOF" and "DONE at" lines form one testimonium.
                if !self.open.as_ref().is_some_and(|o| o.kind == ProvisionKind::Closing) {
                    self.flush();
                    self.close_article();
                    self.closed = true;
                    self.open = Some(Open::new(ProvisionKind::Closing, None, &line));
                }
                self.append(line.text, &line);
            }
            LineKind::Numbered { number, style, rest, rest_offset } => {
                self.division_title_pending = false;
                let accepted = self.article.is_some()
                    && !self.closed
                    && self.paragraph_style.is_none_or(|s| s == style)
                    && number > self.last_paragraph;
                if accepted {
                    self.article_title_pending = false;
                    if let Some(open) = self.open.as_mut().filter(|o| o.kind == ProvisionKind::Article) {
                        open.kind = ProvisionKind::ArticleIntro;
                    }
                    self.flush();
                    self.paragraph_style = Some(style);
                    self.last_paragraph = number;
                    let mut open = Open::new(ProvisionKind::Paragraph, Some(number.to_string()), &line);
                    let rest_line = Line { number: line.number, start: line.start + rest_offset, text: rest };
                    open.push(rest, &rest_line);
                    open.end = line.end();
                    self.open = Some(open);
                } else {
                    self.text(line.text, &line);
                }
            }
            LineKind::Text => self.text(line.text, &line),
        }
    }

    /// Decide what a plain line held as a possible title was, now that the
    /// line after it is known.
    fn resolve_held_title(&mut self, next: &LineKind<'_>, next_line: &Line<'_>) {
        let Some((title, number, start, end)) = self.held_title.take() else { return };
        // A following line that starts in lower case continues a sentence
        // that was merely short, so the held line was body text.
        let continues = matches!(next, LineKind::Text)
            && next_line.text.trim_start().chars().next().is_some_and(char::is_lowercase);
        let is_title = matches!(next, LineKind::Numbered { .. } | LineKind::Text) && !continues;
        if is_title {
            self.article_title = Some(clean_title(&title));
        } else {
            self.release_held_title(title, number, start, end);
        }
    }

    /// A line held as a possible title that turned out to be body text.
    fn release_held_title(&mut self, text: String, number: usize, start: usize, end: usize) {
        let held = Line { number, start, text: "" };
        self.begin_article_body(&held);
        if let Some(open) = self.open.as_mut() {
            open.text = text;
            open.start = start;
            open.end = end;
            open.line = number;
        }
    }

    fn start_article(&mut self, number: String, title: Option<String>) {
        self.flush();
        self.division_title_pending = false;
        let numeric = leading_number(&number);
        // A testimonium, or numbering that starts again at 1, means a second
        // instrument (an optional protocol) follows in the same file.
        if self.closed || (numeric == Some(1) && self.highest_article > 1) {
            self.next_instrument(None);
        }
        self.seen_article = true;
        if let Some(n) = numeric {
            self.highest_article = self.highest_article.max(n);
        }
        self.article = Some(number);
        self.article_title = title;
        self.article_title_pending = self.article_title.is_none();
        self.paragraph_style = None;
        self.last_paragraph = 0;
    }

    fn next_instrument(&mut self, title: Option<String>) {
        self.flush();
        self.instrument_index += 1;
        self.instrument = title;
        self.divisions.clear();
        self.article = None;
        self.article_title = None;
        self.highest_article = 0;
        self.seen_article = false;
        self.closed = false;
    }

    fn close_article(&mut self) {
        self.article = None;
        self.article_title = None;
        self.article_title_pending = false;
    }

    fn push_division(&mut self, kind: DivisionKind, label: String, title: Option<String>) {
        if let Some(position) = self.divisions.iter().position(|d| d.kind == kind) {
            self.divisions.truncate(position);
        }
        self.division_title_pending = title.is_none();
        let heading = match title {
            Some(title) => format!("{label} – {title}"),
            None => label,
        };
        self.divisions.push(Division { kind, heading });
    }

    fn heading(&mut self, heading: &str, line: &Line<'_>) {
        let title = clean_title(heading);
        if title.is_empty() {
            return;
        }
        if self.article_title_pending {
            self.article_title_pending = false;
            self.article_title = Some(title);
        } else if self.division_title_pending {
            self.division_title_pending = false;
            if let Some(division) = self.divisions.last_mut() {
                division.heading = format!("{} – {}", division.heading, title);
            }
        } else if self.closed {
            // A title after the testimonium opens the next instrument.
            self.next_instrument(Some(title));
        } else if !self.seen_article && self.open.is_none() && self.instrument.is_none() {
            self.instrument = Some(title);
        } else {
            self.text(heading, line);
        }
    }

    fn text(&mut self, text: &str, line: &Line<'_>) {
        self.division_title_pending = false;
        if self.article_title_pending && self.open.is_none() {
            self.article_title_pending = false;
            if looks_like_title(text) {
                self.held_title = Some((text.trim().to_string(), line.number, line.first_content_byte(), line.end()));
                return;
            }
        }
        self.article_title_pending = false;
        if self.open.is_none() {
            self.begin_article_body(line);
        }
        self.append(text, line);
    }

    /// Open the provision that text outside any numbered paragraph belongs to.
    fn begin_article_body(&mut self, line: &Line<'_>) {
        if self.open.is_some() {
            return;
        }
        let kind = if self.closed {
            ProvisionKind::Closing
        } else if self.article.is_none() {
            ProvisionKind::Preamble
        } else {
            // Becomes `ArticleIntro` if a numbered paragraph follows.
            ProvisionKind::Article
        };
        self.open = Some(Open::new(kind, None, line));
    }

    fn append(&mut self, text: &str, line: &Line<'_>) {
        if self.open.is_none() {
            self.begin_article_body(line);
        }
        let text = if self.open.as_ref().is_some_and(|o| o.kind == ProvisionKind::Preamble && o.text.is_empty()) {
            strip_preamble_marker(text)
        } else {
            text
        };
        if let Some(open) = self.open.as_mut() {
            open.push(text, line);
        }
    }

    fn flush(&mut self) {
        if let Some((text, number, start, end)) = self.held_title.take() {
            // A held line followed by nothing else is body text, not a title.
            self.release_held_title(text, number, start, end);
        }
        let Some(open) = self.open.take() else { return };
        if open.text.is_empty() {
            return;
        }
        let document = self.document();
        let kind = open.kind;
        let local = match (kind, &self.article, &open.paragraph) {
            (ProvisionKind::Preamble, _, _) => "preamble".to_string(),
            (ProvisionKind::Closing, _, _) => "closing".to_string(),
            (_, Some(article), Some(paragraph)) => format!("art{}.{}", id_token(article), paragraph),
            (_, Some(article), None) => format!("art{}", id_token(article)),
            (_, None, _) => "preamble".to_string(),
        };
        let mut id = format!("{document}:{local}");
        if self.out.iter().any(|p| p.id == id) {
            let mut n = 2;
            while self.out.iter().any(|p| p.id == format!("{id}~{n}")) {
                n += 1;
            }
            id = format!("{id}~{n}");
        }
        let chapter = if self.divisions.is_empty() || matches!(kind, ProvisionKind::Preamble | ProvisionKind::Closing) {
            None
        } else {
            Some(self.divisions.iter().map(|d| d.heading.as_str()).collect::<Vec<_>>().join(" > "))
        };
        let in_article =
            matches!(kind, ProvisionKind::Article | ProvisionKind::ArticleIntro | ProvisionKind::Paragraph);
        self.out.push(Provision {
            id,
            document,
            instrument: self.instrument.clone(),
            chapter,
            article: self.article.clone().filter(|_| in_article),
            paragraph: open.paragraph,
            title: self.article_title.clone().filter(|_| in_article),
            kind,
            text: normalise_whitespace(&open.text),
            line: open.line,
            start: open.start,
            end: open.end.max(open.start),
        });
    }

    fn finish(mut self) -> Vec<Provision> {
        self.flush();
        self.out
    }
}

/// Article numbers go into ids lower-cased, with anything but letters and
/// digits dropped, so `12 bis` becomes `12bis`.
fn id_token(article: &str) -> String {
    article.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Strip markdown heading marks, emphasis and a leading dash from a title.
fn clean_title(text: &str) -> String {
    let text = text.trim().trim_start_matches('#').trim();
    let text = text.trim_matches(|c| c == '*' || c == '_').trim();
    let text = text.trim_start_matches(['-', '–', '—', ':', '.']).trim();
    normalise_whitespace(text)
}

fn strip_preamble_marker(text: &str) -> &str {
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
fn looks_like_title(text: &str) -> bool {
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
fn sub_paragraph_marker(text: &str) -> Option<usize> {
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

fn classify<'a>(line: &Line<'a>) -> LineKind<'a> {
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
    LineKind::Text
}

/// `1.`, `1)` or `(1)` at the start of a line, followed by whitespace, the end
/// of the line, or a letter or quote (drafts often omit the space). Returns
/// the number, its style and the marker's byte length.
fn paragraph_number(text: &str) -> Option<(u32, NumberStyle, usize)> {
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
fn article_heading(text: &str, markdown: bool) -> Option<(String, Option<String>)> {
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

fn starts_upper(text: &str) -> bool {
    text.chars().next().is_some_and(char::is_uppercase)
}

/// `CHAPTER II`, `Part 1`, `SECTION 3`, `Title IV`, optionally with a title.
fn division_heading(text: &str, markdown: bool) -> Option<(DivisionKind, String, Option<String>)> {
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

fn capitalise(word: &str) -> String {
    let lower = word.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: &str) -> Vec<String> {
        segment("d", source).into_iter().map(|p| p.id).collect()
    }

    fn one<'a>(provisions: &'a [Provision], id: &str) -> &'a Provision {
        provisions.iter().find(|p| p.id == id).unwrap_or_else(|| panic!("no {id} in {provisions:#?}"))
    }

    #[test]
    fn heading_forms() {
        for heading in
            ["Article 1", "Art. 1", "ARTICLE 1", "### Article  1  ", "#Article 1", "**Article 1**", "Article 1."]
        {
            let source = format!("{heading}\n\nThe Parties shall cooperate.\n");
            let provisions = segment("d", &source);
            assert_eq!(provisions.len(), 1, "{heading}: {provisions:#?}");
            assert_eq!(provisions[0].id, "d:art1", "{heading}");
            assert_eq!(provisions[0].kind, ProvisionKind::Article);
            assert_eq!(provisions[0].text, "The Parties shall cooperate.");
        }
    }

    #[test]
    fn titles_on_the_heading_line_or_the_next() {
        let cases = [
            "Article 5 – Data interference\nEach Party shall act.\n",
            "Article 5. Data interference\nEach Party shall act.\n",
            "Article 5 - Data interference\nEach Party shall act.\n",
            "Article 5: Data interference\nEach Party shall act.\n",
            "### Article 5\n\n####Data interference\n\nEach Party shall act.\n",
            "### Article 5\n\n####- Data interference\n\nEach Party shall act.\n",
            "Article 5\nData interference\n\nEach Party shall act.\n",
            "ARTICLE 5\n*Data interference*\nEach Party shall act.\n",
        ];
        for source in cases {
            let provisions = segment("d", source);
            assert_eq!(provisions.len(), 1, "{source:?}: {provisions:#?}");
            assert_eq!(provisions[0].title.as_deref(), Some("Data interference"), "{source:?}");
            assert_eq!(provisions[0].text, "Each Party shall act.", "{source:?}");
        }
    }

    #[test]
    fn body_lines_are_not_mistaken_for_titles_or_headings() {
        let provisions = segment("d", "Article 2\nEveryone has the right to life.\n");
        assert_eq!(provisions[0].title, None);
        assert_eq!(provisions[0].text, "Everyone has the right to life.");

        let provisions = segment("d", "Article 3\nNo one shall be subjected\nto torture.\n");
        assert_eq!(provisions[0].title, None);
        assert_eq!(provisions[0].text, "No one shall be subjected to torture.");

        // A sentence that cites an article is not a heading.
        let provisions = segment(
            "d",
            "Article 4\n1. Each Party shall act.\nArticle 2 shall apply to the measures referred to in paragraph 1.\n",
        );
        assert_eq!(
            ids("Article 4\n1. Each Party shall act.\nArticle 2 shall apply mutatis mutandis to the measures.\n"),
            ["d:art4.1"]
        );
        assert!(provisions[0].text.ends_with("referred to in paragraph 1."), "{provisions:#?}");
    }

    #[test]
    fn paragraph_number_styles() {
        for (one, two) in [("1.", "2."), ("1)", "2)"), ("(1)", "(2)")] {
            let source = format!("Article 7\n{one} First paragraph.\n{two} Second paragraph.\n");
            let provisions = segment("d", &source);
            assert_eq!(provisions.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["d:art7.1", "d:art7.2"], "{one}");
            assert_eq!(provisions[1].paragraph.as_deref(), Some("2"));
            assert_eq!(provisions[1].text, "Second paragraph.");
            assert_eq!(provisions[1].kind, ProvisionKind::Paragraph);
        }
        // No space after the number.
        assert_eq!(ids("Article 7\n1.First.\n2.Second.\n"), ["d:art7.1", "d:art7.2"]);
    }

    #[test]
    fn a_paragraph_number_alone_on_its_line() {
        let source = "Article 1\n1. Each Party shall act.\n2.\na) To this end, it may inquire;\nb) It shall hear claims.\n3. Third.\n";
        let provisions = segment("d", source);
        let two = one(&provisions, "d:art1.2");
        assert_eq!(two.text, "a) To this end, it may inquire; b) It shall hear claims.");
        assert_eq!(&source[two.start..two.start + 2], "2.");
        assert_eq!(provisions.len(), 3);
    }

    #[test]
    fn sub_paragraphs_join_their_paragraph() {
        let source = "Article 1\n1. For the purposes of this Convention:\n\na) \"system\" means a device;\n(b) \"data\" means facts;\nc. \"provider\" means:\n(i) an entity, and\n(ii) another entity;\nii) more;\n2. Second.\n";
        let provisions = segment("d", source);
        assert_eq!(provisions.len(), 2, "{provisions:#?}");
        let first = &provisions[0];
        assert!(first.text.starts_with("For the purposes of this Convention: a) \"system\""), "{}", first.text);
        assert!(first.text.contains("(i) an entity, and (ii) another entity; ii) more;"), "{}", first.text);
        // A lettered article without numbered paragraphs is one provision.
        assert_eq!(ids("Article 2\nAssistance may be refused:\n(a) if political;\n(b) if prejudicial.\n"), ["d:art2"]);
    }

    #[test]
    fn numbered_sub_items_of_another_style_stay_inside_the_paragraph() {
        let source = "Article 3\n1. A Party shall:\n(1) do this;\n(2) do that.\n2. Second.\n";
        assert_eq!(ids(source), ["d:art3.1", "d:art3.2"]);
        // Numbers that go backwards are text, not paragraphs.
        assert_eq!(ids("Article 3\n1. One.\n2. Two.\n1. Again one.\n"), ["d:art3.1", "d:art3.2"]);
    }

    #[test]
    fn intro_before_the_first_numbered_paragraph() {
        let provisions = segment("d", "Article 9\nThe Parties agree as follows.\n1. First.\n2. Second.\n");
        assert_eq!(provisions.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["d:art9", "d:art9.1", "d:art9.2"]);
        assert_eq!(provisions[0].kind, ProvisionKind::ArticleIntro);
    }

    #[test]
    fn divisions_nest_and_reset() {
        let source = "### CHAPTER  II\n\n####MEASURES\n\n###SECTION 1\n\n###TITLE 1\n####OFFENCES\n### Article 2\nText two.\n###TITLE 2\n### Article 3\nText three.\nPart III – Final provisions\nArticle 4\nText four.\n";
        let provisions = segment("d", source);
        let chapter = |id: &str| one(&provisions, id).chapter.clone().unwrap_or_default();
        assert_eq!(chapter("d:art2"), "Chapter II – MEASURES > Section 1 > Title 1 – OFFENCES");
        assert_eq!(chapter("d:art3"), "Chapter II – MEASURES > Section 1 > Title 2");
        assert_eq!(chapter("d:art4"), "Chapter II – MEASURES > Section 1 > Title 2 > Part III – Final provisions");
        let reset = segment("d", "Chapter I\nArticle 1\nA.\nSection 1\nArticle 2\nB.\nChapter II\nArticle 3\nC.\n");
        assert_eq!(one(&reset, "d:art2").chapter.as_deref(), Some("Chapter I > Section 1"));
        assert_eq!(one(&reset, "d:art3").chapter.as_deref(), Some("Chapter II"));
    }

    #[test]
    fn preamble_closing_and_a_second_instrument() {
        let source = "####Convention on Things\n\nPreamble The States Parties, considering things, have agreed as follows:\n\n### Article 1\nText.\n### Article 2\n1. One.\n2. Two.\nIN WITNESS WHEREOF the undersigned have signed.\nDONE at Rome.\n\n####Optional Protocol to the Convention\nThe States Parties to this Protocol agree:\n### Article 1\nProtocol text.\n";
        let provisions = segment("d", source);
        let got: Vec<_> = provisions.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(got, ["d:preamble", "d:art1", "d:art2.1", "d:art2.2", "d:closing", "d-2:preamble", "d-2:art1"]);
        assert_eq!(provisions[0].text, "The States Parties, considering things, have agreed as follows:");
        assert_eq!(provisions[0].instrument.as_deref(), Some("Convention on Things"));
        assert_eq!(provisions[4].text, "IN WITNESS WHEREOF the undersigned have signed. DONE at Rome.");
        assert_eq!(provisions[6].document, "d-2");
        assert_eq!(provisions[6].instrument.as_deref(), Some("Optional Protocol to the Convention"));
        // Numbering that restarts without a testimonium also opens a new instrument.
        assert_eq!(ids("Article 1\nA.\nArticle 2\nB.\nArticle 1\nC.\n"), ["d:art1", "d:art2", "d-2:art1"]);
    }

    #[test]
    fn crlf_bom_tabs_and_irregular_spacing() {
        let plain = "Article 1 – Scope\n1. Each  Party shall\tact.\n2. Second.\n";
        let messy = "\u{feff}Article\t1 –  Scope\r\n\r\n1.\tEach  Party   shall\tact.  \r\n 2.   Second.\r\n";
        let a = segment("d", plain);
        let b = segment("d", messy);
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.id, &x.text, &x.title), (&y.id, &y.text, &y.title));
        }
        assert_eq!(b[0].text, "Each Party shall act.");
        // Byte ranges point into the original bytes, BOM included.
        assert_eq!(&messy[b[0].start..b[0].end], "1.\tEach  Party   shall\tact.");
        assert_eq!(&messy[b[1].start..b[1].end], "2.   Second.");
        assert_eq!(b[0].line, 3);
    }

    #[test]
    fn byte_ranges_cover_multi_line_provisions() {
        let source = "Article 1\n1. First line\ncontinues here.\n\n2. Second.\n";
        let provisions = segment("d", source);
        assert_eq!(&source[provisions[0].start..provisions[0].end], "1. First line\ncontinues here.");
    }

    #[test]
    fn article_numbers_with_suffixes_and_duplicates() {
        assert_eq!(ids("Article 12 bis\nText.\nArticle 12ter – Title\nMore.\n"), ["d:art12bis", "d:art12ter"]);
        assert_eq!(ids("Article 5\nA.\nArticle 5\nB.\n"), ["d:art5", "d:art5~2"]);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(segment("d", "").is_empty());
        assert!(segment("d", "\u{feff}").is_empty());
        assert!(segment("d", "\n\n  \r\n").is_empty());
        assert_eq!(ids("Just some text without articles."), ["d:preamble"]);
        assert_eq!(ids("### Article 1\n"), Vec::<String>::new());
    }

    /// Lines built from the pieces the segmenter looks for, in random order,
    /// with random bytes between them: every input must segment without a
    /// panic, with ranges on character boundaries.
    #[test]
    fn never_panics_on_random_inputs() {
        let pieces = [
            "Article ",
            "Art. ",
            "ARTICLE ",
            "#",
            "###",
            "1",
            "2",
            "12",
            "(",
            ")",
            ".",
            "a)",
            "(i)",
            " ",
            "\t",
            "\r",
            "\n",
            "\n\n",
            "Chapter ",
            "PART ",
            "IV",
            "–",
            "-",
            "IN WITNESS WHEREOF",
            "Preamble",
            "*",
            "é",
            "\u{feff}",
            "ß",
            "bis",
            "Title",
            "😀",
            "Done at",
        ];
        // SplitMix64, as clause-data's splits use.
        let mut state = 42u64;
        let mut below = |n: usize| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        };
        for _ in 0..3000 {
            let len = below(60);
            let source: String = (0..len).map(|_| pieces[below(pieces.len())]).collect();
            for provision in segment("d", &source) {
                assert!(provision.start <= provision.end && provision.end <= source.len(), "{source:?}");
                assert!(
                    source.is_char_boundary(provision.start) && source.is_char_boundary(provision.end),
                    "{source:?}"
                );
                assert!(!provision.text.is_empty());
            }
        }
    }
}
