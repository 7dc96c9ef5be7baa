//! Word documents (Office Open XML, `.docx`): a zip archive whose
//! `word/document.xml` holds the body, `word/styles.xml` the paragraph
//! styles and `word/numbering.xml` the list numbering.
//!
//! Only the body is read. Comments, footnotes, endnotes, headers and footers
//! live in parts of their own, so they never reach the text; the body holds
//! only their reference marks, which carry no text.

use std::io::{Cursor, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use zip::ZipArchive;
use zip::result::ZipError;

use crate::{Document, Error, MAX_PART_BYTES};

mod body;
mod numbering;
mod styles;
#[cfg(test)]
mod tests;

/// The body part when the package's relationships do not name one.
const DEFAULT_MAIN_PART: &str = "word/document.xml";

/// The zip archive, the file's name for errors, and the unpacking limit.
struct Package<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    file: &'a str,
    limit: u64,
}

/// Read a `.docx` file's body into blocks.
pub(crate) fn read(bytes: &[u8], file: &str) -> Result<Document, Error> {
    read_limited(bytes, file, MAX_PART_BYTES)
}

/// [`read`] with `limit` on the bytes one part may unpack to (the tests
/// use a small one).
fn read_limited(bytes: &[u8], file: &str, limit: u64) -> Result<Document, Error> {
    let archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::NotZip { file: file.to_string(), reason: e.to_string() })?;
    let mut package = Package { archive, file, limit };
    let main = main_part(&mut package)?;
    let Some(body) = package.part(&main)? else {
        return Err(Error::NotWord { file: file.to_string(), part: main });
    };
    let related = related_parts(&mut package, &main)?;
    let styles = match package.part(&related.styles)? {
        Some(xml) => styles::Styles::parse(&xml, &Part { file, name: &related.styles })?,
        None => styles::Styles::default(),
    };
    let numbering = match package.part(&related.numbering)? {
        Some(xml) => numbering::Numbering::parse(&xml, &Part { file, name: &related.numbering }, &styles)?,
        None => numbering::Numbering::default(),
    };
    body::read(&body, &Part { file, name: &main }, &styles, numbering)
}

/// Names a part in errors.
pub(crate) struct Part<'a> {
    pub(crate) file: &'a str,
    pub(crate) name: &'a str,
}

impl Part<'_> {
    fn xml_error(&self, position: u64, reason: impl ToString) -> Error {
        Error::Xml { file: self.file.to_string(), part: self.name.to_string(), position, reason: reason.to_string() }
    }
}

/// A pull parser over one part that turns its errors into [`Error::Xml`].
pub(crate) struct Xml<'a> {
    reader: Reader<&'a [u8]>,
    part: &'a Part<'a>,
}

impl<'a> Xml<'a> {
    pub(crate) fn new(text: &'a str, part: &'a Part<'a>) -> Self {
        Self { reader: Reader::from_str(text), part }
    }

