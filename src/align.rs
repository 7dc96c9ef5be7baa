//! Alignment of the provisions of two versions of a draft, for `clause diff`.
//!
//! Between versions of a treaty, articles are renumbered, removed and added,
//! provisions are reworded and moved to other articles. Numbers therefore say
//! little about which provision became which: provisions are matched by their
//! text, and numbers, titles and order only break near-ties.
//!
//! # Similarity
//!
//! A text is split into words at every character that is not alphanumeric and
//! lowercased; a word that starts with a digit becomes one shared number token,
//! so that cross-references renumbered along with the articles ("Article 27"
//! becoming "Article 28") do not count as rewording. A text is the vector of
//! its word unigram and bigram counts; bigrams make a changed phrase cost more
//! than the same words in another arrangement. Each feature is weighted by its
//! inverse document frequency `ln((N + 1) / df)`, counted within each version
//! (`N` the larger version's number of provisions, `df` the larger of the
//! numbers of provisions containing the feature in either version), so that a
//! provision left unchanged does not count twice and a one-provision draft
//! still gives its words equal weight. Unsmoothed, it lets the words of nearly
//! every provision weigh next to nothing, and a formula recurring in many
//! provisions ("Each Party shall adopt such legislative and other measures as
//! may be necessary ...") weigh less than the words that tell them apart: two
//! different offences of the Budapest Convention written with the same formula
//! score 0.15 to 0.35 among its other provisions, where plain counts put some
//! of them above 0.7. The similarity of two texts
//! is the cosine of their vectors, in `[0, 1]`.
//!
//! # Matching
//!
//! 1. Texts equal up to whitespace that occur once in each version are matched
//!    first, whatever their numbers.
//! 2. Every other pair of unmatched provisions is a candidate if the texts are
//!    equal or their similarity is at least [`MIN_SIMILARITY`].
//! 3. Context is read from the surest matches: those of step 1 and the
//!    candidates that are each other's best by a clear margin.
//!    It gives which old article became which new one, and an order-preserving
//!    chain of matches that splits both drafts into corresponding gaps.
//! 4. Candidates are taken best first, each only if both its provisions are
//!    still unmatched: equal texts before merely similar ones, then by
//!    similarity plus small bonuses (same title, articles that correspond,
//!    inside the corresponding gap, same article and paragraph numbers), then
//!    by closeness to the position the context predicts. The bonuses are why
//!    recurring boilerplate paragraphs follow their own articles, yet they
//!    never admit a pair below the threshold.
//! 5. A paragraph rewritten beyond the threshold keeps its place: when the
//!    other matched paragraphs of its article all went to one new article,
//!    and that article has an unmatched paragraph of the same number, the two
//!    are matched as changed, with their similarity however low. Without this
//!    a weakened safeguard reads as one paragraph removed and another added.

use std::cmp::Reverse;
use std::collections::HashMap;

use clause_data::segment::Provision;

/// The least similarity at which two different texts are taken for one
/// provision in two versions. A paragraph with a few words changed scores well
/// above it (0.75 to 0.95 in the tests); two provisions that share only a
/// formula and the common words of legal English score well below it (under
/// 0.4). A text that grew to three times its weight with its old wording kept
/// intact sits at it.
pub const MIN_SIMILARITY: f64 = 0.5;

/// Bonus for equal article titles: titles survive renumbering.
const TITLE_BONUS: f64 = 0.05;
/// Bonus, scaled by the share of the articles' sure matches that join them,
/// for a pair whose articles correspond.
const ARTICLE_BONUS: f64 = 0.05;
/// Bonus for a pair that lies in corresponding gaps of the order chain, so
/// that near-equal texts are not matched across each other.
const ORDER_BONUS: f64 = 0.02;
/// Bonus for equal article and paragraph numbers. Small, since after an
/// insertion the same number usually names a different provision.
const KEY_BONUS: f64 = 0.01;
/// How much better than its runner-up on both sides a candidate must be for
/// its articles and position to be trusted as context.
const SURE_MARGIN: f64 = 0.05;
/// Similarities are rounded to this.
const SIMILARITY_QUANTUM: f64 = 1e-9;
/// Scores are compared in these units, so that rounding noise between equal
/// texts cannot decide what the order tie-break should.
const SCORE_QUANTUM: f64 = 1e-6;

/// One provision as the alignment sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlignItem<'a> {
    /// The number of the article the provision belongs to, as written ("27",
    /// "12bis"); `None` outside articles (preamble, closing). Provisions of one
    /// article are expected to stay together.
    pub article: Option<&'a str>,
    /// The paragraph number within the article, as written.
    pub paragraph: Option<&'a str>,
    /// The article's title, if it has one.
    pub title: Option<&'a str>,
    /// The provision's text.
    pub text: &'a str,
}

impl<'a> From<&'a Provision> for AlignItem<'a> {
    fn from(provision: &'a Provision) -> Self {
        AlignItem {
            article: provision.article.as_deref(),
            paragraph: provision.paragraph.as_deref(),
            title: provision.title.as_deref(),
            text: &provision.text,
        }
    }
}

/// One line of the alignment. Indices point into the slices given to [`align`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pair {
    /// The same provision in both versions.
    Matched {
        /// Index in the old version.
        old: usize,
        /// Index in the new version.
        new: usize,
        /// Text similarity in `[0, 1]`; 1 for identical texts, and also for
        /// texts that differ only in numbers, case or punctuation.
        similarity: f64,
        /// Whether the texts are equal up to whitespace.
        identical: bool,
    },
    /// A provision of the old version with no counterpart in the new one.
    Removed {
        /// Index in the old version.
        old: usize,
    },
    /// A provision of the new version with no counterpart in the old one.
    Added {
        /// Index in the new version.
        new: usize,
    },
}

