//! What can go wrong reading a document. Every variant names the file (as
//! the caller named it) and what the reader expected to find, so that a
//! message alone tells a user what to fix.

/// A document that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read from disk.
    #[error("{file}: cannot read the file: {source}")]
    Io {
        /// The file as the caller named it.
        file: String,
        /// Why the operating system refused.
        source: std::io::Error,
    },
    /// The file's extension names no format this crate reads.
    #[error("{file}: unknown document format (expected .docx, .pdf, .html, .htm, .md, .markdown or .txt)")]
    UnknownFormat {
        /// The file as the caller named it.
        file: String,
    },
    /// A file whose content is another format than its name says.
    #[error("{file}: named as {claimed}, but the file is {actual} (rename it to match its content)")]
    Mislabelled {
        /// The file as the caller named it.
        file: String,
        /// What its name says it is.
        claimed: &'static str,
        /// What its first bytes show it is.
        actual: &'static str,
    },
    /// An HTML page larger than any one page of a site.
    #[error("{file}: the page is {size} bytes, more than {limit} (expected one web page)")]
    PageTooLarge {
        /// The file as the caller named it.
        file: String,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A .docx file that is not a zip archive at all.
    #[error("{file}: not a Word .docx file (expected a zip archive): {reason}")]
    NotZip {
        /// The file as the caller named it.
        file: String,
        /// What the zip reader found wrong.
        reason: String,
    },
    /// A zip archive without the main part of a Word document.
    #[error("{file}: not a Word document (expected a Word body in {part})")]
    NotWord {
        /// The file as the caller named it.
        file: String,
        /// The part that should hold the body, normally `word/document.xml`:
        /// missing, or holding something else.
        part: String,
    },
    /// A part of the archive that cannot be unpacked (corrupt data, a
    /// compression method other than deflate, encryption).
    #[error("{file}: cannot unpack {part} (expected a stored or deflated zip entry): {reason}")]
    Unpack {
        /// The file as the caller named it.
        file: String,
        /// The part of the archive.
        part: String,
        /// What the zip reader found wrong.
        reason: String,
    },
    /// A part of a `.docx` archive, or a stream of a PDF, that unpacks to
    /// more than [`crate::MAX_PART_BYTES`]: a zip or deflate bomb, or no
    /// document a reviewer reads.
    #[error("{file}: {part} unpacks to more than {limit} bytes (expected a document part of reasonable size)")]
    TooLarge {
        /// The file as the caller named it.
        file: String,
        /// The part of the archive (for a PDF, the stream: `page 3 content`).
        part: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A part whose XML is not well formed (or not UTF-8).
    #[error("{file}: malformed XML in {part} at byte {position} (expected well-formed UTF-8 XML): {reason}")]
    Xml {
        /// The file as the caller named it.
        file: String,
        /// The part of the archive.
        part: String,
        /// Byte offset in the unpacked part where the parser stopped.
        position: u64,
        /// What the parser found wrong.
        reason: String,
    },
    /// HTML that is neither UTF-8 nor declares windows-1252 / ISO-8859-1.
    #[error("{file}: not UTF-8 text{} (expected UTF-8, or HTML that declares windows-1252 or ISO-8859-1)", declared_charset(.declared))]
    Encoding {
        /// The file as the caller named it.
        file: String,
        /// The charset an HTML `<meta>` declares, if any.
        declared: Option<String>,
    },
    /// A file that the PDF parser cannot read at all.
    #[error("{file}: not a readable PDF file (expected a PDF document): {reason}")]
    NotPdf {
        /// The file as the caller named it.
        file: String,
        /// What the PDF parser found wrong.
        reason: String,
    },
    /// A PDF that needs a password to open.
    #[error(
        "{file}: the PDF is encrypted and needs a password (expected a PDF that opens without one); \
         save a copy without the password first"
    )]
    Encrypted {
        /// The file as the caller named it.
        file: String,
    },
    /// A PDF whose pages are images only: a scan without a text layer.
    #[error(
        "{file}: the PDF has no text layer (a scanned document?): its {pages} page(s) hold only images \
         (expected text); run it through OCR, e.g. ocrmypdf, first"
    )]
    NoTextLayer {
        /// The file as the caller named it.
        file: String,
        /// How many pages the PDF has.
        pages: usize,
    },
    /// A PDF with more of something than any document a reviewer reads:
    /// hostile input, or a file that is no draft.
    #[error("{file}: the PDF has more than {limit} {what} (expected a document of reasonable size)")]
    TooComplex {
        /// The file as the caller named it.
        file: String,
        /// What was counted: `objects`, `pages`, `content operations`, `characters`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An HTML page nested deeper than any page a browser shows sensibly.
    #[error("{file}: elements nested {depth} deep, more than {limit} (expected a page as a browser shows it)")]
    TooDeep {
        /// The file as the caller named it.
        file: String,
        /// How deep its tags nest.
        depth: usize,
        /// The limit.
        limit: usize,
    },
    /// A text draft that is not UTF-8.
    #[error("{file}:{line}: not valid UTF-8 (byte {byte} of the file); convert the file to UTF-8")]
    NotUtf8 {
        /// The file as the caller named it.
        file: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 0-based byte offset of the first invalid byte.
        byte: usize,
    },
    /// A document that was read but holds no text.
    #[error("{file}: no text (expected at least one paragraph with text)")]
    NoText {
        /// The file as the caller named it.
        file: String,
    },
}

fn declared_charset(declared: &Option<String>) -> String {
    match declared {
        Some(charset) => format!(" (it declares charset {charset})"),
        None => String::new(),
    }
}
