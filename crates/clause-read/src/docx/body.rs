//! The body of a Word document (`word/document.xml`) in one streaming pass:
//! paragraphs in order, each a block with the number Word shows before it
//! and, for heading styles, Markdown `#` marks; each table cell a block.
//!
//! Tracked changes read as if accepted: insertions and moves' destinations
//! stay, deletions and moves' sources go, and a paragraph whose mark was
//! deleted runs on into the next. Formatting changes keep the current
//! formatting. Hidden text (`w:vanish`) and floating shapes and text boxes
//! (drawings) are not read.

use quick_xml::events::{BytesStart, Event};

use super::numbering::Numbering;
use super::styles::Styles;
use super::{Part, Xml, attr, local, on};
use crate::{Blocks, Document, Error, Location};

/// Elements whose whole content is left out: deleted and moved-away text,
/// earlier formatting kept by tracked changes (`*Change`, handled apart),
/// drawings and text boxes, content-control settings, phonetic guides.
const SKIPPED: [&str; 8] = ["del", "moveFrom", "drawing", "pict", "AlternateContent", "object", "sdtPr", "rt"];

/// The paragraph being read.
#[derive(Default)]
struct Paragraph {
    index: usize,
    text: String,
    style: Option<String>,
    num_id: Option<String>,
    ilvl: Option<usize>,
    outline: Option<usize>,
    /// The paragraph mark itself was deleted (tracked): its text joins the
    /// next paragraph.
    mark_deleted: bool,
}

/// A table cell being read: its paragraphs make one block.
struct Cell {
    text: String,
    first_paragraph: Option<usize>,
}

struct Reader<'a> {
    styles: &'a Styles,
    numbering: Numbering,
    blocks: Blocks,
    paragraphs: usize,
    paragraph: Option<Paragraph>,
    /// Text (and first paragraph) of paragraphs whose marks were deleted.
    carried: Option<(String, usize)>,
    cells: Vec<Cell>,
    in_paragraph_properties: bool,
    in_run_properties: bool,
    in_text: bool,
    run_hidden: bool,
}

pub(crate) fn read(xml: &str, part: &Part<'_>, styles: &Styles, numbering: Numbering) -> Result<Document, Error> {
    let mut xml_reader = Xml::new(xml, part);
    let mut reader = Reader {
        styles,
        numbering,
        blocks: Blocks::default(),
        paragraphs: 0,
        paragraph: None,
        carried: None,
        cells: Vec::new(),
        in_paragraph_properties: false,
        in_run_properties: false,
        in_text: false,
        run_hidden: false,
    };
    let mut root_seen = false;
    loop {
        let event = xml_reader.next()?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let name = local(e);
                if !root_seen {
                    root_seen = true;
                    if name != "document" {
                        return Err(Error::NotWord { file: part.file.to_string(), part: part.name.to_string() });
                    }
                }
                let is_start = matches!(event, Event::Start(_));
                let skipped = SKIPPED.contains(&name) || name.ends_with("Change");
                if skipped && !reader.deleted_mark(name) {
                    if is_start {
                        xml_reader.skip()?;
                    }
                    continue;
                }
                reader.start(e);
                if !is_start {
                    reader.end(name);
                }
            }
            Event::End(e) => reader.end(e.local_name().as_ref()),
            Event::Eof => break,
            other => {
                if reader.in_text
                    && !reader.run_hidden
                    && let Some(text) = xml_reader.text(other)?
                    && let Some(paragraph) = reader.paragraph.as_mut()
                {
                    paragraph.text.push_str(&text);
                }
            }
        }
    }
    if !root_seen {
        return Err(Error::NotWord { file: part.file.to_string(), part: part.name.to_string() });
    }
    reader.finish();
    Ok(reader.blocks.finish())
}