/// Match the provisions of `old` to those of `new` (see the module
/// documentation for the rules).
///
/// Every index of both slices appears exactly once in the result, which is in
/// the reading order of the new version; a removed provision follows the
/// nearest provision before it in the old version that has a match, or opens
/// the result if there is none.
pub fn align(old: &[AlignItem<'_>], new: &[AlignItem<'_>]) -> Vec<Pair> {
    let classes = TextClasses::new(old, new);
    let mut matching = Matching::new(old.len(), new.len());

    let mut sure = Vec::new();
    for (i, &class) in classes.old.iter().enumerate() {
        if let Some(j) = classes.unique_pair(class) {
            matching.accept(i, j, 1.0, true);
            sure.push((i, j));
        }
    }

    let free_old: Vec<usize> = (0..old.len()).filter(|&i| matching.old[i].is_none()).collect();
    let free_new: Vec<usize> = (0..new.len()).filter(|&j| matching.new[j].is_none()).collect();
    if !free_old.is_empty() && !free_new.is_empty() {
        let candidates = candidates(old, new, &classes, &free_old, &free_new, &mut sure);
        let context = Context::new(old, new, sure);
        let mut ranked: Vec<(Rank, &Candidate)> = candidates.iter().map(|c| (context.rank(c), c)).collect();
        ranked.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (_, candidate) in ranked {
            if matching.old[candidate.old].is_none() && matching.new[candidate.new].is_none() {
                matching.accept(candidate.old, candidate.new, candidate.similarity, candidate.exact);
            }
        }
    }
    rematch_in_place(old, new, &mut matching);
    matching.reading_order()
}

/// Step 5 of the module documentation.
fn rematch_in_place(old: &[AlignItem<'_>], new: &[AlignItem<'_>], matching: &mut Matching) {
    use std::collections::{BTreeMap, BTreeSet};
    let mut destinations: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (i, matched) in matching.old.iter().enumerate() {
        if let (Some((j, _, _)), Some(from)) = (matched, old[i].article) {
            destinations.entry(from).or_default().insert(new[*j].article.unwrap_or(""));
        }
    }
    // Only numbers that name one provision in each version say "the same place".
    let mut keys: BTreeMap<(bool, &str, &str), usize> = BTreeMap::new();
    for (is_new, items) in [(false, old), (true, new)] {
        for item in items {
            if let (Some(a), Some(p)) = (item.article, item.paragraph) {
                *keys.entry((is_new, a, p)).or_default() += 1;
            }
        }
    }
    for (i, item) in old.iter().enumerate() {
        let (None, Some(from), Some(paragraph)) = (matching.old[i], item.article, item.paragraph) else {
            continue;
        };
        if keys.get(&(false, from, paragraph)) != Some(&1) {
            continue;
        }
        let Some(to) = destinations.get(from).filter(|d| d.len() == 1).and_then(|d| d.first()) else {
            continue;
        };
        if keys.get(&(true, *to, paragraph)) != Some(&1) {
            continue;
        }
        let free = (0..new.len())
            .find(|&j| matching.new[j].is_none() && new[j].article == Some(to) && new[j].paragraph == Some(paragraph));
        if let Some(j) = free {
            let vectors = vectorise(&[item.text], &[new[j].text]);
            let dot: f64 = vectors[0]
                .ids
                .iter()
                .zip(&vectors[0].weights)
                .filter_map(|(id, w)| vectors[1].ids.binary_search(id).ok().map(|k| w * vectors[1].weights[k]))
                .sum();
            matching.accept(i, j, round_similarity(dot), false);
        }
    }
}

/// Groups texts that are equal up to whitespace, across both versions.
struct TextClasses {
    old: Vec<usize>,
    new: Vec<usize>,
    old_count: Vec<usize>,
    new_count: Vec<usize>,
    /// The last new index of each class; the only one when its count is 1.
    new_index: Vec<usize>,
}

impl TextClasses {
    fn new(old: &[AlignItem<'_>], new: &[AlignItem<'_>]) -> Self {
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut class_of = |text: &str| {
            let next = ids.len();
            *ids.entry(collapse_whitespace(text)).or_insert(next)
        };
        let old: Vec<usize> = old.iter().map(|item| class_of(item.text)).collect();
        let new: Vec<usize> = new.iter().map(|item| class_of(item.text)).collect();
        let classes = ids.len();
        let mut old_count = vec![0; classes];
        let mut new_count = vec![0; classes];
        let mut new_index = vec![0; classes];
        for &class in &old {
            old_count[class] += 1;
        }
        for (j, &class) in new.iter().enumerate() {
            new_count[class] += 1;
            new_index[class] = j;
        }
        TextClasses { old, new, old_count, new_count, new_index }
    }

