//! Word list numbering (`word/numbering.xml`): the number Word displays
//! before a numbered paragraph. UN and EU drafts write their "Article 5"
//! headings and "1." paragraphs only as numbering, so the text has to carry
//! what Word shows for the segmenter to see them.
//!
//! A list is an abstract definition (`w:abstractNum`: per level a start
//! value, a number format and a level text such as `Article %1` or `(%2)`)
//! and instances of it (`w:num`) that paragraphs name by `numId`. As Word
//! does, instances of one abstract list share their counters, so a list
//! split in two by other paragraphs continues; an instance that overrides a
//! level's start (`w:lvlOverride/w:startOverride`) restarts that level where
//! it is first used. Using a level restarts the deeper ones, unless a
//! deeper level says otherwise (`w:lvlRestart`).

use std::collections::{HashMap, HashSet};

use quick_xml::events::{BytesStart, Event};

use super::styles::Styles;
use super::{Part, Xml, attr, local, on};
use crate::Error;

/// Word lists have nine levels.
const LEVELS: usize = 9;

/// How many `numStyleLink` hops are followed to reach a list's definition.
const MAX_LINKS: usize = 4;

/// A level's number format (`w:numFmt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum NumFormat {
    #[default]
    Decimal,
    DecimalZero,
    LowerLetter,
    UpperLetter,
    LowerRoman,
    UpperRoman,
    /// A bullet: no number, and no text for the segmenter.
    Bullet,
    /// The number is not shown (the level text's other characters are).
    None,
}

impl NumFormat {
    /// Formats outside this list (ordinals, spelled-out and East Asian
    /// counting) are shown as decimal numbers: their value is what matters.
    fn parse(value: &str) -> Self {
        match value {
            "decimalZero" => Self::DecimalZero,
            "lowerLetter" => Self::LowerLetter,
            "upperLetter" => Self::UpperLetter,
            "lowerRoman" => Self::LowerRoman,
            "upperRoman" => Self::UpperRoman,
            "bullet" => Self::Bullet,
            "none" => Self::None,
            _ => Self::Decimal,
        }
    }

    fn render(self, value: u32) -> String {
        match self {
            Self::Decimal => value.to_string(),
            Self::DecimalZero => format!("{value:02}"),
            Self::LowerLetter => letters(value).unwrap_or_else(|| value.to_string()),
            Self::UpperLetter => letters(value).map_or_else(|| value.to_string(), |s| s.to_ascii_uppercase()),
            Self::LowerRoman => crate::roman(value).map_or_else(|| value.to_string(), |s| s.to_ascii_lowercase()),
            Self::UpperRoman => crate::roman(value).unwrap_or_else(|| value.to_string()),
            Self::Bullet | Self::None => String::new(),
        }
    }
}

/// Word's letter numbering: a..z, then aa..zz, aaa..zzz (the letter
/// repeated, not a base-26 count).
fn letters(value: u32) -> Option<String> {
    let index = value.checked_sub(1)?;
    let letter = char::from(b'a' + (index % 26) as u8);
    let count = (index / 26 + 1) as usize;
    (count <= 20).then(|| std::iter::repeat_n(letter, count).collect())
}

/// One level of a list (`w:lvl`).
#[derive(Debug, Clone, Default)]
struct Level {
    /// `w:start`; the standard's default is 0.
    start: u32,
    format: NumFormat,
    /// `w:lvlText`, with `%1`..`%9` standing for the levels' numbers.
    text: String,
    /// `w:lvlRestart`: the 1-based level whose use restarts this one; 0
    /// never restarts; absent, any shallower level restarts it.
    restart: Option<usize>,
    /// `w:isLgl`: every number in the level text shown as decimal.
    legal: bool,
    /// `w:pStyle`: the paragraph style this level belongs to.
    style: Option<String>,
    /// What follows the number: a tab or a space (shown as a space), or
    /// nothing.
    separated: bool,
}

type Levels = [Option<Level>; LEVELS];

#[derive(Debug, Default)]
struct AbstractList {
    levels: Levels,
    /// `w:numStyleLink`: the definition lives in the list a numbering style
    /// names.
    style_link: Option<String>,
}

#[derive(Debug, Default)]
struct Instance {
    abstract_id: String,
    start_overrides: [Option<u32>; LEVELS],
    /// Whole levels redefined by `w:lvlOverride/w:lvl`.
    levels: Levels,
}

