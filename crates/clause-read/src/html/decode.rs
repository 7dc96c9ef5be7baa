//! Bytes to text. Pages are UTF-8 almost everywhere now; the one legacy
//! encoding still met on government and older company sites is
//! windows-1252 (which browsers also use for pages labelled ISO-8859-1), so
//! it is decoded here rather than through a general encoding library.
//! Anything else is an error that says which charset the page declares.

use std::borrow::Cow;

use crate::Error;

/// The page's text: UTF-8 (with or without a byte-order mark), UTF-16 with
/// a byte-order mark, or windows-1252 when the page declares it (or
/// ISO-8859-1, ASCII). Valid UTF-8 is taken as UTF-8 whatever the page
/// declares.
pub(crate) fn decode<'a>(bytes: &'a [u8], file: &str) -> Result<Cow<'a, str>, Error> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|_| Error::Encoding { file: file.to_string(), declared: Some("UTF-8 (byte-order mark)".into()) });
    }
    if let Some(text) = utf16(bytes) {
        return Ok(Cow::Owned(text));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    let head = bytes.get(..4096).unwrap_or(bytes);
    let declared = declared_charset(head);
    match declared.as_deref() {
        Some(
            "windows-1252" | "cp1252" | "x-cp1252" | "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "latin1" | "l1"
            | "us-ascii" | "ascii",
        ) => Ok(Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect())),
        _ => Err(Error::Encoding { file: file.to_string(), declared }),
    }
}

/// UTF-16 text announced by a byte-order mark, with unpaired surrogates
/// replaced; `None` without the mark.
fn utf16(bytes: &[u8]) -> Option<String> {
    let little = match bytes.get(..2)? {
        [0xFF, 0xFE] => true,
        [0xFE, 0xFF] => false,
        _ => return None,
    };
    let units = bytes.get(2..)?.chunks_exact(2).map(|pair| {
        let pair = [pair.first().copied().unwrap_or(0), pair.get(1).copied().unwrap_or(0)];
        if little { u16::from_le_bytes(pair) } else { u16::from_be_bytes(pair) }
    });
    Some(char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
}

/// The charset a `<meta charset>` or `<meta http-equiv content>` in the
/// first bytes names, lower-cased.
fn declared_charset(head: &[u8]) -> Option<String> {
    let lower = head.to_ascii_lowercase();
    let key = b"charset=";
    let at = lower.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = lower.get(at..)?;
    let rest = rest.strip_prefix(b"\"").or_else(|| rest.strip_prefix(b"'")).unwrap_or(rest);
    let end = rest.iter().position(|b| matches!(b, b'"' | b'\'' | b';' | b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'));
    let name = rest.get(..end.unwrap_or(rest.len()))?;
    let name = String::from_utf8_lossy(name).into_owned();
    (!name.is_empty() && name.len() <= 40).then_some(name)
}

/// One windows-1252 byte as a character (bytes 0x80–0x9F are the
/// typographic marks; the five undefined ones map to the C1 controls, as
/// browsers do).
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž', '\u{8F}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}', 'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH.get(usize::from(byte - 0x80)).copied().unwrap_or(char::REPLACEMENT_CHARACTER),
        _ => char::from(byte),
    }
}