    fn unique_pair(&self, class: usize) -> Option<usize> {
        (self.old_count[class] == 1 && self.new_count[class] == 1).then_some(self.new_index[class])
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A pair that may be matched.
struct Candidate {
    old: usize,
    new: usize,
    similarity: f64,
    exact: bool,
}

/// The best and second-best strength one provision has with any other.
#[derive(Clone, Copy)]
struct Best {
    index: usize,
    first: f64,
    second: f64,
}

impl Best {
    const NONE: Best = Best { index: usize::MAX, first: 0.0, second: 0.0 };

    fn offer(&mut self, index: usize, strength: f64) {
        if strength > self.first {
            self.second = self.first;
            self.first = strength;
            self.index = index;
        } else if strength > self.second {
            self.second = strength;
        }
    }

    fn is_clearly(&self, index: usize, strength: f64) -> bool {
        self.index == index && strength - self.second >= SURE_MARGIN
    }
}

/// Every free pair with equal or similar enough texts; the ones that are each
/// other's best by a clear margin are also added to `sure`.
fn candidates(
    old: &[AlignItem<'_>],
    new: &[AlignItem<'_>],
    classes: &TextClasses,
    free_old: &[usize],
    free_new: &[usize],
    sure: &mut Vec<(usize, usize)>,
) -> Vec<Candidate> {
    let old_texts: Vec<&str> = old.iter().map(|item| item.text).collect();
    let new_texts: Vec<&str> = new.iter().map(|item| item.text).collect();
    let vectors = vectorise(&old_texts, &new_texts);
    let (old_vectors, new_vectors) = vectors.split_at(old.len());

    let index = PostingIndex::new(free_old.iter().map(|&i| &old_vectors[i]));
    let mut dots = vec![0.0; free_old.len()];
    let mut best_old = vec![Best::NONE; old.len()];
    let mut best_new = vec![Best::NONE; new.len()];
    let mut candidates = Vec::new();
    for &j in free_new {
        index.dot_products(&new_vectors[j], &mut dots);
        for (&i, &dot) in free_old.iter().zip(&dots) {
            let exact = classes.old[i] == classes.new[j];
            let similarity = if exact { 1.0 } else { round_similarity(dot) };
            // Equal texts outrank every merely similar pair, as they do when matching.
            let strength = if exact { 2.0 } else { similarity };
            best_old[i].offer(j, strength);
            best_new[j].offer(i, strength);
            if exact || similarity >= MIN_SIMILARITY {
                candidates.push(Candidate { old: i, new: j, similarity, exact });
            }
        }
    }
    for candidate in &candidates {
        let strength = if candidate.exact { 2.0 } else { candidate.similarity };
        if best_old[candidate.old].is_clearly(candidate.new, strength)
            && best_new[candidate.new].is_clearly(candidate.old, strength)
        {
            sure.push((candidate.old, candidate.new));
        }
    }
    candidates
}

/// A unit-length sparse vector: feature ids ascending, with their weights.
struct SparseVector {
    ids: Vec<u32>,
    weights: Vec<f64>,
}

/// Vectors stored by feature, so that the dot products of one vector with all
/// of them cost only the features they share: comparing every pair by merging
/// their feature lists took ten times longer on 500 × 500 provisions.
struct PostingIndex {
    /// `postings[starts[f]..starts[f + 1]]` holds (vector, weight) for feature `f`.
    starts: Vec<usize>,
    postings: Vec<(u32, f64)>,
}

impl PostingIndex {
    fn new<'v>(vectors: impl Iterator<Item = &'v SparseVector> + Clone) -> Self {
        let features =
            vectors.clone().filter_map(|vector| vector.ids.last()).map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut starts = vec![0; features + 1];
        for vector in vectors.clone() {
            for &id in &vector.ids {
                starts[id as usize + 1] += 1;
            }
        }
        for feature in 0..features {
            starts[feature + 1] += starts[feature];
        }
        let mut next = starts.clone();
        let mut postings = vec![(0, 0.0); starts[features]];
        for (index, vector) in vectors.enumerate() {
            for (&id, &weight) in vector.ids.iter().zip(&vector.weights) {
                let slot = &mut next[id as usize];
                postings[*slot] = (index as u32, weight);
                *slot += 1;
            }
        }
        PostingIndex { starts, postings }
    }

    /// `dots[k]` becomes the dot product of `vector` with the `k`th indexed vector.
    fn dot_products(&self, vector: &SparseVector, dots: &mut [f64]) {
        dots.fill(0.0);
        for (&id, &weight) in vector.ids.iter().zip(&vector.weights) {
            let id = id as usize;
            if id + 1 < self.starts.len() {
                for &(index, indexed) in &self.postings[self.starts[id]..self.starts[id + 1]] {
                    dots[index as usize] += weight * indexed;
                }
            }
        }
    }
}

/// The one token every number becomes.
const NUMBER: &str = "#";

/// Weighted unigram and bigram vectors of the texts of both versions, old
/// first (see the module documentation).
fn vectorise(old: &[&str], new: &[&str]) -> Vec<SparseVector> {
    let mut words: HashMap<String, u32> = HashMap::new();
    let mut features: HashMap<u64, u32> = HashMap::new();
    let mut feature_id = |key: u64| {
        let next = features.len() as u32;
        *features.entry(key).or_insert(next)
    };
    let mut counts: Vec<Vec<(u32, u32)>> = Vec::with_capacity(old.len() + new.len());
    // Per version, so that a provision left unchanged does not count twice.
    let mut document_frequency: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut lowercase = String::new();
    let mut ids: Vec<u32> = Vec::new();
    for (version, text) in old.iter().map(|text| (0, text)).chain(new.iter().map(|text| (1, text))) {
        ids.clear();
        let mut previous: Option<u32> = None;
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
            let word = if word.starts_with(char::is_numeric) {
                NUMBER
            } else {
                lowercase.clear();
                lowercase.extend(word.chars().flat_map(char::to_lowercase));
                lowercase.as_str()
            };
            let word = match words.get(word) {
                Some(&id) => id,
                None => {
                    let id = words.len() as u32;
                    words.insert(word.to_string(), id);
                    id
                }
            };
            ids.push(feature_id(u64::from(word)));
            if let Some(previous) = previous {
                // Offset by one so that no bigram key equals a unigram key.
                ids.push(feature_id(((u64::from(previous) + 1) << 32) | u64::from(word)));
            }
            previous = Some(word);
        }
        ids.sort_unstable();
        let mut item: Vec<(u32, u32)> = Vec::new();
        for &id in &ids {
            match item.last_mut() {
                Some((last, count)) if *last == id => *count += 1,
                _ => item.push((id, 1)),
            }
        }
        let frequency = &mut document_frequency[version];
        for &(id, _) in &item {
            let id = id as usize;
            if id >= frequency.len() {
                frequency.resize(id + 1, 0);
            }
            frequency[id] += 1;
        }
        counts.push(item);
    }

    // Unsmoothed, so that words found in nearly every provision weigh next to
    // nothing; still positive, since no feature is in more than `documents`.
    let documents = old.len().max(new.len()) as f64;
    let [old_frequency, new_frequency] = document_frequency;
    let idf: Vec<f64> = (0..features.len())
        .map(|id| {
            let df = old_frequency.get(id).copied().unwrap_or(0).max(new_frequency.get(id).copied().unwrap_or(0));
            ((documents + 1.0) / f64::from(df)).ln()
        })
        .collect();
    counts
        .into_iter()
        .map(|item| {
            let ids: Vec<u32> = item.iter().map(|&(id, _)| id).collect();
            let mut weights: Vec<f64> = item.iter().map(|&(id, count)| f64::from(count) * idf[id as usize]).collect();
            let norm = weights.iter().map(|w| w * w).sum::<f64>().sqrt();
            if norm > 0.0 {
                weights.iter_mut().for_each(|w| *w /= norm);
            }
            SparseVector { ids, weights }
        })
        .collect()
}

/// The similarity of two vectors by merging their feature lists.
#[cfg(test)]
fn cosine(a: &SparseVector, b: &SparseVector) -> f64 {
    use std::cmp::Ordering;
    let (mut x, mut y, mut dot) = (0, 0, 0.0);
    while x < a.ids.len() && y < b.ids.len() {
        match a.ids[x].cmp(&b.ids[y]) {
            Ordering::Less => x += 1,
            Ordering::Greater => y += 1,
            Ordering::Equal => {
                dot += a.weights[x] * b.weights[y];
                x += 1;
                y += 1;
            }
        }
    }
    round_similarity(dot)
}

/// Rounded so that texts with equal vectors score exactly 1 and equal pairs
/// score exactly alike.
fn round_similarity(dot: f64) -> f64 {
    ((dot / SIMILARITY_QUANTUM).round() * SIMILARITY_QUANTUM).clamp(0.0, 1.0)
}

/// Sort key of a candidate: smaller is taken first.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    inexact: bool,
    score: Reverse<i64>,
    displacement: usize,
    new: usize,
    old: usize,
}

/// What the sure matches say about the rest.
struct Context<'a, 'b> {
    old: &'a [AlignItem<'b>],
    new: &'a [AlignItem<'b>],
    old_title: Vec<Option<String>>,
    new_title: Vec<Option<String>>,
    old_article: Vec<Option<usize>>,
    new_article: Vec<Option<usize>>,
    /// Sure matches joining an old article to a new one.
    votes: HashMap<(usize, usize), u32>,
    old_votes: Vec<u32>,
    new_votes: Vec<u32>,
    /// The longest order-preserving subsequence of the sure matches, by old index.
    chain: Vec<(usize, usize)>,
}

