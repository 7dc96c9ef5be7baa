//! Texts shared between splits.
//!
//! Two texts are *identical* when their whitespace-normalised forms are equal,
//! and *near-identical* when they are equal after also folding case and
//! dropping punctuation. Short shared texts ("1.", "Privacy") are boilerplate:
//! they are counted apart and never fail a build.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::split::Split;

/// Lower-case, letters and digits only, single spaces.
pub fn normalise_for_matching(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// One text shared between splits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedText {
    /// The text as it first appears.
    pub text: String,
    /// Whether all occurrences are identical (not only near-identical).
    pub identical: bool,
    /// Example ids per split.
    pub ids: BTreeMap<Split, Vec<String>>,
}

/// What the leakage check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakageReport {
    /// The length threshold (characters of the normalised text).
    pub min_chars: usize,
    /// Distinct texts of at least `min_chars` whose occurrences in two or
    /// more splits are identical.
    pub identical: usize,
    /// Distinct texts of at least `min_chars` shared only in near-identical form.
    pub near_identical: usize,
    /// Examples (all splits) that carry one of those texts.
    pub examples_involved: usize,
    /// Shared texts shorter than `min_chars`, not counted as leakage.
    pub short_shared: usize,
    /// Shared texts per pair of splits, e.g. `train/test`.
    pub by_pair: BTreeMap<String, usize>,
    /// Up to the recipe's limit of shared texts, longest first.
    pub shared: Vec<SharedText>,
    /// Articles of one document whose provisions (sibling paragraphs, with
    /// the same title and headings) sit in more than one split: a model
    /// scored on one has read its siblings. Not counted as leakage.
    #[serde(default)]
    pub articles_across_splits: usize,
}

impl LeakageReport {
    /// Shared texts that count as leakage.
    pub fn leaked(&self) -> usize {
        self.identical + self.near_identical
    }
}

/// Find texts shared between splits. `rows` are `(split, id, text)`.
pub fn find_leakage<'a>(
    rows: impl IntoIterator<Item = (Split, &'a str, &'a str)>,
    min_chars: usize,
    max_examples: usize,
) -> LeakageReport {
    struct Entry<'a> {
        first_text: &'a str,
        forms: BTreeSet<&'a str>,
        ids: BTreeMap<Split, Vec<String>>,
    }
    let mut by_key: BTreeMap<String, Entry<'a>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (split, id, text) in rows {
        let key = normalise_for_matching(text);
        let entry = by_key.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Entry { first_text: text, forms: BTreeSet::new(), ids: BTreeMap::new() }
        });
        entry.forms.insert(text);
        entry.ids.entry(split).or_default().push(id.to_string());
    }
    let mut report = LeakageReport {
        min_chars,
        identical: 0,
        near_identical: 0,
        examples_involved: 0,
        short_shared: 0,
        by_pair: BTreeMap::new(),
        shared: Vec::new(),
        articles_across_splits: 0,
    };
    let mut shared = Vec::new();
    for key in &order {
        let entry = &by_key[key];
        if entry.ids.len() < 2 {
            continue;
        }
        if key.chars().count() < min_chars {
            report.short_shared += 1;
            continue;
        }
        let identical = entry.forms.len() == 1;
        if identical {
            report.identical += 1;
        } else {
            report.near_identical += 1;
        }
        report.examples_involved += entry.ids.values().map(Vec::len).sum::<usize>();
        let splits: Vec<Split> = entry.ids.keys().copied().collect();
        for (i, a) in splits.iter().enumerate() {
            for b in &splits[i + 1..] {
                *report.by_pair.entry(format!("{a}/{b}")).or_insert(0) += 1;
            }
        }
        shared.push(SharedText { text: entry.first_text.to_string(), identical, ids: entry.ids.clone() });
    }
    shared.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then_with(|| a.text.cmp(&b.text)));
    shared.truncate(max_examples);
    report.shared = shared;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_folds_case_space_and_punctuation() {
        assert_eq!(normalise_for_matching("  We MAY terminate,\tat any time! "), "we may terminate at any time");
    }

    #[test]
    fn counts_identical_near_identical_and_short() {
        let long = "We may terminate your account at any time without notice.";
        let near = "we may terminate your account, at any time, without notice";
        let rows = [
            (Split::Train, "a", long),
            (Split::Test, "b", long),
            (Split::Train, "c", "Privacy"),
            (Split::Validation, "d", "Privacy."),
            (Split::Train, "e", "Something only in train, long enough to count here."),
            (Split::Train, "f", "This sentence appears twice but only within train."),
            (Split::Train, "g", "This sentence appears twice but only within train."),
        ];
        let report = find_leakage(rows.iter().map(|(s, i, t)| (*s, *i, *t)), 20, 10);
        assert_eq!((report.identical, report.near_identical, report.short_shared), (1, 0, 1));
        assert_eq!(report.by_pair.get("train/test"), Some(&1));

        let rows = [(Split::Train, "a", long), (Split::Validation, "b", near)];
        let report = find_leakage(rows.iter().map(|(s, i, t)| (*s, *i, *t)), 20, 10);
        assert_eq!((report.identical, report.near_identical), (0, 1));
        assert_eq!(report.examples_involved, 2);
        assert!(!report.shared[0].identical);
    }
}
