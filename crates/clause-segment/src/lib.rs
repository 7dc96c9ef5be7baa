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
    /// One numbered paragraph of an article, or of a document without
    /// articles (`<document>:par<N>`).
    Paragraph,
    /// One Roman-numbered section (`I.`, `II.`) of a document without
    /// articles, such as a letter annexed to an agreement
    /// (`<document>:sec<N>`).
    Section,
    /// The testimonium and signature block that closes an instrument.
    Closing,
}

/// One provision of a segmented document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provision {
    /// `<document>:art<N>`, `<document>:art<N>.<P>`, `<document>:preamble`,
    /// `<document>:closing`, or in a document without articles
    /// `<document>:par<N>` and `<document>:sec<N>` (N the section's Roman
    /// numeral as a number).
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
    /// The paragraph number (or a section's Roman numeral) as written,
    /// without its punctuation.
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

impl Provision {
    /// The provision's text and the headings above it, as a model reads
    /// them ([`input::Context::compose`]).
    pub fn passage(&self) -> input::Passage<'_> {
        input::Passage { text: &self.text, title: self.title.as_deref(), chapter: self.chapter.as_deref() }
    }

    /// Its sentences as provisions of their own, for a model trained on
    /// sentences ([`input::Unit::Sentence`]): ids `<id>.s<N>`, and each
    /// sentence's text, range and first line in `source` (the text this
    /// provision was segmented from); the rest is this provision's. Where
    /// the cuts fall is [`spans::sentences_within`]'s rule.
    pub fn sentences(&self, source: &str) -> Vec<Provision> {
        let (mut line, mut counted) = (self.line, self.start);
        spans::sentences_within(source, self.start..self.end)
            .into_iter()
            .enumerate()
            .map(|(index, range)| {
                line += source[counted..range.start].matches('\n').count();
                counted = range.start;
                Provision {
                    id: format!("{}.s{}", self.id, index + 1),
                    text: normalise_whitespace(&source[range.clone()]),
                    line,
                    start: range.start,
                    end: range.end,
                    ..self.clone()
                }
            })
            .collect()
    }
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

mod classify;
pub mod input;
pub mod spans;
#[cfg(test)]
mod tests;

use classify::{
    DivisionKind, Line, LineKind, NumberStyle, classify, clean_title, looks_like_title, roman_value,
    strip_preamble_marker,
};

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
        if self.text.is_empty() && !matches!(self.kind, ProvisionKind::Paragraph | ProvisionKind::Section) {
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
    /// The last Roman-numbered section of an instrument without articles.
    last_section: u32,
    /// Set once the file shows a numbered paragraph or section outside any
    /// article: from then on, a heading after an instrument's text opens
    /// the next instrument (the letters annexed to an agreement).
    article_less: bool,
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
            last_section: 0,
            article_less: false,
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
                // Outside any article, `1.`, `2.`, ... in turn are the
                // paragraphs of a document that has no articles. Only in the
                // file's first instrument: an annex after the testimonium
                // lists its items so ("1. Convention for ..."), and they are
                // not provisions.
                let article_less = self.outside_articles()
                    && self.instrument_index == 1
                    && self.last_section == 0
                    && style == NumberStyle::Dot
                    && number == self.last_paragraph + 1;
                if accepted || article_less {
                    self.article_title_pending = false;
                    if let Some(open) = self.open.as_mut().filter(|o| o.kind == ProvisionKind::Article) {
                        open.kind = ProvisionKind::ArticleIntro;
                    }
                    self.paragraph_style = Some(style);
                    self.last_paragraph = number;
                    self.article_less |= article_less;
                    self.open_numbered(ProvisionKind::Paragraph, number.to_string(), &line, rest, rest_offset);
                } else {
                    self.text(line.text, &line);
                }
            }
            LineKind::Section { number, numeral, rest, rest_offset } => {
                self.division_title_pending = false;
                if self.outside_articles() && number > self.last_section {
                    self.last_section = number;
                    self.article_less = true;
                    self.open_numbered(ProvisionKind::Section, numeral.to_string(), &line, rest, rest_offset);
                } else {
                    self.text(line.text, &line);
                }
            }
            LineKind::Text => self.text(line.text, &line),
        }
    }

    /// Whether the current instrument has shown no article yet (and is not
    /// closed), so that numbered lines may be its own paragraphs or sections.
    fn outside_articles(&self) -> bool {
        self.article.is_none() && !self.seen_article && !self.closed
    }

    /// Open a numbered paragraph or section whose number (`marker`) the
    /// line starts with; its text starts at `rest`.
    fn open_numbered(&mut self, kind: ProvisionKind, marker: String, line: &Line<'_>, rest: &str, rest_offset: usize) {
        self.flush();
        let mut open = Open::new(kind, Some(marker), line);
        let rest_line = Line { number: line.number, start: line.start + rest_offset, text: rest };
        open.push(rest, &rest_line);
        open.end = line.end();
        self.open = Some(open);
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
        self.paragraph_style = None;
        self.last_paragraph = 0;
        self.last_section = 0;
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
        } else if self.article_less && self.outside_articles() {
            // In a file of instruments without articles (an agreement and the
            // letters annexed to it), a heading after text opens the next.
            self.next_instrument(Some(title));
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
            (ProvisionKind::Section, _, Some(numeral)) => format!("sec{}", roman_value(numeral).unwrap_or(0)),
            (ProvisionKind::Paragraph, None, Some(paragraph)) => format!("par{paragraph}"),
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