    /// The next event; `Event::Eof` at the end.
    pub(crate) fn next(&mut self) -> Result<Event<'a>, Error> {
        self.reader.read_event().map_err(|e| self.part.xml_error(self.reader.error_position(), e))
    }

    /// The text of a text or entity-reference event (`None` for others).
    pub(crate) fn text(&self, event: &Event<'a>) -> Result<Option<String>, Error> {
        match event {
            Event::Text(text) => Ok(Some(text.xml10_content().into_owned())),
            Event::CData(data) => Ok(Some(data.to_string())),
            Event::GeneralRef(reference) => {
                let resolved =
                    reference.resolve_char_ref().map_err(|e| self.part.xml_error(self.reader.buffer_position(), e))?;
                let named = match reference.as_ref() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    // Word declares no other entities; an unknown one shows nothing.
                    _ => None,
                };
                Ok(resolved.or(named).map(String::from))
            }
            _ => Ok(None),
        }
    }

    /// Skip to the end of the element whose start tag was just read.
    pub(crate) fn skip(&mut self) -> Result<(), Error> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next()? {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(self.part.xml_error(self.reader.buffer_position(), "unexpected end of part")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// An attribute's value by local name (`w:val` is `val`), unescaped.
pub(crate) fn attr(element: &BytesStart<'_>, name: &str) -> Option<String> {
    let attribute = element.attributes().flatten().find(|a| a.key.local_name().as_ref() == name)?;
    let value = attribute.normalized_value(XmlVersion::Implicit1_0).map(|v| v.into_owned());
    // A value with a broken reference is kept as written rather than lost.
    Some(value.unwrap_or_else(|_| attribute.value.to_string()))
}

/// An on/off property (`<w:vanish/>`, `<w:isLgl w:val="false"/>`): on
/// unless its value says off.
pub(crate) fn on(element: &BytesStart<'_>) -> bool {
    !matches!(attr(element, "val").as_deref(), Some("0" | "false" | "off"))
}

/// An element's local name (`w:p` is `p`). Word's own parts use the `w`
/// prefix throughout; matching local names also reads strict OOXML, whose
/// namespace differs.
pub(crate) fn local<'e>(element: &'e BytesStart<'_>) -> &'e str {
    element.local_name().into_inner()
}

impl Package<'_> {
    /// One part's text, or `None` when the archive has no such part.
    fn part(&mut self, name: &str) -> Result<Option<String>, Error> {
        let file = self.file;
        let unpack = |reason: String| Error::Unpack { file: file.to_string(), part: name.to_string(), reason };
        let too_large = || Error::TooLarge { file: file.to_string(), part: name.to_string(), limit: self.limit };
        let entry = match self.archive.by_name(name) {
            Ok(entry) => entry,
            Err(ZipError::FileNotFound) => return Ok(None),
            Err(e) => return Err(unpack(e.to_string())),
        };
        // The declared size first, then the bytes actually unpacked: the
        // header may lie.
        if entry.size() > self.limit {
            return Err(too_large());
        }
        let mut data = Vec::new();
        entry.take(self.limit + 1).read_to_end(&mut data).map_err(|e| unpack(e.to_string()))?;
        if data.len() as u64 > self.limit {
            return Err(too_large());
        }
        let data = data.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(data);
        String::from_utf8(data).map(Some).map_err(|e| {
            let position = e.utf8_error().valid_up_to() as u64;
            Part { file, name }.xml_error(position, "not UTF-8")
        })
    }
}

/// The body part the package's relationships name (`_rels/.rels`), or
/// `word/document.xml` when they name none.
fn main_part(package: &mut Package<'_>) -> Result<String, Error> {
    let name = "_rels/.rels";
    let Some(xml) = package.part(name)? else { return Ok(DEFAULT_MAIN_PART.to_string()) };
    let targets = relationships(&xml, &Part { file: package.file, name }, "")?;
    Ok(targets.into_iter().find(|(kind, _)| kind == "officeDocument").map_or(DEFAULT_MAIN_PART.to_string(), |(_, t)| t))
}

/// The styles and numbering parts of the body.
struct Related {
    styles: String,
    numbering: String,
}

/// Where the body's relationships put its styles and numbering, else
/// beside it under their usual names.
fn related_parts(package: &mut Package<'_>, main: &str) -> Result<Related, Error> {
    let (folder, leaf) = main.rsplit_once('/').unwrap_or(("", main));
    let join = |leaf: &str| if folder.is_empty() { leaf.to_string() } else { format!("{folder}/{leaf}") };
    let mut related = Related { styles: join("styles.xml"), numbering: join("numbering.xml") };
    let rels_name = join(&format!("_rels/{leaf}.rels"));
    if let Some(xml) = package.part(&rels_name)? {
        for (kind, target) in relationships(&xml, &Part { file: package.file, name: &rels_name }, folder)? {
            match kind.as_str() {
                "styles" => related.styles = target,
                "numbering" => related.numbering = target,
                _ => {}
            }
        }
    }
    Ok(related)
}

/// A relationships part's internal targets as (type's last path segment,
/// part name resolved against `folder`).
fn relationships(xml: &str, part: &Part<'_>, folder: &str) -> Result<Vec<(String, String)>, Error> {
    let mut reader = Xml::new(xml, part);
    let mut out = Vec::new();
    loop {
        match reader.next()? {
            Event::Start(e) | Event::Empty(e) if local(&e) == "Relationship" => {
                if attr(&e, "TargetMode").is_some_and(|mode| mode.eq_ignore_ascii_case("external")) {
                    continue;
                }
                let kind = attr(&e, "Type").unwrap_or_default();
                let kind = kind.rsplit('/').next().unwrap_or_default().to_string();
                if let Some(target) = attr(&e, "Target") {
                    out.push((kind, resolve(folder, &target)));
                }
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

/// A relationship target as a part name: absolute targets start at the
/// package root, relative ones at the source part's folder; `..` climbs.
fn resolve(folder: &str, target: &str) -> String {
    let mut segments: Vec<&str> = match target.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => folder.split('/').filter(|s| !s.is_empty()).collect(),
    };
    for segment in target.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    segments.join("/")
}
