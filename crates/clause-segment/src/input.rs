//! What the model reads of a provision: its text, and optionally the
//! headings above it.
//!
//! A provision's meaning often rests on where it stands. "A request made
//! under paragraph 1 shall specify ..." is a surveillance measure under
//! "Expedited preservation of stored computer data" and a formality under
//! "Final provisions"; a reviewer reads the heading first, and so can the
//! model. Which context a model was trained with is recorded in its
//! `clause.json`, and every path that classifies (training's validation,
//! `classify`, `eval`, `report`, `diff`, `serve`, explanations) builds the
//! model's input with [`Context::compose`], so they all feed it alike.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What a model reads besides a provision's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    /// The text alone: for sentences without headings (Terms of Service),
    /// and what a model without this field in its `clause.json` was
    /// trained with.
    #[default]
    Text,
    /// The innermost division heading (chapter, part, section or title),
    /// then the article's title, then the text, each ending in ". ".
    Headings,
}

/// What one example of a model's training data is, and so what the model
/// should be given to read of a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A provision (a numbered paragraph, an article): treaty-risk's
    /// examples, and what a model without this field in its `clause.json`
    /// was trained on.
    #[default]
    Provision,
    /// A sentence (Terms of Service: CLAUDETTE labels sentence by
    /// sentence). A draft's provisions are cut into their sentences
    /// ([`crate::spans::sentences`]) before such a model reads them, so
    /// that it reads what it was trained on.
    Sentence,
}

/// A provision's text and the headings above it, as read from a draft, a
/// dataset split or a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passage<'a> {
    /// The text that is classified (and explained).
    pub text: &'a str,
    /// The article's title.
    pub title: Option<&'a str>,
    /// The division headings above the article, outermost first, joined
    /// with [`CHAPTER_SEPARATOR`] (as the segmenter writes them).
    pub chapter: Option<&'a str>,
}

/// How the segmenter joins nested division headings.
pub const CHAPTER_SEPARATOR: &str = " > ";

impl<'a> Passage<'a> {
    /// A bare text, with no headings.
    pub fn text(text: &'a str) -> Self {
        Self { text, title: None, chapter: None }
    }
}

impl Context {
    /// The model's input for `passage`. The innermost division is the one
    /// that names the subject ("Procedural law", "International
    /// co-operation"); the outer ones repeat for hundreds of provisions and
    /// would only spend tokens.
    pub fn compose<'a>(self, passage: &Passage<'a>) -> Cow<'a, str> {
        let prefix = self.prefix(passage);
        if prefix.is_empty() {
            return Cow::Borrowed(passage.text);
        }
        Cow::Owned(prefix + passage.text)
    }

    /// What the model reads before `passage`'s text: its headings, each
    /// ending in ". ", or nothing. Readers that cut a long text into windows
    /// or sentences put it before each piece.
    pub fn prefix(self, passage: &Passage<'_>) -> String {
        match self {
            Self::Text => String::new(),
            Self::Headings => {
                let division = passage.chapter.and_then(|c| c.rsplit(CHAPTER_SEPARATOR).next());
                let mut prefix = String::new();
                for heading in [division, passage.title].into_iter().flatten().map(str::trim).filter(|h| !h.is_empty())
                {
                    prefix.push_str(heading.trim_end_matches(['.', ':']));
                    prefix.push_str(". ");
                }
                prefix
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_put_the_innermost_division_and_the_title_before_the_text() {
        let passage = Passage {
            text: "Each Party shall adopt measures.",
            title: Some("Expedited preservation of stored computer data"),
            chapter: Some("Chapter II – MEASURES > Section 2 – PROCEDURAL LAW"),
        };
        assert_eq!(
            Context::Headings.compose(&passage),
            "Section 2 – PROCEDURAL LAW. Expedited preservation of stored computer data. Each Party shall adopt \
             measures."
        );
        assert_eq!(Context::Text.compose(&passage), passage.text);
    }

    #[test]
    fn missing_or_blank_headings_leave_the_text_alone() {
        let bare = Passage::text("The text.");
        assert!(matches!(Context::Headings.compose(&bare), Cow::Borrowed("The text.")));
        let blank = Passage { text: "The text.", title: Some("  "), chapter: Some("") };
        assert_eq!(Context::Headings.compose(&blank), "The text.");
        let title_only = Passage { text: "The text.", title: Some("Extradition:"), chapter: None };
        assert_eq!(Context::Headings.compose(&title_only), "Extradition. The text.");
    }

    #[test]
    fn models_without_the_field_read_the_text_alone() {
        #[derive(Deserialize)]
        struct Card {
            #[serde(default)]
            context: Context,
        }
        let card: Card = serde_json::from_str("{}").expect("parse");
        assert_eq!(card.context, Context::Text);
        let card: Card = serde_json::from_str(r#"{"context": "headings"}"#).expect("parse");
        assert_eq!(card.context, Context::Headings);
    }
}
