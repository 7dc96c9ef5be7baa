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

use clause_segment::Provision;

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

mod similarity;
#[cfg(test)]
mod tests;

use similarity::{PostingIndex, round_similarity, vectorise};