/// The counters of one abstract list.
#[derive(Debug, Default)]
struct Counters {
    /// The last number shown at each level, `None` until used or after a
    /// restart.
    values: [Option<u32>; LEVELS],
    /// Start values set by an instance's overrides.
    starts: [Option<u32>; LEVELS],
}

/// The number a paragraph shows, and whether a space separates it from
/// the paragraph's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Label {
    pub(crate) text: String,
    pub(crate) separated: bool,
}

/// A document's list definitions and the counters of a pass through it.
#[derive(Debug, Default)]
pub(crate) struct Numbering {
    abstracts: HashMap<String, AbstractList>,
    instances: HashMap<String, Instance>,
    /// `numStyleLink` resolved: style id to the `numId` that style sets.
    style_nums: HashMap<String, String>,
    counters: HashMap<String, Counters>,
    /// Instances whose start overrides have been applied.
    used: HashSet<String>,
}

/// Where the parser is inside `word/numbering.xml`.
#[derive(Default)]
struct Cursor {
    abstract_id: Option<String>,
    num_id: Option<String>,
    override_level: Option<usize>,
    level: Option<(usize, Level)>,
}

impl Numbering {
    pub(crate) fn parse(xml: &str, part: &Part<'_>, styles: &Styles) -> Result<Self, Error> {
        let mut reader = Xml::new(xml, part);
        let mut numbering = Numbering::default();
        let mut cursor = Cursor::default();
        loop {
            let event = reader.next()?;
            match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let name = local(e);
                    if name.ends_with("Change") && matches!(event, Event::Start(_)) {
                        reader.skip()?;
                        continue;
                    }
                    numbering.start(&mut cursor, e);
                    if matches!(event, Event::Empty(_)) {
                        numbering.end(&mut cursor, name);
                    }
                }
                Event::End(e) => numbering.end(&mut cursor, e.local_name().as_ref()),
                Event::Eof => break,
                _ => {}
            }
        }
        for list in numbering.abstracts.values() {
            if let Some(style) = &list.style_link
                && let Some(link) = styles.numbering(style)
            {
                numbering.style_nums.insert(style.clone(), link.num_id);
            }
        }
        Ok(numbering)
    }

    fn start(&mut self, cursor: &mut Cursor, e: &BytesStart<'_>) {
        let value = || attr(e, "val");
        let number = || value().and_then(|v| v.trim().parse::<u32>().ok());
        match local(e) {
            "abstractNum" => cursor.abstract_id = attr(e, "abstractNumId"),
            "num" => {
                cursor.num_id = attr(e, "numId");
                if let Some(id) = &cursor.num_id {
                    self.instances.insert(id.clone(), Instance::default());
                }
            }
            "lvlOverride" => cursor.override_level = attr(e, "ilvl").and_then(|v| v.parse().ok()),
            "lvl" => {
                let ilvl = attr(e, "ilvl").and_then(|v| v.parse().ok()).unwrap_or(0);
                cursor.level = Some((ilvl, Level { separated: true, ..Level::default() }));
            }
            "abstractNumId" => {
                if let Some(instance) = cursor.num_id.as_ref().and_then(|id| self.instances.get_mut(id)) {
                    instance.abstract_id = value().unwrap_or_default();
                }
            }
            "startOverride" => {
                let instance = cursor.num_id.as_ref().and_then(|id| self.instances.get_mut(id));
                if let (Some(instance), Some(ilvl)) = (instance, cursor.override_level)
                    && let Some(slot) = instance.start_overrides.get_mut(ilvl)
                {
                    *slot = number();
                }
            }
            "numStyleLink" => {
                if let Some(id) = &cursor.abstract_id {
                    self.abstracts.entry(id.clone()).or_default().style_link = value();
                }
            }
            name => {
                let Some((_, level)) = cursor.level.as_mut() else { return };
                match name {
                    "start" => level.start = number().unwrap_or(0),
                    "numFmt" => level.format = NumFormat::parse(&value().unwrap_or_default()),
                    "lvlText" => level.text = value().unwrap_or_default(),
                    "lvlRestart" => level.restart = number().map(|n| n as usize),
                    "isLgl" => level.legal = on(e),
                    "pStyle" => level.style = value(),
                    "suff" => level.separated = value().as_deref() != Some("nothing"),
                    _ => {}
                }
            }
        }
    }

    fn end(&mut self, cursor: &mut Cursor, name: &str) {
        match name {
            "lvl" => {
                let Some((ilvl, level)) = cursor.level.take() else { return };
                match (&cursor.num_id, &cursor.abstract_id) {
                    // An instance that redefines a level starts it afresh
                    // at the new definition's start, as an override would.
                    (Some(num), _) => {
                        let Some(instance) = self.instances.get_mut(num) else { return };
                        if let (Some(start), Some(slot)) =
                            (instance.start_overrides.get_mut(ilvl), instance.levels.get_mut(ilvl))
                        {
                            start.get_or_insert(level.start);
                            *slot = Some(level);
                        }
                    }
                    (None, Some(id)) => {
                        if let Some(slot) = self.abstracts.entry(id.clone()).or_default().levels.get_mut(ilvl) {
                            *slot = Some(level);
                        }
                    }
                    (None, None) => {}
                }
            }
            "lvlOverride" => cursor.override_level = None,
            "num" => cursor.num_id = None,
            "abstractNum" => cursor.abstract_id = None,
            _ => {}
        }
    }

    /// The abstract list an instance draws on, through numbering-style
    /// links.
    fn abstract_of(&self, num_id: &str) -> Option<(&str, &AbstractList)> {
        let mut id = self.instances.get(num_id)?.abstract_id.as_str();
        for _ in 0..=MAX_LINKS {
            let list = self.abstracts.get(id)?;
            let Some(style) = &list.style_link else { return Some((id, list)) };
            let linked_num = self.style_nums.get(style)?;
            id = self.instances.get(linked_num)?.abstract_id.as_str();
        }
        None
    }

    /// The level a paragraph in `style` takes in list `num_id` when neither
    /// the paragraph nor its style sets one: the level that names the
    /// style, else the first.
    pub(crate) fn level_of_style(&self, num_id: &str, style: &str) -> usize {
        let Some((_, list)) = self.abstract_of(num_id) else { return 0 };
        list.levels.iter().position(|l| l.as_ref().is_some_and(|l| l.style.as_deref() == Some(style))).unwrap_or(0)
    }

    /// Count a paragraph at level `ilvl` of list `num_id` and return the
    /// number Word shows before it; `None` when the list or level is not
    /// defined or shows nothing (bullets).
    pub(crate) fn next(&mut self, num_id: &str, ilvl: usize) -> Option<Label> {
        let ilvl = ilvl.min(LEVELS - 1);
        let (abstract_id, levels, overrides) = {
            let (abstract_id, list) = self.abstract_of(num_id)?;
            let instance = self.instances.get(num_id)?;
            let levels: Levels = std::array::from_fn(|i| instance.levels[i].clone().or_else(|| list.levels[i].clone()));
            (abstract_id.to_string(), levels, instance.start_overrides)
        };
        let level = levels[ilvl].clone()?;
        let counters = self.counters.entry(abstract_id).or_default();
        if self.used.insert(num_id.to_string()) {
            for (i, start) in overrides.iter().enumerate() {
                if start.is_some() {
                    counters.starts[i] = *start;
                    counters.values[i] = None;
                }
            }
        }
        let start_of = |counters: &Counters, i: usize| {
            counters.starts[i].or_else(|| levels[i].as_ref().map(|l| l.start)).unwrap_or(0)
        };
        let value = match counters.values[ilvl] {
            Some(previous) => previous.saturating_add(1),
            None => start_of(counters, ilvl),
        };
        counters.values[ilvl] = Some(value);
        for (value, deeper) in counters.values.iter_mut().zip(&levels).skip(ilvl + 1) {
            let restart = deeper.as_ref().and_then(|l| l.restart);
            if restart.is_none_or(|after| ilvl < after) {
                *value = None;
            }
        }
        if level.format == NumFormat::Bullet {
            return None;
        }
        let text = expand(&level, &levels, |i| counters.values[i].unwrap_or_else(|| start_of(counters, i)));
        Some(Label { text, separated: level.separated })
    }
}

/// The level text with `%1`..`%9` replaced by each level's number in that
/// level's format (decimal throughout for a legal-style level).
fn expand(level: &Level, levels: &Levels, value: impl Fn(usize) -> u32) -> String {
    let mut out = String::new();
    let mut chars = level.text.chars().peekable();
    while let Some(c) = chars.next() {
        let referenced = chars.peek().and_then(|d| d.to_digit(10)).filter(|d| (1..=9).contains(d));
        match (c, referenced) {
            ('%', Some(digit)) => {
                chars.next();
                let i = digit as usize - 1;
                let format = match &levels[i] {
                    _ if level.legal => NumFormat::Decimal,
                    Some(referenced) => referenced.format,
                    None => NumFormat::Decimal,
                };
                out.push_str(&format.render(value(i)));
            }
            _ => out.push(c),
        }
    }
    out
}
