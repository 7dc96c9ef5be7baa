//! Clause- and sentence-sized spans of a provision's text.
//!
//! Two readers cut a provision into pieces. Explanations remove one clause
//! at a time (at commas too) to see which words drive a label; clause-level
//! classification scores each sentence or sub-paragraph on its own, so that
//! one risky sentence in a long paragraph of boilerplate is read by itself
//! rather than averaged away. Both cut with [`spans`], at different
//! granularity ([`Granularity`]), so that what counts as a boundary is
//! decided in one place. A third, [`sentences`], cuts a page of text into
//! all its sentences for a model trained on sentences (Terms of Service).

use std::ops::Range;

/// How finely [`spans`] cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// At sentence ends, semicolons, colons, commas and sub-paragraph
    /// markers; pieces of at least 3 words; at most 16 pieces. What
    /// explanations remove one at a time.
    Clauses,
    /// At sentence ends, semicolons, colons and sub-paragraph markers;
    /// pieces of at least 6 words; at most 12 pieces. What clause-level
    /// classification scores one at a time.
    Sentences,
    /// At sentence ends only (a full stop that does not follow an
    /// abbreviation, a question or exclamation mark); pieces of at least 6
    /// words; uncapped. What a model trained on whole sentences reads: the
    /// CLAUDETTE corpus keeps a sentence's semicolons and its enumerated
    /// list ("You may not: (i) ...; (ii) ...") in one sentence, and
    /// tos-unfair learnt its labels on such sentences.
    WholeSentences,
}

impl Granularity {
    fn ends_piece(self, word: &str) -> bool {
        match self {
            Self::Clauses => word.ends_with([',', ';', ':', '.', '!', '?']),
            Self::Sentences => word.ends_with([';', ':', '.', '!', '?']) && !is_abbreviation(word),
            Self::WholeSentences => ends_sentence(word) && !is_abbreviation(word),
        }
    }

    /// Whether a sub-paragraph marker ("(a)", "(iv)") begins a new piece.
    fn cuts_at_markers(self) -> bool {
        self != Self::WholeSentences
    }

    /// Words a piece has at least, so that it means something on its own.
    fn min_words(self) -> usize {
        match self {
            Self::Clauses => 3,
            Self::Sentences | Self::WholeSentences => 6,
        }
    }

    /// Pieces at most: each costs a forward pass.
    pub fn max_pieces(self) -> usize {
        match self {
            Self::Clauses => 16,
            Self::Sentences => 12,
            Self::WholeSentences => usize::MAX,
        }
    }
}

/// Words per window when a text has no boundaries to cut at (clauses only).
const WINDOW_WORDS: usize = 8;

/// Byte ranges of the pieces of `text`, covering every word once, in order,
/// and at most [`Granularity::max_pieces`] of them.
pub fn spans(text: &str, granularity: Granularity) -> Vec<Range<usize>> {
    let words = word_ranges(text);
    let mut merged = uncapped(text, &words, granularity);
    if granularity == Granularity::Clauses && merged.len() == 1 && words.len() > WINDOW_WORDS * 3 / 2 {
        merged = words.chunks(WINDOW_WORDS).map(|chunk| chunk[0].start..chunk[chunk.len() - 1].end).collect();
    }
    while merged.len() > granularity.max_pieces() {
        merged = merged
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => a.start..b.end,
                [a] => a.clone(),
                _ => 0..0,
            })
            .collect();
    }
    merged
}

/// Byte ranges of every sentence of `text` ([`Granularity::WholeSentences`]),
/// covering every word once, in order: how a text longer than a sentence
/// is cut for a model trained on sentences. `text` may hold line breaks;
/// ranges index it as given.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    uncapped(text, &word_ranges(text), Granularity::WholeSentences)
}

/// Byte ranges, in `source`, of the sentences of its part `within` (a
/// provision's range): each block of it (lines between blank lines, a
/// paragraph of a page) is cut into its [`sentences`], so that no sentence
/// runs across two paragraphs; Markdown heading lines (`#`) are titles,
/// not sentences, and are left out. A range that is not within `source`
/// has none.
pub fn sentences_within(source: &str, within: Range<usize>) -> Vec<Range<usize>> {
    let Some(part) = source.get(within.clone()) else {
        return Vec::new();
    };
    blocks(part)
        .into_iter()
        .flat_map(|block| {
            let start = within.start + block.start;
            sentences(&part[block]).into_iter().map(move |s| start + s.start..start + s.end)
        })
        .collect()
}

