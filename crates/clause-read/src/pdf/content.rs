//! A page's content stream, run only as far as text needs: the graphics
//! state's transformation (`cm`, `q`, `Q`), the text state and text
//! operators (PDF 32000-1, 9.3 and 9.4), and form XObjects, which hold
//! text too. Each character shown becomes a [`Glyph`] at its position on
//! the page; images are only counted (a page of images and no text is a
//! scan). Paths, colours and clipping are ignored.

use std::collections::HashMap;

use lopdf::content::Content;
use lopdf::{DecompressError, Dictionary, Document, Object, ObjectId};

use super::font::{Font, codes};
use super::layout::Glyph;
use crate::{Error, MAX_PART_BYTES};

/// How deep form XObjects may nest (one drawn inside another).
const MAX_FORM_DEPTH: usize = 8;
/// How deep `q` may nest; deeper saves are ignored (a real page uses a few).
const MAX_SAVED_STATES: usize = 256;
/// Content operators run for the whole document, forms counted each time
/// they are drawn: a 300-page treaty runs under a million.
pub(crate) const MAX_OPERATIONS: usize = 10_000_000;
/// Characters read for the whole document, some 1,500 dense pages: each
/// is held with its position until the layout is done (about 100 bytes).
pub(crate) const MAX_GLYPHS: usize = 5_000_000;

/// An affine map `[a b c d e f]`: `(x, y) -> (a x + c y + e, b x + d y + f)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Matrix([f64; 6]);

impl Matrix {
    pub(crate) const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(x: f64, y: f64) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// `self` applied first, then `then`.
    pub(crate) fn then(self, then: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [a2, b2, c2, d2, e2, f2] = then.0;
        Matrix([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
    }

    fn from_operands(operands: &[Object]) -> Option<Matrix> {
        let mut values = [0.0; 6];
        if operands.len() < 6 {
            return None;
        }
        for (value, operand) in values.iter_mut().zip(operands) {
            *value = finite(operand)?;
        }
        Some(Matrix(values))
    }
}

fn finite(object: &Object) -> Option<f64> {
    object.as_float().ok().map(f64::from).filter(|v| v.is_finite())
}

/// What counts against the document's limits.
pub(crate) struct Budget {
    pub(crate) operations: usize,
    pub(crate) glyphs: usize,
}

/// One page's characters, and how many images it draws.
#[derive(Default)]
pub(crate) struct PageContent {
    pub(crate) glyphs: Vec<Glyph>,
    pub(crate) images: usize,
}

/// The fonts met so far, kept across pages (a font is parsed once), by
/// the address of their dictionary in the loaded document.
pub(crate) struct Fonts<'a> {
    doc: &'a Document,
    fonts: Vec<Font<'a>>,
    by_dict: HashMap<usize, usize>,
}

impl<'a> Fonts<'a> {
    pub(crate) fn new(doc: &'a Document) -> Self {
        Fonts { doc, fonts: Vec::new(), by_dict: HashMap::new() }
    }

    fn index(&mut self, dict: &'a Dictionary) -> usize {
        let key = std::ptr::from_ref(dict) as usize;
        if let Some(index) = self.by_dict.get(&key) {
            return *index;
        }
        self.fonts.push(Font::new(dict, self.doc, MAX_PART_BYTES as usize));
        let index = self.fonts.len() - 1;
        self.by_dict.insert(key, index);
        index
    }
}

/// The graphics and text state that `q` saves and `Q` restores.
#[derive(Clone)]
struct State {
    ctm: Matrix,
    font: Option<usize>,
    size: f64,
    char_spacing: f64,
    word_spacing: f64,
    horizontal_scale: f64,
    leading: f64,
    rise: f64,
}

fn too_complex(file: &str, glyphs: bool) -> Error {
    let (what, limit) = if glyphs { ("characters", MAX_GLYPHS) } else { ("content operations", MAX_OPERATIONS) };
    Error::TooComplex { file: file.to_string(), what, limit }
}

/// The text matrix and the text line matrix, which `BT` resets (not part
/// of what `q` saves).
struct Pen {
    text: Matrix,
    line: Matrix,
}

/// Runs content streams, collecting glyphs into `out`.
struct Runner<'a, 'f> {
    doc: &'a Document,
    fonts: &'f mut Fonts<'a>,
    budget: &'f mut Budget,
    out: PageContent,
    file: &'f str,
    page: usize,
}

/// Run a page's content streams.
pub(crate) fn page<'a>(
    doc: &'a Document,
    page_id: ObjectId,
    number: usize,
    fonts: &mut Fonts<'a>,
    budget: &mut Budget,
    file: &str,
) -> Result<PageContent, Error> {
    let too_large =
        || Error::TooLarge { file: file.to_string(), part: format!("page {number} content"), limit: MAX_PART_BYTES };
    let data = doc.get_page_content_with_limit(page_id, MAX_PART_BYTES as usize).map_err(|_| too_large())?;
    let (inline, referenced) = doc.get_page_resources(page_id).unwrap_or((None, Vec::new()));
    let mut resources: Vec<&Dictionary> = inline.into_iter().collect();
    resources.extend(referenced.into_iter().filter_map(|id| doc.get_dictionary(id).ok()));
    let mut runner = Runner { doc, fonts, budget, out: PageContent::default(), file, page: number };
    runner.run(&data, &resources, Matrix::IDENTITY, 0)?;
    Ok(runner.out)
}

