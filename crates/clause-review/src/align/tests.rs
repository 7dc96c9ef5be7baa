//! Tests of the alignment.

use super::similarity::cosine;
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
