//! The labelled example every source produces and every split holds.

use serde::{Deserialize, Serialize};

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Unique within the dataset: `<document>:<line>` for CLAUDETTE
    /// sentences, the provision id for drafts, the id column (or row number)
    /// for tables.
    pub id: String,
    /// The document the text comes from (a company's Terms of Service, a treaty).
    pub document: String,
    /// The text, whitespace-normalised.
    pub text: String,
    /// Its labels, in the order of the recipe's label set.
    pub labels: Vec<String>,
    /// Article number, for provisions.
    pub article: Option<String>,
    /// Paragraph number, for provisions.
    pub paragraph: Option<String>,
    /// Article title, for provisions.
    pub title: Option<String>,
    /// Chapter / part / section headings, for provisions.
    pub chapter: Option<String>,
    /// Where the text comes from, as `path:line`, for error messages.
    #[serde(skip)]
    pub origin: String,
}

impl Example {
    /// The text and the headings above it, as a model reads them.
    pub fn passage(&self) -> clause_segment::input::Passage<'_> {
        clause_segment::input::Passage {
            text: &self.text,
            title: self.title.as_deref(),
            chapter: self.chapter.as_deref(),
        }
    }
}
