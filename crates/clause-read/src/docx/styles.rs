//! Paragraph styles (`word/styles.xml`): which styles are headings, and
//! which carry list numbering. Drafting templates attach "Article %1" and
//! "%1." numbering to styles rather than to each paragraph, so a
//! paragraph's number often comes only through its style.

use std::collections::HashMap;

use quick_xml::events::Event;

use super::{Part, Xml, attr, local};
use crate::Error;

/// How many `basedOn` links are followed: real templates chain three or
/// four; the limit also stops a style that is based on itself.
const MAX_CHAIN: usize = 16;

/// One style's properties that matter here.
#[derive(Debug, Default, Clone)]
struct Style {
    /// The name Word shows in English (`heading 1`); built-in styles keep
    /// their English name whatever the language of the template, while
    /// their ids are translated (`berschrift1`).
    name: String,
    based_on: Option<String>,
    num_id: Option<String>,
    ilvl: Option<usize>,
    /// `w:outlineLvl`: 0 for a level-1 heading; 9 is body text.
    outline: Option<usize>,
}

/// The numbering a paragraph style gives ([`Styles::numbering`]).
#[derive(Debug, Clone)]
pub(crate) struct StyleNumbering {
    pub(crate) num_id: String,
    pub(crate) ilvl: Option<usize>,
    pub(crate) style: String,
}

/// The styles of a document, by style id.
#[derive(Debug, Default)]
pub(crate) struct Styles {
    styles: HashMap<String, Style>,
    /// The paragraph style of paragraphs that name none (normally `Normal`).
    pub(crate) default_paragraph: Option<String>,
}

impl Styles {
    pub(crate) fn parse(xml: &str, part: &Part<'_>) -> Result<Self, Error> {
        let mut reader = Xml::new(xml, part);
        let mut styles = Styles::default();
        let mut current: Option<(String, Style)> = None;
        loop {
            let event = reader.next()?;
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = local(e);
                    if name == "style" {
                        let id = attr(e, "styleId").unwrap_or_default();
                        let is_paragraph = attr(e, "type").is_none_or(|t| t == "paragraph");
                        if attr(e, "default").is_some_and(|d| d == "1" || d == "true") && is_paragraph {
                            styles.default_paragraph = Some(id.clone());
                        }
                        current = Some((id, Style::default()));
                    } else if name.ends_with("Change") || name == "tblStylePr" {
                        // Earlier formatting (tracked changes) and table
                        // conditional formats are not the style's own.
                        if matches!(event, Event::Start(_)) {
                            reader.skip()?;
                        }
                    } else if let Some((_, style)) = current.as_mut() {
                        let value = attr(e, "val");
                        match name {
                            "name" => style.name = value.unwrap_or_default(),
                            "basedOn" => style.based_on = value,
                            "numId" => style.num_id = value,
                            "ilvl" => style.ilvl = value.and_then(|v| v.parse().ok()),
                            "outlineLvl" => style.outline = value.and_then(|v| v.parse().ok()),
                            _ => {}
                        }
                    }
                }
                Event::End(e) if e.local_name().as_ref() == "style" => {
                    if let Some((id, style)) = current.take() {
                        styles.styles.insert(id, style);
                    }
                }
                Event::Eof => return Ok(styles),
                _ => {}
            }
        }
    }

    /// The style and the styles it is based on, nearest first.
    fn chain<'s>(&'s self, id: &str) -> impl Iterator<Item = (&'s str, &'s Style)> + 's {
        let mut next = self.styles.get_key_value(id);
        std::iter::from_fn(move || {
            let (id, style) = next?;
            next = style.based_on.as_deref().and_then(|base| self.styles.get_key_value(base));
            Some((id.as_str(), style))
        })
        .take(MAX_CHAIN)
    }

    /// The list a style numbers its paragraphs in: the nearest `numId` in
    /// its chain, the level set beside it, and the id of the style that
    /// sets them (a list level may name it with `w:pStyle`). A `numId` of 0
    /// turns off numbering the base style would give.
    pub(crate) fn numbering(&self, id: &str) -> Option<StyleNumbering> {
        let (carrier, style) = self.chain(id).find(|(_, s)| s.num_id.is_some())?;
        let num_id = style.num_id.clone()?;
        (num_id != "0").then(|| StyleNumbering { num_id, ilvl: style.ilvl, style: carrier.to_string() })
    }

    /// The Markdown heading level (1 for a top heading) of paragraphs in a
    /// style: from its outline level, else from a built-in heading or title
    /// style's name.
    pub(crate) fn heading_level(&self, id: &str) -> Option<usize> {
        if let Some(outline) = self.chain(id).find_map(|(_, s)| s.outline) {
            return (outline < 9).then_some(outline + 1);
        }
        self.chain(id).find_map(|(_, s)| heading_name_level(&s.name))
    }
}

/// `heading 3` is level 3; `Title` is level 1.
fn heading_name_level(name: &str) -> Option<usize> {
    let name = name.trim().to_ascii_lowercase();
    if name == "title" {
        return Some(1);
    }
    let level: usize = name.strip_prefix("heading")?.trim().parse().ok()?;
    (1..=9).contains(&level).then_some(level)
}
