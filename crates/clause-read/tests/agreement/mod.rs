//! How far a document read by clause-read segments like the Markdown it
//! was made from: the share of provisions with the same id, and of those
//! with the same text too. Shared by the fixture tests (documents.rs) and
//! the `agreement` example, which measures renders that are not committed.

use std::path::Path;

use clause_read::read;
use clause_segment::{Provision, normalise_whitespace, segment};

/// A provision's text as a reader sees it: whitespace normalised, and
/// without the Markdown emphasis marks (`*...*`) that the Markdown's
/// segmentation keeps but a rendered document shows as italics. The
/// drafts have no literal asterisks.
pub fn visible(text: &str) -> String {
    normalise_whitespace(&text.replace('*', ""))
}

/// Shares of the Markdown's provisions that the document reproduces, over
/// the larger of the two counts (so extra provisions count against it too).
pub struct Agreement {
    /// Provisions of the Markdown.
    pub provisions: usize,
    /// Provisions of the document.
    pub found: usize,
    /// Share with the same id.
    pub same_id: f64,
    /// Share with the same id and the same visible text.
    pub same_text: f64,
}

/// Compare `document` with `markdown`; each provision missing or with a
/// different text is printed to stderr.
pub fn agreement(document: &Path, markdown: &Path) -> Agreement {
    let read_text = match read(document) {
        Ok(read) => read.text,
        Err(e) => panic!("{e}"),
    };
    let original = std::fs::read_to_string(markdown).unwrap_or_else(|e| panic!("{}: {e}", markdown.display()));
    let expected = segment("draft", &original);
    let got = segment("draft", &read_text);
    let find = |id: &str| got.iter().find(|p: &&Provision| p.id == id);
    let same_id = expected.iter().filter(|p| find(&p.id).is_some()).count();
    let same_text =
        expected.iter().filter(|p| find(&p.id).is_some_and(|g| visible(&g.text) == visible(&p.text))).count();
    for p in &expected {
        match find(&p.id) {
            None => eprintln!("  {}: missing {}", document.display(), p.id),
            Some(g) if visible(&g.text) != visible(&p.text) => {
                eprintln!(
                    "  {}: {} differs:\n    expected {:?}\n    got      {:?}",
                    document.display(),
                    p.id,
                    p.text,
                    g.text
                )
            }
            Some(_) => {}
        }
    }
    for g in &got {
        if !expected.iter().any(|p| p.id == g.id) {
            eprintln!("  {}: extra {}: {:?}", document.display(), g.id, g.text);
        }
    }
    let total = expected.len().max(got.len()).max(1) as f64;
    Agreement {
        provisions: expected.len(),
        found: got.len(),
        same_id: same_id as f64 / total,
        same_text: same_text as f64 / total,
    }
}
