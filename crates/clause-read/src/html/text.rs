//! The walk over a parsed page that collects its visible text as blocks.

use super::tree::{Data, Tree};
use crate::{Blocks, Document, Location};

/// Elements whose content a reader does not see as the page's text.
const SKIPPED: [&str; 20] = [
    "script", "style", "noscript", "template", "head", "nav", "aside", "form", "svg", "button", "select", "textarea",
    "iframe", "object", "canvas", "video", "audio", "map", "title", "datalist",
];

/// Elements that start and end a block (besides headings, list items and
/// `br`, which are handled apart).
const BLOCKS: [&str; 33] = [
    "address",
    "article",
    "blockquote",
    "body",
    "caption",
    "center",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "header",
    "hgroup",
    "hr",
    "legend",
    "main",
    "menu",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Element paths stop growing past this depth; deeper blocks are located
/// by their ancestor at this depth, which keeps locations short on
/// pathological nesting.
const MAX_PATH_DEPTH: usize = 64;

/// What an element's class says a block is, in EUR-Lex markup: the
/// Official Journal's (`ti-art`), the older `oj-` one and the consolidated
/// texts' (`title-article-norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Body,
    /// One line of the act's title; consecutive ones make one heading.
    DocumentTitle,
    ArticleNumber,
    ArticleTitle,
    DivisionNumber,
    DivisionTitle,
}

impl Role {
    fn of(classes: &str) -> Role {
        for class in classes.split_ascii_whitespace() {
            match class.strip_prefix("oj-").unwrap_or(class) {
                "doc-ti" => return Role::DocumentTitle,
                "ti-art" | "title-article-norm" => return Role::ArticleNumber,
                "sti-art" | "stitle-article-norm" => return Role::ArticleTitle,
                "ti-section-1" | "title-division-1" => return Role::DivisionNumber,
                "ti-section-2" | "title-division-2" => return Role::DivisionTitle,
                _ => {}
            }
        }
        Role::Body
    }
}

/// An open list: ordered lists count their items.
struct List {
    ordered: bool,
    next: i64,
    step: i64,
    kind: char,
}

/// An element as the walk sees it.
struct Element<'t> {
    name: &'t str,
    attributes: &'t [(String, String)],
}

impl Element<'_> {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn has_class(&self, wanted: &str) -> bool {
        self.attr("class").is_some_and(|c| c.split_ascii_whitespace().any(|class| class == wanted))
    }

    /// Whether a reader never sees the element's content.
    fn hidden(&self, in_content: bool) -> bool {
        let style = self.attr("style").unwrap_or_default().to_ascii_lowercase().replace(' ', "");
        let role = self.attr("role").unwrap_or_default();
        SKIPPED.contains(&self.name)
            // A site's header and footer are furniture; those of an article
            // or section are part of it.
            || (matches!(self.name, "header" | "footer") && !in_content)
            || (self.name == "dialog" && self.attr("open").is_none())
            || self.attr("hidden").is_some()
            || self.attr("aria-hidden").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || style.contains("display:none")
            || style.contains("visibility:hidden")
            // Footnotes (pandoc's and EUR-Lex's) and their reference marks.
            || matches!(role, "doc-endnotes" | "doc-footnote" | "doc-noteref")
            || ["footnotes", "footnote-ref", "note", "oj-note"].iter().any(|class| self.has_class(class))
            || (self.name == "a" && self.attr("id").is_some_and(|id| id.starts_with("ntc")))
    }
}

/// The walk's state.
#[derive(Default)]
struct Extractor {
    blocks: Blocks,
    /// Inline text since the last block boundary.
    buffer: String,
    /// The element path, `/`-separated, and the length it had before each
    /// element on the way down was added.
    path: String,
    path_lengths: Vec<usize>,
    /// Paths and roles of the block elements open, innermost last.
    block_stack: Vec<(String, Role)>,
    lists: Vec<List>,
    /// The number of a list item whose text has not started yet.
    item_marker: Option<String>,
    /// Open headings' levels, innermost last.
    headings: Vec<usize>,
    /// How many articles, sections and mains are open: their headers and
    /// footers are content.
    content_depth: usize,
    /// An EUR-Lex article or division number, waiting for its title.
    held_title: Option<(String, Location, Role)>,
    /// A block that is only a paragraph or item number (`1.`, `(a)`),
    /// waiting for the text laid out beside it.
    held_marker: Option<(String, Location)>,
}

/// One step of the walk: entering a node (with its position among
/// same-named siblings) or leaving an element.
enum Step {
    Enter(usize, usize),
    Leave(usize),
}

