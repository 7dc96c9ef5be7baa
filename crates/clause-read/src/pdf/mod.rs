//! PDF documents: the text layer of each page, laid out again into the
//! blocks the segmenter reads ([`layout`]), each block located by its page.
//!
//! The file is parsed by lopdf (pure Rust; chosen over pdf-extract and
//! pdf-rs by measurement, see the workspace Cargo.toml). lopdf gives the
//! objects, decrypts files that open without a password, and decodes
//! streams with a bound on their size; [`content`] runs each page's
//! content stream to place its characters, with [`font`] decoding them.
//!
//! A PDF that needs a password, and one whose pages are images without
//! text (a scan), are errors that say so. Work on hostile input is capped:
//! streams unpack to at most [`MAX_PART_BYTES`], and the document to at
//! most [`MAX_OBJECTS`] objects, [`MAX_PAGES`] pages and
//! [`content::MAX_OPERATIONS`] content operations.

use lopdf::{Document as Pdf, LoadOptions, Object, ObjectId};

use crate::{Document, Error, MAX_PART_BYTES};

mod content;
mod font;
mod layout;
#[cfg(test)]
mod tests;

/// The most objects a PDF may hold: a thousand-page treaty has some tens of
/// thousands.
const MAX_OBJECTS: usize = 2_000_000;
/// The most pages read.
const MAX_PAGES: usize = 20_000;

/// Read a PDF's text layer into blocks.
pub(crate) fn read(bytes: &[u8], file: &str) -> Result<Document, Error> {
    let pdf = load(bytes, file)?;
    let pages = pages(&pdf, file)?;
    Ok(layout::document(&pages))
}

fn load(bytes: &[u8], file: &str) -> Result<Pdf, Error> {
    let options = LoadOptions { max_decompressed_size: Some(MAX_PART_BYTES as usize), ..LoadOptions::default() };
    let pdf = match Pdf::load_mem_with_options(bytes, options) {
        Ok(pdf) => pdf,
        Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { .. })) => {
            return Err(Error::TooLarge { file: file.to_string(), part: "a PDF stream".into(), limit: MAX_PART_BYTES });
        }
        // lopdf reports a password it could not find in several ways;
        // the trailer's /Encrypt says what the file is.
        Err(_) if mentions_encryption(bytes) => return Err(Error::Encrypted { file: file.to_string() }),
        Err(e) => return Err(Error::NotPdf { file: file.to_string(), reason: e.to_string() }),
    };
    // lopdf decrypts a file that opens with the empty password (one that
    // only restricts printing or copying) and drops /Encrypt; one that
    // needs a password keeps it, its strings and streams unreadable.
    if pdf.is_encrypted() {
        return Err(Error::Encrypted { file: file.to_string() });
    }
    if pdf.objects.len() > MAX_OBJECTS {
        return Err(Error::TooComplex { file: file.to_string(), what: "objects", limit: MAX_OBJECTS });
    }
    Ok(pdf)
}

fn mentions_encryption(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|window| window == b"/Encrypt")
}

/// Every page's glyphs, in page order.
fn pages(pdf: &Pdf, file: &str) -> Result<Vec<layout::Page>, Error> {
    let ids: Vec<ObjectId> = pdf.page_iter().take(MAX_PAGES + 1).collect();
    if ids.len() > MAX_PAGES {
        return Err(Error::TooComplex { file: file.to_string(), what: "pages", limit: MAX_PAGES });
    }
    let mut fonts = content::Fonts::new(pdf);
    let mut budget = content::Budget { operations: content::MAX_OPERATIONS, glyphs: content::MAX_GLYPHS };
    let mut pages = Vec::with_capacity(ids.len());
    let mut images = 0;
    for (index, id) in ids.into_iter().enumerate() {
        let number = index + 1;
        let content = content::page(pdf, id, number, &mut fonts, &mut budget, file)?;
        images += content.images;
        let (bottom, top) = visible_box(pdf, id);
        // Text outside the visible box is not shown (a producer may park
        // text there); a point of slack keeps text on its edge.
        let glyphs = content.glyphs.into_iter().filter(|g| g.y >= bottom - 1.0 && g.y <= top + 1.0).collect();
        pages.push(layout::Page { number, glyphs });
    }
    let text = pages.iter().flat_map(|p| &p.glyphs).any(|g| !g.text.trim().is_empty());
    if !text && images > 0 {
        return Err(Error::NoTextLayer { file: file.to_string(), pages: pages.len() });
    }
    Ok(pages)
}

/// The bottom and top of a page's crop box (else its media box, else US
/// Letter), which may be inherited from the page tree.
fn visible_box(pdf: &Pdf, page: ObjectId) -> (f64, f64) {
    let mut node = pdf.get_dictionary(page).ok();
    // The page tree is shallow; the bound stops a cycle of /Parent links.
    for _ in 0..32 {
        let Some(dict) = node else { break };
        for key in [&b"CropBox"[..], b"MediaBox"] {
            let corners = dict.get_deref(key, pdf).and_then(Object::as_array).ok();
            let ys: Vec<f64> = corners
                .map(|c| c.iter().filter_map(|o| pdf.dereference(o).ok()?.1.as_float().ok()).map(f64::from).collect())
                .unwrap_or_default();
            if let [_, y0, _, y1] = ys.as_slice()
                && y0.is_finite()
                && y1.is_finite()
                && y0 != y1
            {
                return (y0.min(*y1), y0.max(*y1));
            }
        }
        node = dict.get_deref(b"Parent", pdf).and_then(Object::as_dict).ok();
    }
    (0.0, 792.0)
}
