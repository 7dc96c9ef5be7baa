//! Assigning examples to train / validation / test.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use clause_rng::SplitMix64;

use crate::example::Example;
use crate::leakage::normalise_for_matching;

/// One of the three splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Examples a model learns from.
    Train,
    /// Examples used to tune (thresholds, epochs).
    Validation,
    /// Examples looked at once, to report.
    Test,
}

impl Split {
    /// All splits, in output order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The split's name, as in file names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011) over
/// groups of examples that must stay together.
///
/// `groups[g]` lists example indices; `labels[e]` lists label indices of
/// example `e` (each below `label_count`). `fractions` are the desired shares
/// of train, validation and test. Labels are handled rarest first, so rare
/// labels are spread over the splits before common ones fill them; ties are
/// broken by the seeded generator. Returns the split of every example.
pub fn iterative_stratification(
    groups: &[Vec<usize>],
    labels: &[Vec<usize>],
    label_count: usize,
    fractions: [f64; 3],
    seed: u64,
) -> Vec<Split> {
    let mut rng = SplitMix64::new(seed);
    let group_labels: Vec<BTreeMap<usize, usize>> = groups
        .iter()
        .map(|members| {
            let mut counts = BTreeMap::new();
            for &example in members {
                for &label in &labels[example] {
                    *counts.entry(label).or_insert(0) += 1;
                }
            }
            counts
        })
        .collect();
    let total: usize = groups.iter().map(Vec::len).sum();
    let mut desired: [f64; 3] = fractions.map(|f| f * total as f64);
    let mut label_totals = vec![0usize; label_count];
    for counts in &group_labels {
        for (&label, &n) in counts {
            label_totals[label] += n;
        }
    }
    let mut desired_per_label: Vec<[f64; 3]> = label_totals.iter().map(|&n| fractions.map(|f| f * n as f64)).collect();

    let mut order: Vec<usize> = (0..groups.len()).collect();
    rng.shuffle(&mut order);
    let mut assigned: Vec<Option<Split>> = vec![None; groups.len()];
    let mut remaining = label_totals.clone();

    let assign = |group: usize,
                  split: Split,
                  assigned: &mut Vec<Option<Split>>,
                  desired: &mut [f64; 3],
                  desired_per_label: &mut Vec<[f64; 3]>,
                  remaining: &mut Vec<usize>| {
        assigned[group] = Some(split);
        desired[split.index()] -= groups[group].len() as f64;
        for (&label, &n) in &group_labels[group] {
            desired_per_label[label][split.index()] -= n as f64;
            remaining[label] -= n;
        }
    };

    // Rarest label first among those that still have unassigned examples.
    while let Some(label) = (0..label_count).filter(|&l| remaining[l] > 0).min_by_key(|&l| (remaining[l], l)) {
        let members: Vec<usize> =
            order.iter().copied().filter(|&g| assigned[g].is_none() && group_labels[g].contains_key(&label)).collect();
        for group in members {
            let split = pick(&desired_per_label[label], &desired, &mut rng);
            assign(group, split, &mut assigned, &mut desired, &mut desired_per_label, &mut remaining);
        }
    }
    for &group in &order {
        if assigned[group].is_none() {
            let split = pick(&desired, &desired, &mut rng);
            assign(group, split, &mut assigned, &mut desired, &mut desired_per_label, &mut remaining);
        }
    }

    let mut out = vec![Split::Train; labels.len()];
    for (group, members) in groups.iter().enumerate() {
        let split = assigned[group].unwrap_or(Split::Train);
        for &example in members {
            out[example] = split;
        }
    }
    out
}

/// The split with the largest `primary` demand, then the largest `secondary`
/// demand, then a random one of those tied.
fn pick(primary: &[f64; 3], secondary: &[f64; 3], rng: &mut SplitMix64) -> Split {
    const EPS: f64 = 1e-9;
    let best = primary.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<Split> = Split::ALL.into_iter().filter(|s| primary[s.index()] >= best - EPS).collect();
    let best_secondary = tied.iter().map(|s| secondary[s.index()]).fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<Split> = tied.into_iter().filter(|s| secondary[s.index()] >= best_secondary - EPS).collect();
    tied[rng.below(tied.len())]
}

/// Whole documents to fixed splits: `validation` and `test` name documents,
/// every other document is train.
pub fn split_by_document(documents: &[&str], validation: &BTreeSet<&str>, test: &BTreeSet<&str>) -> Vec<Split> {
    documents
        .iter()
        .map(|d| {
            if test.contains(d) {
                Split::Test
            } else if validation.contains(d) {
                Split::Validation
            } else {
                Split::Train
            }
        })
        .collect()
}

/// The examples `members` in groups that must share a split: examples whose
/// normalised texts are identical, and with `by_article`, the provisions of
/// one article of one document. Groups that share an example are merged.
pub fn group_examples(examples: &[Example], members: &[usize], by_article: bool) -> Vec<Vec<usize>> {
    // Union-find over the members, joined through each key they carry.
    let mut parent: Vec<usize> = (0..examples.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with_key: HashMap<String, usize> = HashMap::new();
    for &index in members {
        let example = &examples[index];
        let mut keys = vec![format!("text\u{1}{}", normalise_for_matching(&example.text))];
        if let (true, Some(article)) = (by_article, &example.article) {
            keys.push(format!("article\u{1}{}\u{1}{article}", example.document));
        }
        for key in keys {
            let first = *first_with_key.entry(key).or_insert(index);
            let (a, b) = (root(&mut parent, first), root(&mut parent, index));
            parent[b] = a;
        }
    }
    let mut group_of_root: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &index in members {
        let r = root(&mut parent, index);
        let group = *group_of_root.entry(r).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(index);
    }
    groups
}

/// Articles (of one document) whose provisions sit in more than one split.
pub fn articles_across_splits(examples: &[Example], splits: &[Split]) -> usize {
    let mut seen: HashMap<(&str, &str), BTreeSet<Split>> = HashMap::new();
    for (example, split) in examples.iter().zip(splits) {
        if let Some(article) = &example.article {
            seen.entry((&example.document, article)).or_default().insert(*split);
        }
    }
    seen.values().filter(|s| s.len() > 1).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        // Label 0 is rare (every 10th example), label 1 common (every 2nd).
        let labels: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                let mut l = Vec::new();
                if i % 10 == 0 {
                    l.push(0);
                }
                if i % 2 == 0 {
                    l.push(1);
                }
                l
            })
            .collect();
        let groups = (0..n).map(|i| vec![i]).collect();
        (groups, labels)
    }

    fn counts(splits: &[Split], labels: &[Vec<usize>], label: usize) -> [usize; 3] {
        let mut out = [0; 3];
        for (s, l) in splits.iter().zip(labels) {
            if l.contains(&label) {
                out[s.index()] += 1;
            }
        }
        out
    }

    #[test]
    fn stratification_keeps_label_proportions() {
        let (groups, labels) = toy(400);
        let splits = iterative_stratification(&groups, &labels, 2, [0.7, 0.15, 0.15], 1);
        let sizes = Split::ALL.map(|s| splits.iter().filter(|&&x| x == s).count());
        assert!((275..=285).contains(&sizes[0]), "{sizes:?}");
        let rare = counts(&splits, &labels, 0);
        assert_eq!(rare.iter().sum::<usize>(), 40);
        assert!((27..=29).contains(&rare[0]) && (5..=7).contains(&rare[1]) && (5..=7).contains(&rare[2]), "{rare:?}");
    }

    #[test]
    fn stratification_is_deterministic_per_seed() {
        let (groups, labels) = toy(200);
        let a = iterative_stratification(&groups, &labels, 2, [0.7, 0.15, 0.15], 9);
        let b = iterative_stratification(&groups, &labels, 2, [0.7, 0.15, 0.15], 9);
        let c = iterative_stratification(&groups, &labels, 2, [0.7, 0.15, 0.15], 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn groups_stay_together() {
        let labels = vec![vec![0], vec![0], vec![], vec![0], vec![]];
        let groups = vec![vec![0, 1], vec![2], vec![3], vec![4]];
        for seed in 0..20 {
            let splits = iterative_stratification(&groups, &labels, 1, [0.6, 0.2, 0.2], seed);
            assert_eq!(splits[0], splits[1]);
        }
    }

    #[test]
    fn document_split_defaults_to_train() {
        let validation: BTreeSet<&str> = ["B"].into();
        let test: BTreeSet<&str> = ["C"].into();
        let got = split_by_document(&["A", "B", "C", "A"], &validation, &test);
        assert_eq!(got, vec![Split::Train, Split::Validation, Split::Test, Split::Train]);
    }

    fn provision(id: &str, article: Option<&str>, text: &str) -> crate::example::Example {
        crate::example::Example {
            id: id.into(),
            document: id.split(':').next().unwrap_or_default().into(),
            text: text.into(),
            labels: Vec::new(),
            article: article.map(Into::into),
            paragraph: None,
            title: None,
            chapter: None,
            origin: String::new(),
        }
    }

    #[test]
    fn an_article_and_identical_texts_form_one_group() {
        let examples = [
            provision("a:art1.1", Some("1"), "First paragraph."),
            provision("a:art1.2", Some("1"), "Denunciation takes effect after six months."),
            provision("b:art9", Some("9"), "Denunciation  takes effect after six months."),
            provision("b:art10", Some("10"), "Something else."),
            provision("a:preamble", None, "Recitals."),
        ];
        let all: Vec<usize> = (0..examples.len()).collect();
        let mut groups = group_examples(&examples, &all, true);
        groups.iter_mut().for_each(|g| g.sort_unstable());
        groups.sort();
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3], vec![4]]);
        // Without articles, only the identical texts join.
        let mut groups = group_examples(&examples, &all, false);
        groups.sort();
        assert_eq!(groups, vec![vec![0], vec![1, 2], vec![3], vec![4]]);
        // Only the members given are grouped.
        assert_eq!(group_examples(&examples, &[3, 4], true), vec![vec![3], vec![4]]);

        let splits = [Split::Train, Split::Validation, Split::Validation, Split::Test, Split::Test];
        assert_eq!(articles_across_splits(&examples, &splits), 1);
    }
}
