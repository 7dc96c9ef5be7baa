//! Cross-validation folds of whole instruments.
//!
//! A figure measured on provisions whose siblings (other paragraphs of the
//! same article, the same instrument's headings and drafting) were trained
//! on says little about a draft nobody trained on. Cross-validation here
//! holds out whole instruments: every example of an instrument falls in one
//! fold, each fold is scored by a model trained without it, and every
//! example gets one out-of-fold prediction. Within the training folds, a
//! validation share is drawn exactly as the recipe's held-out split draws
//! it (whole articles, stratified by label), so each fold is trained the way
//! the recipe trains.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::example::Example;
use crate::split::{Split, group_examples, iterative_stratification};

/// The instrument of each example: its document, except that a document
/// named `<other>-<n>` (a later instrument of the same source file, such as
/// an annexed protocol or letter) belongs to `<other>` when that is a
/// document too.
pub fn instruments(examples: &[Example]) -> Vec<String> {
    let documents: BTreeSet<&str> = examples.iter().map(|e| e.document.as_str()).collect();
    examples
        .iter()
        .map(|e| {
            let document = e.document.as_str();
            match document.rsplit_once('-') {
                Some((stem, n))
                    if n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) && documents.contains(stem) =>
                {
                    stem.to_string()
                }
                _ => document.to_string(),
            }
        })
        .collect()
}

/// The fold (0-based, below `folds`) of every example: instruments, largest
/// first (by examples, then by name), each to the fold with the fewest
/// examples so far (the lowest-numbered of those tied). Deterministic, and
/// every fold gets at least one instrument when there are enough.
pub fn instrument_folds(examples: &[Example], folds: usize) -> Vec<usize> {
    let folds = folds.max(1);
    let names = instruments(examples);
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &names {
        *sizes.entry(name).or_default() += 1;
    }
    let mut order: Vec<(&str, usize)> = sizes.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut load = vec![0usize; folds];
    let mut fold_of: HashMap<&str, usize> = HashMap::new();
    for (name, size) in order {
        let lightest = (0..folds).min_by_key(|&k| (load[k], k)).unwrap_or(0);
        load[lightest] += size;
        fold_of.insert(name, lightest);
    }
    names.iter().map(|n| fold_of[n.as_str()]).collect()
}

/// The fold (0-based) of every example whose document a recipe's
/// `[cross_validation]` names, `None` for the others. A named document with
/// no example is an error naming it.
pub fn named_folds(examples: &[Example], folds: &[Vec<String>]) -> Result<Vec<Option<usize>>, String> {
    let fold_of: HashMap<&str, usize> =
        folds.iter().enumerate().flat_map(|(k, documents)| documents.iter().map(move |d| (d.as_str(), k))).collect();
    let present: BTreeSet<&str> = examples.iter().map(|e| e.document.as_str()).collect();
    if let Some(missing) = folds.iter().flatten().find(|d| !present.contains(d.as_str())) {
        return Err(format!("[cross_validation] names document `{missing}`, which has no examples"));
    }
    Ok(examples.iter().map(|e| fold_of.get(e.document.as_str()).copied()).collect())
}

/// The splits of fold `k`: its examples are test; of the rest, a
/// `validation` share goes to validation by seeded iterative stratification
/// over whole articles (and identical texts), the rest to train.
/// `labels[e]` are example `e`'s label indices, below `label_count`.
pub fn fold_splits(
    examples: &[Example],
    fold_of: &[usize],
    k: usize,
    labels: &[Vec<usize>],
    label_count: usize,
    validation: f64,
    seed: u64,
) -> Vec<Split> {
    let rest: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] != k).collect();
    let groups = group_examples(examples, &rest, true);
    let mut splits = iterative_stratification(&groups, labels, label_count, [1.0 - validation, validation, 0.0], seed);
    for (split, &fold) in splits.iter_mut().zip(fold_of) {
        if fold == k {
            *split = Split::Test;
        }
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(id: usize, document: &str, article: usize, labels: &[&str]) -> Example {
        Example {
            id: format!("{document}:art{article}.{id}"),
            document: document.into(),
            text: format!("text {id} of {document}"),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            article: Some(article.to_string()),
            paragraph: None,
            title: None,
            chapter: None,
            origin: String::new(),
        }
    }

    #[test]
    fn named_folds_follow_the_recipe_and_leave_the_rest_out() {
        let examples = [example(0, "A", 1, &[]), example(1, "B", 1, &[]), example(2, "T", 1, &[])];
        let folds = vec![vec!["B".to_string()], vec!["A".to_string()]];
        assert_eq!(named_folds(&examples, &folds), Ok(vec![Some(1), Some(0), None]));
        let err = named_folds(&examples, &[vec!["A".into()], vec!["Z".into()]]).expect_err("unknown");
        assert!(err.contains("`Z`"), "{err}");
    }

    #[test]
    fn numbered_later_instruments_join_their_first() {
        let examples = [
            example(0, "pnr-2007", 1, &[]),
            example(1, "pnr-2007-2", 1, &[]),
            example(2, "convention-1988", 1, &[]),
            example(3, "lonely-2", 1, &[]),
        ];
        assert_eq!(instruments(&examples), ["pnr-2007", "pnr-2007", "convention-1988", "lonely-2"]);
    }

    #[test]
    fn folds_hold_whole_instruments_and_balance_their_size() {
        let mut examples = Vec::new();
        for (d, size) in [("a", 9), ("b", 7), ("c", 5), ("c-2", 1), ("d", 4), ("e", 3), ("f", 2)] {
            for i in 0..size {
                examples.push(example(examples.len(), d, i / 2, if i % 3 == 0 { &["x"] } else { &[] }));
            }
        }
        let fold_of = instrument_folds(&examples, 3);
        let names = instruments(&examples);
        for (i, name) in names.iter().enumerate() {
            let same = names.iter().enumerate().filter(|(_, n)| *n == name).all(|(j, _)| fold_of[j] == fold_of[i]);
            assert!(same, "{name} split across folds");
        }
        let sizes: Vec<usize> = (0..3).map(|k| fold_of.iter().filter(|&&f| f == k).count()).collect();
        assert_eq!(sizes, [11, 10, 10]);
        let labels: Vec<Vec<usize>> =
            examples.iter().map(|e| if e.labels.is_empty() { vec![] } else { vec![0] }).collect();
        for k in 0..3 {
            let splits = fold_splits(&examples, &fold_of, k, &labels, 1, 0.2, 7);
            for (i, split) in splits.iter().enumerate() {
                assert_eq!(*split == Split::Test, fold_of[i] == k);
            }
            assert!(splits.contains(&Split::Validation) && splits.contains(&Split::Train));
            assert_eq!(crate::split::articles_across_splits(&examples, &splits), 0);
            assert_eq!(splits, fold_splits(&examples, &fold_of, k, &labels, 1, 0.2, 7));
        }
    }
}
