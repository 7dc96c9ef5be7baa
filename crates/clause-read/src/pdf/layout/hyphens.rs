//! Joining a line to the text before it, and words hyphenated at line
//! ends.
//!
//! Typesetters hyphenate long words at line ends (`surveil-` / `lance`);
//! the hyphen is not part of the word and goes. A compound that breaks at
//! its own hyphen (`co-` / `operation`, `non-` / `State`) keeps it. Which
//! one a line end is cannot be known for sure from the text; the rule, in
//! order:
//!
//! 1. a soft hyphen (U+00AD) always goes: it marks a break and nothing
//!    else;
//! 2. the hyphen stays when the next line starts with a capital (`non-` /
//!    `State`, `Franco-` / `German`) or a digit;
//! 3. it stays when the document writes the word with the hyphen
//!    elsewhere (`co-operation` within a line);
//! 4. it goes when the document writes the word without one elsewhere
//!    (`cooperation`);
//! 5. it stays after `non`, `self`, `quasi` and `cross`, which legal
//!    English joins with a hyphen (`non-governmental`, `self-defence`);
//! 6. otherwise it goes (`surveil-` / `lance`): automatic hyphenation
//!    breaks far more words in justified text than there are compounds
//!    broken at their hyphen.

use std::collections::HashSet;

/// Prefixes that stay joined by their hyphen when nothing else decides.
const HYPHENATED_PREFIXES: [&str; 4] = ["non", "self", "quasi", "cross"];

/// The words a document writes within its lines, lower-cased and without
/// surrounding punctuation: those with a hyphen (`co-operation`) and
/// those without.
#[derive(Default)]
pub(crate) struct Compounds {
    hyphenated: HashSet<String>,
    plain: HashSet<String>,
}

impl Compounds {
    /// Learn the words of a line; a last word that ends in a hyphen (the
    /// break being decided) is left out.
    pub(crate) fn learn(&mut self, line: &str) {
        for word in line.split_whitespace() {
            if word.ends_with(['-', '\u{2010}', '\u{ad}']) {
                continue;
            }
            let word = word_of(word).replace('\u{2010}', "-").to_lowercase();
            if !word.chars().any(char::is_alphabetic) {
                continue;
            }
            if word.contains('-') {
                self.hyphenated.insert(word);
            } else {
                self.plain.insert(word);
            }
        }
    }
}

/// A word without the punctuation around it (quotes, brackets, commas).
fn word_of(word: &str) -> &str {
    word.trim_matches(|c: char| !c.is_alphanumeric())
}

/// Append `next` (a line) to `text` (a block so far): after a space, or
/// straight on where `text` ends in a hyphen, which goes or stays by the
/// rule above.
pub(crate) fn join(text: &mut String, next: &str, compounds: &Compounds) {
    if text.is_empty() {
        text.push_str(next);
        return;
    }
    if text.ends_with('\u{ad}') {
        text.pop();
        text.push_str(next);
        return;
    }
    let Some(stem) = text.strip_suffix(['-', '\u{2010}']) else {
        text.push(' ');
        text.push_str(next);
        return;
    };
    let before = stem.chars().next_back();
    let after = next.chars().next();
    // A dash after a space ("text -" / "more") is punctuation, not a break
    // inside a word.
    if !before.is_some_and(char::is_alphabetic) || after.is_none_or(char::is_whitespace) {
        if before.is_some_and(char::is_whitespace) {
            text.push(' ');
        }
        text.push_str(next);
        return;
    }
    let left = stem.rsplit(char::is_whitespace).next().unwrap_or(stem);
    let right = next.split(char::is_whitespace).next().unwrap_or(next);
    let (left, right) = (word_of(left).to_lowercase(), word_of(right).to_lowercase());
    let capital = after.is_some_and(|c| c.is_uppercase() || c.is_ascii_digit());
    let keep = if capital || compounds.hyphenated.contains(&format!("{left}-{right}")) {
        true
    } else if compounds.plain.contains(&format!("{left}{right}")) {
        false
    } else {
        HYPHENATED_PREFIXES.contains(&left.as_str())
    };
    if !keep {
        text.truncate(stem.len());
    }
    text.push_str(next);
}