pub(crate) fn extract(tree: &Tree) -> Document {
    let mut extractor = Extractor::default();
    let mut steps = vec![Step::Enter(0, 1)];
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter(id, position) => {
                let Some(node) = tree.node(id) else { continue };
                match &node.data {
                    Data::Text(text) => extractor.text(text),
                    Data::Element { name, attributes, .. } => {
                        let element = Element { name: &name.local, attributes };
                        if element.hidden(extractor.content_depth > 0) {
                            continue;
                        }
                        let items = node.children.iter().filter(|&&c| is_named(tree, c, "li")).count();
                        extractor.enter(&element, position, items);
                        steps.push(Step::Leave(id));
                        push_children(tree, id, &mut steps);
                    }
                    Data::Document => push_children(tree, id, &mut steps),
                    Data::Other => {}
                }
            }
            Step::Leave(id) => {
                if let Some(Data::Element { name, attributes, .. }) = tree.node(id).map(|n| &n.data) {
                    extractor.leave(&Element { name: &name.local, attributes });
                }
            }
        }
    }
    extractor.finish()
}

fn is_named(tree: &Tree, id: usize, wanted: &str) -> bool {
    matches!(tree.node(id).map(|n| &n.data), Some(Data::Element { name, .. }) if &*name.local == wanted)
}

/// Queue a node's children, first child on top, each with its position
/// among the element children of the same name.
fn push_children(tree: &Tree, id: usize, steps: &mut Vec<Step>) {
    let Some(node) = tree.node(id) else { return };
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut entries = Vec::with_capacity(node.children.len());
    for &child in &node.children {
        let position = match tree.node(child).map(|n| &n.data) {
            Some(Data::Element { name, .. }) => match seen.iter_mut().find(|(n, _)| *n == &*name.local) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    seen.push((&name.local, 1));
                    1
                }
            },
            _ => 1,
        };
        entries.push(Step::Enter(child, position));
    }
    steps.extend(entries.into_iter().rev());
}

fn heading_level(name: &str) -> Option<usize> {
    let level = name.strip_prefix('h')?.parse::<usize>().ok()?;
    (1..=6).contains(&level).then_some(level)
}

impl Extractor {
    fn text(&mut self, text: &str) {
        self.buffer.push_str(text);
    }

    fn enter(&mut self, element: &Element<'_>, position: usize, items: usize) {
        let name = element.name;
        if name != "html" {
            self.path_lengths.push(self.path.len());
            if self.path_lengths.len() <= MAX_PATH_DEPTH {
                if !self.path.is_empty() {
                    self.path.push('/');
                }
                self.path.push_str(name);
                if position > 1 {
                    self.path.push_str(&format!("[{position}]"));
                }
            }
        }
        if matches!(name, "article" | "section" | "main") {
            self.content_depth += 1;
        }
        if name == "br" {
            // A line break in a heading is a space: the heading stays one line.
            if self.headings.is_empty() {
                self.flush()
            } else {
                self.buffer.push(' ')
            }
            return;
        }
        let level = heading_level(name);
        if !(BLOCKS.contains(&name) || level.is_some() || name == "li") {
            return;
        }
        self.flush();
        let role = element.attr("class").map_or(Role::Body, Role::of);
        self.block_stack.push((self.path.clone(), role));
        if let Some(level) = level {
            self.headings.push(level);
        }
        match name {
            "ol" => self.lists.push(ordered_list(element, items)),
            "ul" | "menu" | "dir" => self.lists.push(List { ordered: false, next: 1, step: 1, kind: '1' }),
            "li" => self.item_marker = self.next_item(element),
            _ => {}
        }
    }

    fn leave(&mut self, element: &Element<'_>) {
        let name = element.name;
        let level = heading_level(name);
        if BLOCKS.contains(&name) || level.is_some() || name == "li" {
            self.flush();
            self.block_stack.pop();
            if level.is_some() {
                self.headings.pop();
            }
            match name {
                "ol" | "ul" | "menu" | "dir" => {
                    self.lists.pop();
                }
                // An empty item still shows its number, on its own line.
                "li" => {
                    if let Some(marker) = self.item_marker.take() {
                        self.release_held();
                        self.release_marker();
                        let path = self.block_stack.last().map_or_else(|| self.path.clone(), |(path, _)| path.clone());
                        self.blocks.push(&marker, Location::Element(path));
                    }
                }
                _ => {}
            }
        }
        if matches!(name, "article" | "section" | "main") {
            self.content_depth = self.content_depth.saturating_sub(1);
        }
        if name != "html"
            && let Some(length) = self.path_lengths.pop()
        {
            self.path.truncate(length);
        }
    }

    /// The number a browser draws before the next item of the innermost
    /// list (`<li value>` resets the count); `None` in unordered lists.
    fn next_item(&mut self, element: &Element<'_>) -> Option<String> {
        let list = self.lists.last_mut().filter(|l| l.ordered)?;
        if let Some(value) = element.attr("value").and_then(|v| v.trim().parse::<i64>().ok()) {
            list.next = value;
        }
        let marker = format!("{}.", list_number(list.next, list.kind));
        list.next = list.next.saturating_add(list.step);
        Some(marker)
    }

    /// End the current block.
    fn flush(&mut self) {
        let text = crate::collapse(&self.buffer);
        self.buffer.clear();
        if text.is_empty() {
            return;
        }
        let text = match self.item_marker.take() {
            Some(marker) => format!("{marker} {text}"),
            None => text,
        };
        self.emit(text);
    }