impl<'a, 'b> Context<'a, 'b> {
    fn new(old: &'a [AlignItem<'b>], new: &'a [AlignItem<'b>], mut sure: Vec<(usize, usize)>) -> Self {
        let (old_article, old_articles) = article_ids(old);
        let (new_article, new_articles) = article_ids(new);
        let mut votes = HashMap::new();
        let mut old_votes = vec![0; old_articles];
        let mut new_votes = vec![0; new_articles];
        for &(i, j) in &sure {
            if let (Some(a), Some(b)) = (old_article[i], new_article[j]) {
                *votes.entry((a, b)).or_insert(0) += 1;
                old_votes[a] += 1;
                new_votes[b] += 1;
            }
        }
        sure.sort_unstable();
        let chain = longest_increasing_chain(&sure);
        Context {
            old,
            new,
            old_title: normalised_titles(old),
            new_title: normalised_titles(new),
            old_article,
            new_article,
            votes,
            old_votes,
            new_votes,
            chain,
        }
    }

    fn rank(&self, candidate: &Candidate) -> Rank {
        let (i, j) = (candidate.old, candidate.new);
        let (old, new) = (&self.old[i], &self.new[j]);
        let mut score = candidate.similarity;
        if self.old_title[i].is_some() && self.old_title[i] == self.new_title[j] {
            score += TITLE_BONUS;
        }
        if let (Some(a), Some(b)) = (self.old_article[i], self.new_article[j])
            && let Some(&votes) = self.votes.get(&(a, b))
        {
            let share = f64::from(votes) / f64::from(self.old_votes[a].max(self.new_votes[b]));
            score += ARTICLE_BONUS * share;
        }
        if old.article.is_some() && old.article == new.article && old.paragraph == new.paragraph {
            score += KEY_BONUS;
        }
        let (in_gap, displacement) = self.position(i, j);
        if in_gap {
            score += ORDER_BONUS;
        }
        Rank {
            inexact: !candidate.exact,
            score: Reverse((score / SCORE_QUANTUM).round() as i64),
            displacement,
            new: j,
            old: i,
        }
    }

    /// Whether new `j` lies in the gap of the chain that corresponds to old
    /// `i`'s, and how far it is from where `i` would land keeping its offset
    /// from the chain match before it.
    fn position(&self, i: usize, j: usize) -> (bool, usize) {
        let at = self.chain.partition_point(|&(o, _)| o < i);
        if let Some(&(o, n)) = self.chain.get(at)
            && o == i
        {
            return (n == j, n.abs_diff(j));
        }
        let previous = at.checked_sub(1).map(|k| self.chain[k]);
        let next = self.chain.get(at).copied();
        let after_previous = previous.is_none_or(|(_, n)| j > n);
        let before_next = next.is_none_or(|(_, n)| j < n);
        let expected = match (previous, next) {
            (Some((o, n)), _) => (n + (i - o)) as isize,
            (None, Some((o, n))) => n as isize - (o - i) as isize,
            (None, None) => i as isize,
        };
        (after_previous && before_next, expected.abs_diff(j as isize))
    }
}