impl<'a> Runner<'a, '_> {
    fn run(&mut self, data: &[u8], resources: &[&'a Dictionary], ctm: Matrix, depth: usize) -> Result<(), Error> {
        let mut state = State {
            ctm,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            horizontal_scale: 1.0,
            leading: 0.0,
            rise: 0.0,
        };
        let mut saved: Vec<State> = Vec::new();
        let mut pen = Pen { text: Matrix::IDENTITY, line: Matrix::IDENTITY };
        // A stream that stops parsing keeps what was read before the error,
        // as viewers show it.
        for operation in Content::decode_iter(data).map_while(Result::ok) {
            self.budget.operations =
                self.budget.operations.checked_sub(1).ok_or_else(|| too_complex(self.file, false))?;
            let operands = operation.operands.as_slice();
            match operation.operator.as_str() {
                "q" if saved.len() < MAX_SAVED_STATES => saved.push(state.clone()),
                "Q" => state = saved.pop().unwrap_or(state),
                "cm" => {
                    if let Some(matrix) = Matrix::from_operands(operands) {
                        state.ctm = matrix.then(state.ctm);
                    }
                }
                "Do" => {
                    let name = operands.first().and_then(|o| o.as_name().ok()).unwrap_or_default();
                    self.draw(resources, name, state.ctm, depth)?;
                }
                "BI" => self.out.images += 1,
                operator => self.text_operator(operator, operands, resources, &mut state, &mut pen)?,
            }
        }
        Ok(())
    }

    /// The text state and text object operators (9.3, 9.4); others are
    /// ignored.
    fn text_operator(
        &mut self,
        operator: &str,
        operands: &[Object],
        resources: &[&'a Dictionary],
        state: &mut State,
        pen: &mut Pen,
    ) -> Result<(), Error> {
        let number = |index: usize| operands.get(index).and_then(finite);
        match operator {
            "BT" => *pen = Pen { text: Matrix::IDENTITY, line: Matrix::IDENTITY },
            "Tf" => {
                let name = operands.first().and_then(|o| o.as_name().ok()).unwrap_or_default();
                state.font = self.font(resources, name);
                state.size = number(1).unwrap_or(0.0);
            }
            "Tc" => state.char_spacing = number(0).unwrap_or(0.0),
            "Tw" => state.word_spacing = number(0).unwrap_or(0.0),
            "Tz" => state.horizontal_scale = number(0).unwrap_or(100.0) / 100.0,
            "TL" => state.leading = number(0).unwrap_or(0.0),
            "Ts" => state.rise = number(0).unwrap_or(0.0),
            "Td" | "TD" => {
                let (x, y) = (number(0).unwrap_or(0.0), number(1).unwrap_or(0.0));
                if operator == "TD" {
                    state.leading = -y;
                }
                pen.line = Matrix::translate(x, y).then(pen.line);
                pen.text = pen.line;
            }
            "Tm" => {
                if let Some(matrix) = Matrix::from_operands(operands) {
                    *pen = Pen { text: matrix, line: matrix };
                }
            }
            "T*" | "'" | "\"" => {
                if operator == "\"" {
                    state.word_spacing = number(0).unwrap_or(state.word_spacing);
                    state.char_spacing = number(1).unwrap_or(state.char_spacing);
                }
                pen.line = Matrix::translate(0.0, -state.leading).then(pen.line);
                pen.text = pen.line;
                if operator != "T*"
                    && let Some(text) = operands.last().and_then(|o| o.as_str().ok())
                {
                    self.show(text, state, &mut pen.text)?;
                }
            }
            "Tj" => {
                if let Some(text) = operands.first().and_then(|o| o.as_str().ok()) {
                    self.show(text, state, &mut pen.text)?;
                }
            }
            "TJ" => {
                for item in operands.first().and_then(|o| o.as_array().ok()).map_or(&[][..], Vec::as_slice) {
                    match item {
                        Object::String(text, _) => self.show(text, state, &mut pen.text)?,
                        other => {
                            // A number moves the pen back by thousandths of
                            // the font size (a kern, or a word space).
                            let shift = -finite(other).unwrap_or(0.0) / 1000.0 * state.size;
                            pen.text = Matrix::translate(shift * state.horizontal_scale, 0.0).then(pen.text);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A named entry of one of the resource dictionaries' `category`
    /// (`Font`, `XObject`), the first that has it.
    fn resource(&self, resources: &[&'a Dictionary], category: &[u8], name: &[u8]) -> Option<&'a Object> {
        resources.iter().find_map(|dict| {
            let entries = dict.get_deref(category, self.doc).and_then(Object::as_dict).ok()?;
            entries.get_deref(name, self.doc).ok()
        })
    }

    fn font(&mut self, resources: &[&'a Dictionary], name: &[u8]) -> Option<usize> {
        let dict = self.resource(resources, b"Font", name)?.as_dict().ok()?;
        Some(self.fonts.index(dict))
    }

    /// `Do`: count an image; run a form's content in its own coordinates.
    fn draw(&mut self, resources: &[&'a Dictionary], name: &[u8], ctm: Matrix, depth: usize) -> Result<(), Error> {
        let Some(Object::Stream(stream)) = self.resource(resources, b"XObject", name) else { return Ok(()) };
        match stream.dict.get(b"Subtype").and_then(Object::as_name) {
            Ok(b"Image") => self.out.images += 1,
            Ok(b"Form") if depth < MAX_FORM_DEPTH => {
                let data = match stream.decompressed_content_with_limit(MAX_PART_BYTES as usize) {
                    Ok(data) => data,
                    Err(lopdf::Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => {
                        return Err(Error::TooLarge {
                            file: self.file.to_string(),
                            part: format!("a form drawn on page {}", self.page),
                            limit: MAX_PART_BYTES,
                        });
                    }
                    // An unfiltered form, or one whose filter fails: its bytes as they are.
                    Err(_) => stream.content.clone(),
                };
                let matrix = stream
                    .dict
                    .get(b"Matrix")
                    .and_then(Object::as_array)
                    .ok()
                    .and_then(|m| Matrix::from_operands(m))
                    .unwrap_or(Matrix::IDENTITY);
                let own = stream.dict.get_deref(b"Resources", self.doc).and_then(Object::as_dict).ok();
                let inner: Vec<&'a Dictionary> = match own {
                    Some(own) => vec![own],
                    None => resources.to_vec(),
                };
                self.run(&data, &inner, matrix.then(ctm), depth + 1)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Show a string: one glyph per code, the pen moved after each.
    fn show(&mut self, bytes: &[u8], state: &State, text_matrix: &mut Matrix) -> Result<(), Error> {
        let Some(font) = state.font.and_then(|index| self.fonts.fonts.get_mut(index)) else { return Ok(()) };
        let bold = font.bold;
        for code in codes(bytes, font.two_byte()) {
            let code = font.code(code);
            let render =
                Matrix([state.size * state.horizontal_scale, 0.0, 0.0, state.size, 0.0, state.rise]).then(*text_matrix);
            let [a, b, c, d, e, f] = render.then(state.ctm).0;
            // Upright, left-to-right text only: rotated text is a stamp or
            // a margin note, not the draft's body.
            let upright = a > 0.0 && d > 0.0 && b.abs() <= 0.05 * a && c.abs() <= 0.05 * d;
            if upright && !code.text.is_empty() {
                self.budget.glyphs = self.budget.glyphs.checked_sub(1).ok_or_else(|| too_complex(self.file, true))?;
                let glyph = Glyph { text: code.text.to_string(), x: e, y: f, width: code.advance * a, size: d, bold };
                self.out.glyphs.push(glyph);
            }
            let space = if code.is_space { state.word_spacing } else { 0.0 };
            let advance = (code.advance * state.size + state.char_spacing + space) * state.horizontal_scale;
            *text_matrix = Matrix::translate(advance, 0.0).then(*text_matrix);
        }
        Ok(())
    }
}
