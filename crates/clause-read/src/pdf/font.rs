//! A PDF font as far as text extraction needs it: how its strings split
//! into character codes, what text each code stands for, how far each code
//! advances the pen, and whether the face is bold.
//!
//! A code's text comes from the font's `/ToUnicode` map when it has one
//! (what every producer that subsets fonts writes, LibreOffice and Word
//! included), else from its `/Encoding` (WinAnsi, MacRoman, Standard, with
//! `/Differences` by glyph name). lopdf parses both; this module asks it
//! one code at a time, since layout needs each glyph's own position.

use std::collections::HashMap;

use lopdf::{Dictionary, Document, Encoding, Object};

/// Width of a code the font gives none for, in thousandths of the font
/// size: roughly an average Latin glyph, so that positions stay plausible.
const FALLBACK_WIDTH: f64 = 500.0;

/// The most entries of a `/W` or `/Widths` array read: more than any real
/// font has glyphs, so a hostile array costs bounded work.
const MAX_WIDTHS: usize = 1 << 16;

/// A font of a page's resources, ready to decode strings shown in it.
pub(crate) struct Font<'a> {
    /// Composite (Type0) fonts take two bytes a code (Identity-H, the
    /// encoding every producer of subset CID fonts uses).
    two_byte: bool,
    /// Always the `UnicodeMapEncoding` variant (lopdf does not export the
    /// map's own type).
    to_unicode: Option<Encoding<'static>>,
    encoding: Option<Encoding<'a>>,
    widths: Widths,
    /// Glyph space to text space: 1/1000 except for Type3 fonts, whose
    /// `/FontMatrix` says.
    scale: f64,
    pub(crate) bold: bool,
    /// Decoded codes, so that each code is looked up once.
    cache: HashMap<u32, String>,
}

/// Advance widths in glyph-space units.
enum Widths {
    /// A simple font's `/Widths` from `/FirstChar` on.
    Simple { first: u32, widths: Vec<f64>, missing: f64 },
    /// A CID font's `/W` entries and `/DW`.
    Cid { widths: HashMap<u32, f64>, default: f64 },
}

/// One character code of a string, with the text it shows.
pub(crate) struct Code<'f> {
    pub(crate) text: &'f str,
    /// Advance in text-space units per unit of font size.
    pub(crate) advance: f64,
    /// A single-byte code 32, which word spacing (`Tw`) applies to.
    pub(crate) is_space: bool,
}

impl<'a> Font<'a> {
    /// Read a font dictionary; `limit` bounds the decompressed size of its
    /// `/ToUnicode` stream.
    pub(crate) fn new(dict: &'a Dictionary, doc: &'a Document, limit: usize) -> Font<'a> {
        let subtype = dict.get(b"Subtype").and_then(Object::as_name).unwrap_or_default();
        let two_byte = subtype == b"Type0";
        let descendant = if two_byte { descendant(dict, doc) } else { None };
        let to_unicode = dict.get(b"ToUnicode").ok().and_then(|object| to_unicode(object, doc, limit));
        // A composite font's /Encoding names a CMap, not a character set.
        let encoding = if two_byte { None } else { dict.get_font_encoding_with_limit(doc, limit).ok() };
        let widths = match descendant {
            Some(cid) => cid_widths(cid, doc),
            None => simple_widths(dict, doc),
        };
        let scale = if subtype == b"Type3" { type3_scale(dict, doc) } else { 0.001 };
        let bold = is_bold(dict, doc) || descendant.is_some_and(|cid| is_bold(cid, doc));
        Font { two_byte, to_unicode, encoding, widths, scale, bold, cache: HashMap::new() }
    }

    /// Whether the font's codes are two bytes long ([`codes`]).
    pub(crate) fn two_byte(&self) -> bool {
        self.two_byte
    }

    /// What one code shows and how far it advances.
    pub(crate) fn code(&mut self, code: u32) -> Code<'_> {
        let advance = self.widths.of(code) * self.scale;
        let is_space = !self.two_byte && code == 32;
        if !self.cache.contains_key(&code) {
            let text = self.decode(code);
            self.cache.insert(code, text);
        }
        let text = self.cache.get(&code).map_or("", String::as_str);
        Code { text, advance, is_space }
    }

    fn decode(&self, code: u32) -> String {
        let length = if self.two_byte { 2 } else { 1 };
        if let Some(Encoding::UnicodeMapEncoding(map)) = &self.to_unicode
            && let Some(units) = map.get(code, length)
        {
            return clean(&String::from_utf16_lossy(&units));
        }
        match (&self.encoding, u8::try_from(code)) {
            (Some(encoding), Ok(byte)) => {
                encoding.bytes_to_string(&[byte]).map(|text| clean(&text)).unwrap_or_default()
            }
            // A CID font without a /ToUnicode map: its codes are glyph ids,
            // which say nothing about the text.
            _ => String::new(),
        }
    }
}