    /// Add a block, joining EUR-Lex titles and paragraph numbers laid out
    /// apart from their text.
    fn emit(&mut self, text: String) {
        let (path, role) = self.block_stack.last().cloned().unwrap_or_else(|| (self.path.clone(), Role::Body));
        let location = Location::Element(path);
        match role {
            Role::DocumentTitle => {
                if let Some((held, _, Role::DocumentTitle)) = self.held_title.as_mut() {
                    held.push(' ');
                    held.push_str(&text);
                } else {
                    self.release_held();
                    self.held_title = Some((text, location, role));
                }
                return;
            }
            Role::ArticleNumber | Role::DivisionNumber => {
                self.release_held();
                self.held_title = Some((text, location, role));
                return;
            }
            Role::ArticleTitle | Role::DivisionTitle => {
                let number = if role == Role::ArticleTitle { Role::ArticleNumber } else { Role::DivisionNumber };
                if let Some((held, held_location, _)) = self.held_title.take_if(|(_, _, r)| *r == number) {
                    self.release_marker();
                    self.blocks.push(&format!("{} {held} – {text}", marks(number)), held_location);
                    return;
                }
            }
            Role::Body => {}
        }
        self.release_held();
        if let Some(level) = self.headings.last().copied() {
            self.release_marker();
            self.blocks.push(&format!("{} {text}", "#".repeat(level)), location);
        } else if is_marker(&text) && self.held_marker.is_none() {
            self.held_marker = Some((text, location));
        } else if let Some((marker, marker_location)) = self.held_marker.take() {
            self.blocks.push(&format!("{marker} {text}"), marker_location);
        } else {
            self.blocks.push(&text, location);
        }
    }

    /// An article or division number whose title never came is a heading
    /// of its own.
    fn release_held(&mut self) {
        if let Some((text, location, role)) = self.held_title.take() {
            self.release_marker();
            self.blocks.push(&format!("{} {text}", marks(role)), location);
        }
    }

    fn release_marker(&mut self) {
        if let Some((marker, location)) = self.held_marker.take() {
            self.blocks.push(&marker, location);
        }
    }

    fn finish(mut self) -> Document {
        self.flush();
        self.release_held();
        self.release_marker();
        self.blocks.finish()
    }
}

/// The Markdown heading marks of a held EUR-Lex title: articles as the
/// project's drafts write them (`####`), chapters and sections as `##`.
fn marks(role: Role) -> &'static str {
    match role {
        Role::DocumentTitle => "#",
        Role::DivisionNumber | Role::DivisionTitle => "##",
        Role::ArticleNumber | Role::ArticleTitle | Role::Body => "####",
    }
}

fn ordered_list(element: &Element<'_>, items: usize) -> List {
    let reversed = element.attr("reversed").is_some();
    let default_start = if reversed { i64::try_from(items).unwrap_or(i64::MAX) } else { 1 };
    let start = element.attr("start").and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(default_start);
    let kind = element.attr("type").and_then(|t| t.chars().next()).filter(|c| "1aAiI".contains(*c)).unwrap_or('1');
    List { ordered: true, next: start, step: if reversed { -1 } else { 1 }, kind }
}

/// An item number in an `<ol type>` style; letters and numerals only for
/// positive numbers, as browsers draw them.
fn list_number(value: i64, kind: char) -> String {
    let positive = u32::try_from(value).ok().filter(|v| *v > 0);
    let letters = |v: u32| {
        // Browsers count a..z, aa, ab, ... (bijective base 26).
        let mut v = v;
        let mut out = Vec::new();
        while v > 0 {
            let digit = (v - 1) % 26;
            out.push(char::from(b'a' + digit as u8));
            v = (v - 1) / 26;
        }
        out.into_iter().rev().collect::<String>()
    };
    match (kind, positive) {
        ('a', Some(v)) => letters(v),
        ('A', Some(v)) => letters(v).to_ascii_uppercase(),
        ('i', Some(v)) => crate::roman(v).map_or_else(|| v.to_string(), |r| r.to_ascii_lowercase()),
        ('I', Some(v)) => crate::roman(v).unwrap_or_else(|| v.to_string()),
        _ => value.to_string(),
    }
}

/// A block that is only a paragraph or item number, a dash or a bullet:
/// `1.`, `(2)`, `(a)`, `iv)`, `A.`, `—`.
fn is_marker(text: &str) -> bool {
    if matches!(text, "—" | "–" | "-" | "•") {
        return true;
    }
    let (open, rest) = match text.strip_prefix('(') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (body, close) = match rest.char_indices().last() {
        Some((at, c @ (')' | '.'))) => (&rest[..at], c),
        _ => return false,
    };
    if open && close != ')' {
        return false;
    }
    let digits = !body.is_empty() && body.len() <= 3 && body.bytes().all(|b| b.is_ascii_digit());
    let lower = !body.is_empty() && body.len() <= 5 && body.bytes().all(|b| b.is_ascii_lowercase());
    let upper = body.len() == 1 && body.bytes().all(|b| b.is_ascii_uppercase())
        || (!body.is_empty() && body.len() <= 6 && body.bytes().all(|b| b"IVXLC".contains(&b)));
    digits || lower || upper
}