impl Reader<'_> {
    /// A `w:del` or `w:moveFrom` in the paragraph mark's properties deletes
    /// the mark (the paragraph runs on) rather than text; note it.
    fn deleted_mark(&mut self, name: &str) -> bool {
        let is_mark = self.in_paragraph_properties && self.in_run_properties && (name == "del" || name == "moveFrom");
        if is_mark && let Some(paragraph) = self.paragraph.as_mut() {
            paragraph.mark_deleted = true;
        }
        is_mark
    }

    fn start(&mut self, e: &BytesStart<'_>) {
        let name = local(e);
        match name {
            "p" => {
                self.paragraphs += 1;
                self.paragraph = Some(Paragraph { index: self.paragraphs, ..Paragraph::default() });
            }
            "tc" => self.start_cell(),
            "pPr" => self.in_paragraph_properties = true,
            "rPr" => self.in_run_properties = true,
            "r" => self.run_hidden = false,
            "t" => self.in_text = true,
            _ => {}
        }
        let Some(paragraph) = self.paragraph.as_mut() else { return };
        if self.in_paragraph_properties && !self.in_run_properties {
            let value = attr(e, "val");
            match name {
                "pStyle" => paragraph.style = value,
                "numId" => paragraph.num_id = value,
                "ilvl" => paragraph.ilvl = value.and_then(|v| v.parse().ok()),
                "outlineLvl" => paragraph.outline = value.and_then(|v| v.parse().ok()),
                _ => {}
            }
        } else if self.in_run_properties {
            if matches!(name, "vanish" | "specVanish") && !self.in_paragraph_properties {
                self.run_hidden = on(e);
            }
        } else if !self.run_hidden {
            match name {
                // Tabs and line breaks inside a paragraph separate words.
                "tab" | "br" | "cr" | "ptab" => paragraph.text.push(' '),
                "noBreakHyphen" => paragraph.text.push('-'),
                _ => {}
            }
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "p" => self.end_paragraph(),
            "tc" => self.end_cell(),
            "pPr" => self.in_paragraph_properties = false,
            "rPr" => self.in_run_properties = false,
            "t" => self.in_text = false,
            "r" => self.run_hidden = false,
            _ => {}
        }
    }

    fn end_paragraph(&mut self) {
        let Some(paragraph) = self.paragraph.take() else { return };
        if paragraph.mark_deleted {
            let carried = self.carried.get_or_insert_with(|| (String::new(), paragraph.index));
            carried.0.push_str(&paragraph.text);
            return;
        }
        let (carried, first_index) = self.carried.take().unwrap_or((String::new(), paragraph.index));
        let style = paragraph.style.clone().or_else(|| self.styles.default_paragraph.clone());
        let label = self.label(&paragraph, style.as_deref());
        let mut block = String::new();
        if self.cells.is_empty()
            && let Some(level) = match paragraph.outline {
                Some(outline) => (outline < 9).then_some(outline + 1),
                None => style.as_deref().and_then(|s| self.styles.heading_level(s)),
            }
        {
            block.push_str(&"#".repeat(level.min(6)));
            block.push(' ');
        }
        if let Some(label) = label.filter(|l| !l.text.trim().is_empty()) {
            block.push_str(&label.text);
            if label.separated {
                block.push(' ');
            }
        }
        block.push_str(&carried);
        block.push_str(&paragraph.text);
        match self.cells.last_mut() {
            Some(cell) => {
                cell.first_paragraph.get_or_insert(first_index);
                cell.text.push(' ');
                cell.text.push_str(&block);
            }
            None => self.blocks.push(&block, Location::Paragraph(first_index)),
        }
    }

    /// The number Word shows before the paragraph: its own numbering, else
    /// its style's.
    fn label(&mut self, paragraph: &Paragraph, style: Option<&str>) -> Option<super::numbering::Label> {
        let from_style = style.and_then(|s| self.styles.numbering(s));
        let num_id = match (&paragraph.num_id, &from_style) {
            (Some(own), _) => own.clone(),
            (None, Some(styled)) => styled.num_id.clone(),
            (None, None) => return None,
        };
        if num_id == "0" {
            return None;
        }
        let ilvl = paragraph
            .ilvl
            .or_else(|| from_style.as_ref().and_then(|s| s.ilvl))
            .unwrap_or_else(|| from_style.as_ref().map_or(0, |s| self.numbering.level_of_style(&num_id, &s.style)));
        self.numbering.next(&num_id, ilvl)
    }

    /// A cell opens a block; a cell nested in another closes the outer
    /// cell's text so far as its own block.
    fn start_cell(&mut self) {
        self.flush_cell();
        self.cells.push(Cell { text: String::new(), first_paragraph: None });
    }

    fn end_cell(&mut self) {
        if let Some(cell) = self.cells.pop()
            && let Some(first) = cell.first_paragraph
        {
            self.blocks.push(&cell.text, Location::Paragraph(first));
        }
    }

    fn flush_cell(&mut self) {
        if let Some(cell) = self.cells.last_mut()
            && let Some(first) = cell.first_paragraph.take()
        {
            let text = std::mem::take(&mut cell.text);
            self.blocks.push(&text, Location::Paragraph(first));
        }
    }

    /// Text of a last paragraph whose mark was deleted still shows.
    fn finish(&mut self) {
        while !self.cells.is_empty() {
            self.end_cell();
        }
        if let Some((text, index)) = self.carried.take() {
            self.blocks.push(&text, Location::Paragraph(index));
        }
    }
}