/// The codes of a string shown in a font whose codes are one or two
/// (`two_byte`) bytes long, in order. A composite font's odd last byte is
/// dropped (no such code exists).
pub(crate) fn codes(bytes: &[u8], two_byte: bool) -> impl Iterator<Item = u32> + '_ {
    let width = if two_byte { 2 } else { 1 };
    bytes.chunks_exact(width).map(|code| code.iter().fold(0u32, |value, b| (value << 8) | u32::from(*b)))
}

/// Text a code maps to, without control characters and the replacement
/// character that stand for "no mapping", and with typographic ligatures
/// (`ﬁ`) spelt out: the draft's words, not its glyphs.
fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{fb00}' => out.push_str("ff"),
            '\u{fb01}' => out.push_str("fi"),
            '\u{fb02}' => out.push_str("fl"),
            '\u{fb03}' => out.push_str("ffi"),
            '\u{fb04}' => out.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => out.push_str("st"),
            '\u{fffd}' => {}
            c if c.is_control() && !c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// The `/ToUnicode` map, parsed by lopdf (through a font dictionary that
/// has nothing else, so that lopdf does not prefer the `/Encoding`).
fn to_unicode(object: &Object, doc: &Document, limit: usize) -> Option<Encoding<'static>> {
    let mut only = Dictionary::new();
    only.set("Type", Object::Name(b"Font".to_vec()));
    only.set("ToUnicode", object.clone());
    match only.get_font_encoding_with_limit(doc, limit) {
        Ok(Encoding::UnicodeMapEncoding(map)) => Some(Encoding::UnicodeMapEncoding(map)),
        _ => None,
    }
}

fn descendant<'a>(dict: &'a Dictionary, doc: &'a Document) -> Option<&'a Dictionary> {
    let array = dict.get_deref(b"DescendantFonts", doc).and_then(Object::as_array).ok()?;
    let first = array.first()?;
    doc.dereference(first).ok()?.1.as_dict().ok()
}

fn number(object: &Object, doc: &Document) -> Option<f64> {
    let object = doc.dereference(object).ok()?.1;
    object.as_float().ok().map(f64::from).filter(|n| n.is_finite())
}