/// Dense ids for the article numbers of `items`, and how many there are.
fn article_ids(items: &[AlignItem<'_>]) -> (Vec<Option<usize>>, usize) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let per_item = items
        .iter()
        .map(|item| {
            item.article.map(|article| {
                let next = ids.len();
                *ids.entry(article).or_insert(next)
            })
        })
        .collect();
    (per_item, ids.len())
}

/// Titles compared ignoring case and whitespace; `None` for untitled items.
fn normalised_titles(items: &[AlignItem<'_>]) -> Vec<Option<String>> {
    items
        .iter()
        .map(|item| {
            item.title.map(|title| title.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// The longest subsequence of `pairs` (sorted by their first element) whose
/// second elements increase.
fn longest_increasing_chain(pairs: &[(usize, usize)]) -> Vec<(usize, usize)> {
    // Patience sorting: tails[k] is the index of the smallest-ending chain of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; pairs.len()];
    for (index, &(_, value)) in pairs.iter().enumerate() {
        let length = tails.partition_point(|&t| pairs[t].1 < value);
        previous[index] = length.checked_sub(1).map(|k| tails[k]);
        if length == tails.len() {
            tails.push(index);
        } else {
            tails[length] = index;
        }
    }
    let mut chain = Vec::with_capacity(tails.len());
    let mut cursor = tails.last().copied();
    while let Some(index) = cursor {
        chain.push(pairs[index]);
        cursor = previous[index];
    }
    chain.reverse();
    chain
}

/// The matches made so far.
struct Matching {
    /// For each old provision: its new index, similarity and whether identical.
    old: Vec<Option<(usize, f64, bool)>>,
    new: Vec<Option<usize>>,
}

impl Matching {
    fn new(old: usize, new: usize) -> Self {
        Matching { old: vec![None; old], new: vec![None; new] }
    }

    fn accept(&mut self, i: usize, j: usize, similarity: f64, identical: bool) {
        self.old[i] = Some((j, similarity, identical));
        self.new[j] = Some(i);
    }

    fn reading_order(&self) -> Vec<Pair> {
        let mut leading = Vec::new();
        let mut following: Vec<Vec<usize>> = vec![Vec::new(); self.old.len()];
        let mut last_matched = None;
        for (i, matched) in self.old.iter().enumerate() {
            match (matched, last_matched) {
                (Some(_), _) => last_matched = Some(i),
                (None, Some(k)) => following[k].push(i),
                (None, None) => leading.push(i),
            }
        }
        let mut pairs = Vec::with_capacity(self.old.len() + self.new.len());
        pairs.extend(leading.into_iter().map(|old| Pair::Removed { old }));
        for (new, matched) in self.new.iter().enumerate() {
            match matched.and_then(|old| self.old[old].map(|m| (old, m))) {
                Some((old, (_, similarity, identical))) => {
                    pairs.push(Pair::Matched { old, new, similarity, identical });
                    pairs.extend(following[old].iter().map(|&old| Pair::Removed { old }));
                }
                None => pairs.push(Pair::Added { new }),
            }
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct provisions, in the style of a criminal-law convention.
    const TEXTS: [&str; 10] = [
        "The Parties shall cooperate with each other to the widest extent possible for the purposes of \
         investigations concerning criminal offences related to computer systems and data.",
        "Each Party shall afford the other Parties mutual assistance in the collection of evidence in electronic \
         form of a criminal offence.",
        "Each Party shall designate a point of contact available on a twenty-four hour, seven-day-a-week basis in \
         order to ensure the provision of immediate assistance.",
        "A Party may request another Party to order or otherwise obtain the expeditious preservation of data stored \
         by means of a computer system located within the territory of that other Party.",
        "This Convention shall be open for signature by the member States of the Council of Europe and by non-member \
         States which have participated in its elaboration.",
        "Any State may, at the time of signature or when depositing its instrument of ratification, specify the \
         territory or territories to which this Convention shall apply.",
        "Any Party may, at any time, denounce this Convention by means of a notification addressed to the Secretary \
         General of the Council of Europe.",
        "Disputes between the Parties concerning the interpretation or application of this Convention shall be \
         settled through negotiation or any other peaceful means of their choice.",
        "The Secretary General shall notify the member States of any signature, any deposit of an instrument of \
         ratification and any date of entry into force of this Convention.",
        "Nothing in this Convention shall affect the rights and undertakings derived from international multilateral \
         conventions concerning special matters.",
    ];

    const BOILERPLATE: &str = "Each Party shall adopt such legislative and other measures as may be necessary to \
         establish as criminal offences under its domestic law the conduct referred to in paragraph 1 of this article.";

    fn item<'a>(article: &'a str, paragraph: &'a str, title: Option<&'a str>, text: &'a str) -> AlignItem<'a> {
        AlignItem { article: Some(article), paragraph: Some(paragraph), title, text }
    }

    /// One single-paragraph article per text, numbered from `first`.
    fn articles<'a>(numbers: &'a [String], texts: &[&'a str]) -> Vec<AlignItem<'a>> {
        texts.iter().zip(numbers).map(|(text, number)| item(number, "1", None, text)).collect()
    }

    fn numbers(count: usize, first: usize) -> Vec<String> {
        (first..first + count).map(|n| n.to_string()).collect()
    }

    /// Every index appears exactly once; returns the matched pairs.
    fn check(old: usize, new: usize, pairs: &[Pair]) -> Vec<(usize, usize, f64, bool)> {
        let mut seen_old = vec![0; old];
        let mut seen_new = vec![0; new];
        let mut matched = Vec::new();
        for pair in pairs {
            match *pair {
                Pair::Matched { old, new, similarity, identical } => {
                    seen_old[old] += 1;
                    seen_new[new] += 1;
                    // Below the threshold only by step 5, which its own test checks.
                    assert!((0.0..=1.0).contains(&similarity), "{pair:?}");
                    matched.push((old, new, similarity, identical));
                }
                Pair::Removed { old } => seen_old[old] += 1,
                Pair::Added { new } => seen_new[new] += 1,
            }
        }
        assert!(seen_old.iter().all(|&n| n == 1), "old indices: {seen_old:?}");
        assert!(seen_new.iter().all(|&n| n == 1), "new indices: {seen_new:?}");
        matched
    }

    fn matched_pairs(old: usize, new: usize, pairs: &[Pair]) -> Vec<(usize, usize)> {
        check(old, new, pairs).into_iter().map(|(i, j, _, _)| (i, j)).collect()
    }

    #[test]
    fn identical_drafts_match_everything_identically() {
        let n = numbers(TEXTS.len(), 1);
        let draft = articles(&n, &TEXTS);
        let pairs = align(&draft, &draft);
        let expected: Vec<Pair> =
            (0..TEXTS.len()).map(|i| Pair::Matched { old: i, new: i, similarity: 1.0, identical: true }).collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn empty_inputs() {
        let n = numbers(3, 1);
        let draft = articles(&n, &TEXTS[..3]);
        assert_eq!(align(&[], &[]), []);
        assert_eq!(align(&draft, &[]), [0, 1, 2].map(|old| Pair::Removed { old }));
        assert_eq!(align(&[], &draft), [0, 1, 2].map(|new| Pair::Added { new }));
        let blank = [item("1", "1", None, ""), item("2", "1", None, "  ")];
        assert_eq!(check(2, 2, &align(&blank, &blank)).len(), 2);
    }

    #[test]
    fn article_inserted_at_start_renumbers_without_changes() {
        let old_numbers = numbers(TEXTS.len(), 1);
        let new_numbers = numbers(TEXTS.len() + 1, 1);
        let old = articles(&old_numbers, &TEXTS);
        let inserted = "Each Party shall take the necessary measures to protect personal data processed under \
                        this Convention.";
        let mut new_texts = vec![inserted];
        new_texts.extend(TEXTS);
        let new = articles(&new_numbers, &new_texts);
        let pairs = align(&old, &new);
        assert_eq!(pairs[0], Pair::Added { new: 0 });
        let matched = check(old.len(), new.len(), &pairs);
        assert_eq!(matched.len(), TEXTS.len());
        for (i, j, similarity, identical) in matched {
            assert_eq!((j, similarity, identical), (i + 1, 1.0, true));
        }
    }

    #[test]
    fn renumbered_cross_references_change_the_text_but_not_the_similarity() {
        let old = [item("5", "1", None, "The procedures referred to in Article 27 and Article 28 shall apply.")];
        let new = [item("6", "1", None, "The procedures referred to in Article 28 and Article 29 shall apply.")];
        assert_eq!(align(&old, &new), [Pair::Matched { old: 0, new: 0, similarity: 1.0, identical: false }]);
    }

    #[test]
    fn whitespace_differences_are_identical() {
        let old = [item("1", "1", None, "The Parties  shall\ncooperate.")];
        let new = [item("1", "1", None, " The Parties shall cooperate. ")];
        assert_eq!(align(&old, &new), [Pair::Matched { old: 0, new: 0, similarity: 1.0, identical: true }]);
    }

    #[test]
    fn removed_article_follows_its_predecessor() {
        let old_numbers = numbers(TEXTS.len(), 1);
        let old = articles(&old_numbers, &TEXTS);
        let mut new_texts = TEXTS.to_vec();
        new_texts.remove(4);
        let new = articles(&old_numbers, &new_texts);
        let pairs = align(&old, &new);
        assert_eq!(pairs[3], Pair::Matched { old: 3, new: 3, similarity: 1.0, identical: true });
        assert_eq!(pairs[4], Pair::Removed { old: 4 });
        assert_eq!(pairs[5], Pair::Matched { old: 5, new: 4, similarity: 1.0, identical: true });
        assert_eq!(check(old.len(), new.len(), &pairs).len(), TEXTS.len() - 1);

        // With no matched predecessor, removed provisions open the result.
        let pairs = align(&old[..3], &new[2..3]);
        assert_eq!(
            pairs,
            [
                Pair::Removed { old: 0 },
                Pair::Removed { old: 1 },
                Pair::Matched { old: 2, new: 0, similarity: 1.0, identical: true }
            ]
        );
    }

    #[test]
    fn reworded_paragraph_is_changed() {
        let old_numbers = numbers(TEXTS.len(), 1);
        let old = articles(&old_numbers, &TEXTS);
        let mut new_texts = TEXTS.to_vec();
        new_texts[3] = "A Party may ask another Party to order or otherwise obtain the prompt preservation of data \
                        stored by means of a computer system located within the territory of that other Party.";
        let new = articles(&old_numbers, &new_texts);
        let matched = check(old.len(), new.len(), &align(&old, &new));
        assert_eq!(matched.len(), TEXTS.len());
        let (i, j, similarity, identical) = matched[3];
        assert_eq!((i, j, identical), (3, 3, false));
        assert!(similarity > MIN_SIMILARITY && similarity < 1.0, "{similarity}");
    }

    #[test]
    fn new_paragraph_is_added() {
        let old_numbers = numbers(TEXTS.len(), 1);
        let old = articles(&old_numbers, &TEXTS[..9]);
        let mut new_texts = TEXTS[..9].to_vec();
        new_texts[5] = TEXTS[9];
        let new = articles(&old_numbers, &new_texts);
        let pairs = align(&old, &new);
        assert!(pairs.contains(&Pair::Added { new: 5 }));
        assert!(pairs.contains(&Pair::Removed { old: 5 }));
        assert_eq!(check(old.len(), new.len(), &pairs).len(), 8);
    }

    #[test]
    fn moved_paragraph_matches_identically() {
        let old = [
            item("1", "1", Some("Scope"), TEXTS[0]),
            item("1", "2", Some("Scope"), TEXTS[1]),
            item("2", "1", Some("Contact"), TEXTS[2]),
            item("3", "1", Some("Preservation"), TEXTS[3]),
        ];
        let new = [
            item("1", "1", Some("Scope"), TEXTS[0]),
            item("2", "1", Some("Contact"), TEXTS[2]),
            item("3", "1", Some("Preservation"), TEXTS[3]),
            item("3", "2", Some("Preservation"), TEXTS[1]),
        ];
        let matched = check(4, 4, &align(&old, &new));
        assert!(matched.contains(&(1, 3, 1.0, true)), "{matched:?}");
        assert_eq!(matched.len(), 4);
    }

    #[test]
    fn rewritten_paragraph_keeps_its_place_among_its_article() {
        let old = [
            item("25", "1", Some("Conditions"), TEXTS[0]),
            item("25", "2", Some("Conditions"), TEXTS[1]),
            item("25", "3", Some("Conditions"), TEXTS[2]),
        ];
        let new = [
            item("26", "1", Some("Conditions"), TEXTS[0]),
            item("26", "2", Some("Conditions"), TEXTS[7]),
            item("26", "3", Some("Conditions"), TEXTS[2]),
        ];
        let matched = check(3, 3, &align(&old, &new));
        assert_eq!(matched.len(), 3, "{matched:?}");
        let (_, _, similarity, identical) = matched.iter().find(|m| m.0 == 1).copied().expect("paragraph 2");
        assert!(!identical && similarity < MIN_SIMILARITY, "{similarity}");
    }

    #[test]
    fn similar_numbers_or_titles_do_not_force_a_match() {
        let old = [item("4", "1", Some("Mutual assistance"), TEXTS[1])];
        let new = [item("4", "1", Some("Mutual assistance"), TEXTS[7])];
        assert_eq!(align(&old, &new), [Pair::Removed { old: 0 }, Pair::Added { new: 0 }]);
    }

    #[test]
    fn threshold_separates_rewording_from_replacement() {
        let base = "Each Party shall designate a point of contact available at all times to ensure the provision of \
                    immediate assistance";
        // Each step replaces more of the words, lowering the similarity through the threshold.
        let replacements = [
            "Each Party shall designate a point of contact available at all times to ensure the provision of \
             immediate help",
            "Each Party shall name a point of contact available at all times to secure the provision of \
             immediate help",
            "Each Party shall name a single office reachable at all times to secure the provision of \
             immediate help",
            "Each Party shall name a single office reachable during working hours to secure the supply of \
             urgent help",
            "Every Party must name a single office reachable during working hours to secure the supply of \
             urgent help",
        ];
        let mut seen_below = false;
        let mut seen_above = false;
        for replacement in replacements {
            let vectors = vectorise(&[base], &[replacement]);
            let similarity = cosine(&vectors[0], &vectors[1]);
            let pairs = align(&[item("1", "1", None, base)], &[item("1", "1", None, replacement)]);
            let matched = check(1, 1, &pairs);
            assert_eq!(!matched.is_empty(), similarity >= MIN_SIMILARITY, "{similarity} {pairs:?}");
            seen_below |= similarity < MIN_SIMILARITY;
            seen_above |= similarity >= MIN_SIMILARITY;
            if let Some(&(_, _, reported, identical)) = matched.first() {
                assert!(!identical && (reported - similarity).abs() < 1e-12);
            }
        }
        assert!(seen_below && seen_above);
    }

    #[test]
    fn formula_shared_by_different_offences_is_not_rewording() {
        let formula = "Each Party shall adopt such legislative and other measures as may be necessary to establish \
                       as criminal offences under its domestic law, when committed intentionally,";
        // The offences of articles 2 to 8 of the Budapest Convention.
        let offences = [
            "the access to the whole or any part of a computer system without right.",
            "the interception without right, made by technical means, of non-public transmissions of computer data \
             to, from or within a computer system.",
            "the damaging, deletion, deterioration, alteration or suppression of computer data without right.",
            "the serious hindering without right of the functioning of a computer system by inputting, \
             transmitting, damaging, deleting, deteriorating, altering or suppressing computer data.",
            "the production, sale, procurement for use, import, distribution or otherwise making available of a \
             device designed primarily for the purpose of committing any of the offences.",
            "the input, alteration, deletion, or suppression of computer data, resulting in inauthentic data with \
             the intent that it be considered or acted upon for legal purposes as if it were authentic.",
            "the causing of a loss of property to another person by any input, alteration, deletion or \
             suppression of computer data.",
        ]
        .map(|offence| format!("{formula} {offence}"));
        // Each offence replaced in turn by the one after it, among the other
        // provisions of a convention.
        for replaced in 0..offences.len() - 1 {
            let mut old: Vec<AlignItem<'_>> = TEXTS.iter().map(|text| item("1", "1", None, text)).collect();
            let mut new = old.clone();
            for (k, offence) in offences.iter().enumerate() {
                if k != replaced + 1 {
                    old.push(item("2", "1", None, offence));
                }
                if k != replaced {
                    new.push(item("2", "1", None, offence));
                }
            }
            let pairs = align(&old, &new);
            let matched = check(old.len(), new.len(), &pairs);
            assert_eq!(matched.len(), old.len() - 1, "{replaced}: {pairs:?}");
            assert!(matched.iter().all(|&(_, _, _, identical)| identical), "{replaced}: {pairs:?}");
        }
    }

    #[test]
    fn boilerplate_follows_its_titled_article_when_renumbered() {
        // Articles whose only distinct text is reworded, so the titles and the
        // reworded paragraphs have to place the identical second paragraphs.
        let old = [
            item("2", "1", Some("Illegal access"), TEXTS[0]),
            item("2", "2", Some("Illegal access"), BOILERPLATE),
            item("3", "1", Some("Illegal interception"), TEXTS[1]),
            item("3", "2", Some("Illegal interception"), BOILERPLATE),
            item("4", "1", Some("Data interference"), TEXTS[2]),
            item("4", "2", Some("Data interference"), BOILERPLATE),
        ];
        let data = TEXTS[2].replace("immediate", "prompt");
        let interception = TEXTS[1].replace("collection", "gathering");
        let new = [
            item("2", "1", Some("System interference"), TEXTS[5]),
            item("2", "2", Some("System interference"), BOILERPLATE),
            item("3", "1", Some("Illegal access"), TEXTS[0]),
            item("3", "2", Some("Illegal access"), BOILERPLATE),
            // Interception moved after data interference.
            item("4", "1", Some("Data interference"), &data),
            item("4", "2", Some("Data interference"), BOILERPLATE),
            item("5", "1", Some("Illegal interception"), &interception),
            item("5", "2", Some("Illegal interception"), BOILERPLATE),
        ];
        let matched = matched_pairs(old.len(), new.len(), &align(&old, &new));
        assert_eq!(matched, [(0, 2), (1, 3), (4, 4), (5, 5), (2, 6), (3, 7)]);
    }

    #[test]
    fn untitled_boilerplate_keeps_its_relative_order() {
        let reworded: Vec<String> = TEXTS.iter().map(|text| text.replacen("shall", "must", 1)).collect();
        let mut old = Vec::new();
        let mut new = vec![item("1", "1", None, TEXTS[9]), item("1", "2", None, BOILERPLATE)];
        let old_numbers = numbers(4, 1);
        let new_numbers = numbers(4, 2);
        for k in 0..4 {
            old.push(item(&old_numbers[k], "1", None, TEXTS[k]));
            old.push(item(&old_numbers[k], "2", None, BOILERPLATE));
            new.push(item(&new_numbers[k], "1", None, &reworded[k]));
            new.push(item(&new_numbers[k], "2", None, BOILERPLATE));
        }
        let pairs = align(&old, &new);
        let matched = matched_pairs(old.len(), new.len(), &pairs);
        assert_eq!(matched, (0..8).map(|i| (i, i + 2)).collect::<Vec<_>>());
        assert_eq!(pairs[1], Pair::Added { new: 1 });

        // Without article numbers, only the order can tell the copies apart.
        let strip = |items: &[AlignItem<'static>]| -> Vec<AlignItem<'static>> {
            items.iter().map(|item| AlignItem { article: None, paragraph: None, ..*item }).collect()
        };
        let old: Vec<AlignItem<'static>> =
            [TEXTS[0], BOILERPLATE, TEXTS[1], BOILERPLATE, TEXTS[2], BOILERPLATE].map(|t| item("", "", None, t)).into();
        let new: Vec<AlignItem<'static>> =
            [TEXTS[9], BOILERPLATE, TEXTS[0], BOILERPLATE, TEXTS[1], BOILERPLATE, TEXTS[2], BOILERPLATE]
                .map(|t| item("", "", None, t))
                .into();
        let matched = matched_pairs(6, 8, &align(&strip(&old), &strip(&new)));
        assert_eq!(matched, (0..6).map(|i| (i, i + 2)).collect::<Vec<_>>());
    }

    #[test]
    fn large_random_drafts_do_not_panic() {
        let vocabulary: Vec<&str> = TEXTS.iter().flat_map(|text| text.split_whitespace()).collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |bound: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % bound
        };
        let old_texts: Vec<String> = (0..500)
            .map(|_| (0..5 + next(40)).map(|_| vocabulary[next(vocabulary.len())]).collect::<Vec<_>>().join(" "))
            .collect();
        let new_texts: Vec<String> = old_texts
            .iter()
            .map(|text| match next(4) {
                0 => text.clone(),
                1 => format!("{text} and Article {}", next(100)),
                2 => old_texts[next(old_texts.len())].clone(),
                _ => (0..5 + next(40)).map(|_| vocabulary[next(vocabulary.len())]).collect::<Vec<_>>().join(" "),
            })
            .collect();
        let old_numbers = numbers(500, 1);
        let titles = ["Scope", "Definitions", "Jurisdiction", "Final clauses"];
        let old: Vec<AlignItem<'_>> = old_texts
            .iter()
            .enumerate()
            .map(|(k, text)| item(&old_numbers[k / 3], "1", Some(titles[k % 4]), text))
            .collect();
        let new: Vec<AlignItem<'_>> = new_texts
            .iter()
            .enumerate()
            .map(|(k, text)| item(&old_numbers[k / 2], "1", Some(titles[k % 3]), text))
            .collect();
        check(old.len(), new.len(), &align(&old, &new));
        check(old.len(), old.len(), &align(&old, &old));
    }

    #[test]
    fn posting_index_agrees_with_merged_cosine() {
        let old: Vec<&str> = TEXTS[..6].to_vec();
        let new: Vec<&str> = TEXTS[3..].iter().chain([&BOILERPLATE, &""]).copied().collect();
        let vectors = vectorise(&old, &new);
        let (old_vectors, new_vectors) = vectors.split_at(old.len());
        let index = PostingIndex::new(old_vectors.iter());
        let mut dots = vec![0.0; old.len()];
        for new_vector in new_vectors {
            index.dot_products(new_vector, &mut dots);
            for (old_vector, &dot) in old_vectors.iter().zip(&dots) {
                assert_eq!(round_similarity(dot), cosine(old_vector, new_vector));
            }
        }
        assert_eq!(cosine(&old_vectors[3], &new_vectors[0]), 1.0);
    }

    #[test]
    fn longest_chain_keeps_order() {
        assert_eq!(longest_increasing_chain(&[(0, 3), (1, 0), (2, 1), (3, 4), (4, 2)]), [(1, 0), (2, 1), (4, 2)]);
        assert_eq!(longest_increasing_chain(&[]), []);
    }
}