/// Byte ranges of the blocks of `text`: runs of non-blank lines, a
/// Markdown heading line ending a block and belonging to none.
fn blocks(text: &str) -> Vec<Range<usize>> {
    let mut blocks = Vec::new();
    let mut current: Option<Range<usize>> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let end = offset + line.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            blocks.extend(current.take());
        } else {
            current = Some(current.map_or(offset..end, |c| c.start..end));
        }
        offset = end;
    }
    blocks.extend(current);
    blocks
}

/// The pieces of `text` (whose words are `words`) at `granularity`'s
/// boundaries, each of at least its minimum length, however many.
fn uncapped(text: &str, words: &[Range<usize>], granularity: Granularity) -> Vec<Range<usize>> {
    if words.is_empty() {
        return Vec::new();
    }
    // A piece ends after a word that ends with the granularity's
    // punctuation, or before a sub-paragraph marker such as "(a)" or "(iv)".
    let mut pieces: Vec<Range<usize>> = Vec::new();
    let mut first = 0;
    for (i, word) in words.iter().enumerate() {
        let next_is_marker =
            granularity.cuts_at_markers() && words.get(i + 1).is_some_and(|next| is_marker(&text[next.clone()]));
        if granularity.ends_piece(&text[word.clone()]) || next_is_marker || i + 1 == words.len() {
            pieces.push(words[first].start..word.end);
            first = i + 1;
        }
    }
    let word_count = |span: &Range<usize>| words.iter().filter(|w| w.start >= span.start && w.end <= span.end).count();
    // Merge pieces too short to mean anything into their successor (the
    // last into its predecessor).
    let mut merged: Vec<Range<usize>> = Vec::new();
    let mut pending: Option<Range<usize>> = None;
    for span in pieces {
        let span = match pending.take() {
            Some(p) => p.start..span.end,
            None => span,
        };
        if word_count(&span) < granularity.min_words() {
            pending = Some(span);
        } else {
            merged.push(span);
        }
    }
    if let Some(rest) = pending {
        match merged.last_mut() {
            Some(last) => last.end = rest.end,
            None => merged.push(rest),
        }
    }
    merged
}

/// `text` without the bytes of `span`, joined with one space.
pub fn without(text: &str, span: &Range<usize>) -> String {
    let before = text[..span.start].trim_end();
    let after = text[span.end..].trim_start();
    match (before.is_empty(), after.is_empty()) {
        (true, _) => after.to_string(),
        (_, true) => before.to_string(),
        _ => format!("{before} {after}"),
    }
}

/// Byte offsets at which a sentence can be inserted into `text`: its start
/// and the end of each of its sentences ([`Granularity::Sentences`]).
pub fn sentence_boundaries(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(spans(text, Granularity::Sentences).into_iter().map(|p| p.end)).collect()
}

/// `text` with `sentence` inserted at byte offset `at` (one of
/// [`sentence_boundaries`]), joined with single spaces.
pub fn insert_at(text: &str, at: usize, sentence: &str) -> String {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (before, after) = (text[..at].trim_end(), text[at..].trim_start());
    [before, sentence, after].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
}

fn word_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                ranges.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        ranges.push(s..text.len());
    }
    ranges
}

/// `(a)`, `(iv)`, `a)`, `(1)`, `(aa)`: a sub-paragraph marker begins a new
/// piece. An abbreviation in brackets, "text (SMS) messages", "(CISG)", is
/// not one: a marker is a number, a letter (once or doubled), or a roman
/// numeral.
fn is_marker(token: &str) -> bool {
    let inner = token.strip_prefix('(').unwrap_or(token);
    let Some(inner) = inner.strip_suffix(')') else {
        return false;
    };
    let letters: Vec<char> = inner.chars().collect();
    let number = !letters.is_empty() && letters.len() <= 3 && letters.iter().all(char::is_ascii_digit);
    let letter =
        matches!(letters.as_slice(), [a] | [a, _] if a.is_ascii_alphabetic() && letters.iter().all(|c| c == a));
    let roman = (1..=6).contains(&letters.len())
        && (letters.iter().all(|c| "ivxl".contains(*c)) || letters.iter().all(|c| "IVXL".contains(*c)));
    number || letter || roman
}