fn simple_widths(dict: &Dictionary, doc: &Document) -> Widths {
    let first = dict.get(b"FirstChar").ok().and_then(|o| number(o, doc)).map_or(0, |n| n.clamp(0.0, 255.0) as u32);
    let widths = dict
        .get_deref(b"Widths", doc)
        .and_then(Object::as_array)
        .map(|array| array.iter().take(MAX_WIDTHS).map(|o| number(o, doc).unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let missing = dict
        .get_deref(b"FontDescriptor", doc)
        .and_then(Object::as_dict)
        .ok()
        .and_then(|descriptor| descriptor.get(b"MissingWidth").ok())
        .and_then(|o| number(o, doc))
        .filter(|w| *w > 0.0)
        .unwrap_or(FALLBACK_WIDTH);
    Widths::Simple { first, widths, missing }
}

/// `/W` is a list of `c [w1 w2 ...]` (widths from code c on) and
/// `c_first c_last w` (one width for a range).
fn cid_widths(cid: &Dictionary, doc: &Document) -> Widths {
    let default = cid.get(b"DW").ok().and_then(|o| number(o, doc)).unwrap_or(1000.0);
    let mut widths = HashMap::new();
    let entries = cid.get_deref(b"W", doc).and_then(Object::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut index = 0;
    while index < entries.len() && widths.len() < MAX_WIDTHS {
        let Some(start) = entries.get(index).and_then(|o| number(o, doc)) else { break };
        let start = start.clamp(0.0, f64::from(u32::MAX)) as u32;
        match entries.get(index + 1).map(|o| doc.dereference(o).map(|(_, o)| o)) {
            Some(Ok(Object::Array(list))) => {
                for (offset, width) in list.iter().take(MAX_WIDTHS).enumerate() {
                    let code = start.saturating_add(offset as u32);
                    widths.insert(code, number(width, doc).unwrap_or(default));
                }
                index += 2;
            }
            Some(Ok(end)) => {
                let end = number(end, doc).map_or(start, |e| e.clamp(0.0, f64::from(u32::MAX)) as u32);
                let width = entries.get(index + 2).and_then(|o| number(o, doc)).unwrap_or(default);
                let last = end.min(start.saturating_add(MAX_WIDTHS as u32));
                for code in start..=last {
                    widths.insert(code, width);
                }
                index += 3;
            }
            _ => break,
        }
    }
    Widths::Cid { widths, default }
}

impl Widths {
    fn of(&self, code: u32) -> f64 {
        let width = match self {
            Widths::Simple { first, widths, missing } => {
                code.checked_sub(*first).and_then(|i| widths.get(i as usize)).copied().unwrap_or(*missing)
            }
            Widths::Cid { widths, default } => widths.get(&code).copied().unwrap_or(*default),
        };
        if width.is_finite() { width.clamp(0.0, 10_000.0) } else { FALLBACK_WIDTH }
    }
}

/// A Type3 font's glyph space is scaled by its `/FontMatrix` (commonly
/// 0.001, but a producer may pick any).
fn type3_scale(dict: &Dictionary, doc: &Document) -> f64 {
    let matrix = dict.get_deref(b"FontMatrix", doc).and_then(Object::as_array).ok();
    let scale = matrix.and_then(|m| m.first()).and_then(|o| number(o, doc)).map(f64::abs);
    scale.filter(|s| *s > 0.0 && *s < 1.0).unwrap_or(0.001)
}

/// Bold by name (`Arial-BoldMT`, `ABCDEF+Carlito-Bold`), by weight, or by
/// the ForceBold flag.
fn is_bold(dict: &Dictionary, doc: &Document) -> bool {
    let name = dict.get(b"BaseFont").and_then(Object::as_name).unwrap_or_default();
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    if ["bold", "black", "heavy", "semibold", "demi"].iter().any(|word| name.contains(word)) {
        return true;
    }
    let Ok(descriptor) = dict.get_deref(b"FontDescriptor", doc).and_then(Object::as_dict) else { return false };
    let weight = descriptor.get(b"FontWeight").ok().and_then(|o| number(o, doc)).unwrap_or(0.0);
    let flags = descriptor.get(b"Flags").ok().and_then(|o| number(o, doc)).unwrap_or(0.0) as i64;
    const FORCE_BOLD: i64 = 1 << 18;
    weight >= 600.0 || flags & FORCE_BOLD != 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn ligatures_are_spelt_out_and_controls_dropped() {
        assert_eq!(super::clean("\u{fb01}nal e\u{fb00}ect\u{fffd}\u{1}"), "final effect");
        assert_eq!(super::clean(" "), " ");
    }
}