/// A word that ends a sentence: a full stop, question or exclamation mark,
/// before any closing quotes or brackets.
fn ends_sentence(word: &str) -> bool {
    word.trim_end_matches(['"', '\'', '’', '”', ')']).ends_with(['.', '!', '?'])
}

/// "Art.", "No.", "para.", "e.g.": a full stop that does not end a sentence.
fn is_abbreviation(word: &str) -> bool {
    const ABBREVIATIONS: [&str; 9] = ["art.", "arts.", "no.", "nos.", "para.", "paras.", "e.g.", "i.e.", "etc."];
    let lower = word.trim_start_matches(['(', '"', '\'']).to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_all_kept_and_index_text_with_line_breaks() {
        let sentence = "We may change these terms at any time without notice.";
        let text = format!("{sentence}\n{}", [sentence; 20].join(" "));
        let ranges = sentences(&text);
        assert_eq!(ranges.len(), 21, "not capped at {}", Granularity::Sentences.max_pieces());
        assert!(ranges.iter().all(|r| &text[r.clone()] == sentence), "{ranges:?}");
        // Too short to stand alone: joined to the next.
        assert_eq!(sentences("Last updated. We may change these terms at any time.").len(), 1);
        assert!(sentences(" \n ").is_empty());
    }

    #[test]
    fn blocks_are_paragraphs_without_their_headings() {
        let text = "a\nb\n\n# h\nc\n  \nd";
        let found: Vec<&str> = blocks(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, ["a\nb\n", "c\n", "d"]);
        assert!(blocks("").is_empty() && blocks("\n\n# only\n").is_empty());
    }

    #[test]
    fn sentences_within_a_range_index_the_source() {
        let source = "Intro.\n# Terms\nWe may change these terms at any time, without\nnotice. You accept the \
                      new terms if you keep using it.\n\n## 2\n\nWe may remove any content that we dislike.\n";
        let within = source.find("# Terms").expect("start")..source.len();
        let found: Vec<&str> = sentences_within(source, within).into_iter().map(|r| &source[r]).collect();
        assert_eq!(
            found,
            [
                "We may change these terms at any time, without\nnotice.",
                "You accept the new terms if you keep using it.",
                "We may remove any content that we dislike.",
            ]
        );
        assert!(sentences_within(source, 5..500).is_empty());
    }

    fn pieces(text: &str, granularity: Granularity) -> Vec<&str> {
        spans(text, granularity).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn clauses_cut_at_clause_punctuation_and_markers() {
        let text = "Each Party shall adopt measures to empower its authorities to order a service provider \
                    to preserve data; such orders shall be kept confidential: (a) for ninety days, \
                    (b) subject to judicial review.";
        assert_eq!(
            pieces(text, Granularity::Clauses),
            [
                "Each Party shall adopt measures to empower its authorities to order a service provider to preserve data;",
                "such orders shall be kept confidential:",
                "(a) for ninety days,",
                "(b) subject to judicial review."
            ]
        );
    }

    #[test]
    fn sentences_keep_commas_and_abbreviations_inside() {
        let text = "Each Party shall, under Art. 5, adopt measures to order a service provider to preserve \
                    data. The provider shall keep the order confidential, and shall not tell the user: \
                    (a) for ninety days, or (b) until a court decides otherwise.";
        assert_eq!(
            pieces(text, Granularity::Sentences),
            [
                "Each Party shall, under Art. 5, adopt measures to order a service provider to preserve data.",
                "The provider shall keep the order confidential, and shall not tell the user:",
                "(a) for ninety days, or (b) until a court decides otherwise."
            ]
        );
    }

    #[test]
    fn markers_are_numbers_letters_and_roman_numerals_not_bracketed_words() {
        for marker in ["(a)", "(iv)", "(aa)", "(12)", "(IV)", "b)", "(xii)"] {
            assert!(is_marker(marker), "{marker}");
        }
        for word in ["(SMS)", "(CISG)", "(ab)", "(EU)", "(1234)", "()", "(a", "data"] {
            assert!(!is_marker(word), "{word}");
        }
        let text = "We may send you informational text (SMS) messages as part of our services (the Services).";
        assert_eq!(pieces(text, Granularity::Sentences), [text]);
    }

    #[test]
    fn whole_sentences_keep_their_lists_together() {
        let text = "You may not: (i) remove any notices from the Services; (ii) reverse engineer the \
                    Services. We may end your account at any time, for any reason! Agree (as you must)?";
        let found: Vec<&str> = sentences(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(
            found,
            [
                "You may not: (i) remove any notices from the Services; (ii) reverse engineer the Services.",
                "We may end your account at any time, for any reason! Agree (as you must)?",
            ]
        );
        assert!(ends_sentence("(as you must)?") && ends_sentence("“Services.”") && !ends_sentence("Services;"));
    }

    #[test]
    fn short_pieces_merge_and_every_word_is_covered_once() {
        let text = "Yes, indeed, the Party shall, in all cases, extradite the person sought.";
        let spans = spans(text, Granularity::Clauses);
        assert_eq!(
            pieces(text, Granularity::Clauses),
            ["Yes, indeed, the Party shall,", "in all cases,", "extradite the person sought."]
        );
        let covered: usize = spans.iter().map(|r| text[r.clone()].split_whitespace().count()).sum();
        assert_eq!(covered, text.split_whitespace().count());
        assert!(spans.windows(2).all(|w| w[0].end <= w[1].start));
        assert_eq!(pieces(text, Granularity::Sentences), [text]);
    }

    #[test]
    fn long_unpunctuated_text_falls_back_to_windows_and_many_spans_are_capped() {
        let long: Vec<String> = (0..30).map(|i| format!("w{i}")).collect();
        let text = long.join(" ");
        assert_eq!(spans(&text, Granularity::Clauses).len(), 4);
        assert_eq!(spans(&text, Granularity::Sentences).len(), 1);
        for granularity in [Granularity::Clauses, Granularity::Sentences] {
            let many: Vec<String> = (0..100).map(|i| format!("one two three four five six{i};")).collect();
            let text = many.join(" ");
            let spans = spans(&text, granularity);
            let cap = granularity.max_pieces();
            assert!(spans.len() <= cap && spans.len() > cap / 2, "{}", spans.len());
            assert_eq!(spans.first().map(|r| r.start), Some(0));
            assert_eq!(spans.last().map(|r| r.end), Some(text.len()));
        }
    }

    #[test]
    fn degenerate_texts() {
        for granularity in [Granularity::Clauses, Granularity::Sentences] {
            assert!(spans("", granularity).is_empty());
            assert!(spans("   \n ", granularity).is_empty());
            assert_eq!(pieces("Hi.", granularity), ["Hi."]);
            assert_eq!(pieces("é, ü; ß", granularity), ["é, ü; ß"]);
        }
    }

    #[test]
    fn sentences_go_in_at_boundaries() {
        let host = "One two three four five six. Seven eight nine ten eleven twelve.";
        let inserted: Vec<String> =
            sentence_boundaries(host).into_iter().map(|at| insert_at(host, at, "NEW.")).collect();
        assert_eq!(
            inserted,
            [
                "NEW. One two three four five six. Seven eight nine ten eleven twelve.",
                "One two three four five six. NEW. Seven eight nine ten eleven twelve.",
                "One two three four five six. Seven eight nine ten eleven twelve. NEW.",
            ]
        );
        assert_eq!(sentence_boundaries(""), [0]);
        assert_eq!(insert_at("", 0, "Alone."), "Alone.");
        assert_eq!(insert_at("é", 1, "x"), "x é");
    }

    #[test]
    fn removing_a_span_joins_the_rest() {
        let text = "one two, three four, five";
        assert_eq!(without(text, &(9..20)), "one two, five");
        assert_eq!(without(text, &(0..8)), "three four, five");
        assert_eq!(without(text, &(21..25)), "one two, three four,");
    }
}
