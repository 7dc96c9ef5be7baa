//! Training examples that teach a model which sentence carries a label.
//!
//! A provision's labels say that some sentence of it is risky, not which;
//! a model trained on provisions alone learns what risky provisions look
//! like as a whole (their titles included) and misses one risky sentence
//! set among benign ones. The annotators marked, for every label, the words
//! that carry it (rationales). From them this module builds two kinds of
//! example:
//!
//! - **sentences**: each sentence of a training provision that holds a
//!   rationale span, on its own under the headings of a label-less
//!   provision, labelled with the labels of the spans it holds — what
//!   [`Reading::Sentences`](clause_infer::reading::Reading) scores at
//!   inference when the sentence sits in an article about something else;
//! - **buried sentences**: the same sentence inserted at a sentence
//!   boundary of a label-less training provision (under that provision's
//!   headings), labelled with the sentence's labels — the case a reviewer
//!   most needs found;
//! - **label-less sentences**: each sentence of a label-less provision on
//!   its own, with no label, so that a model that scores sentences one by
//!   one has seen benign ones alone too (a sentence of a labelled
//!   provision without a span is not used: its label may come from a
//!   sentence beside it).
//!
//! Both come only from the training split, so validation and test stay
//! what they were.

use std::collections::HashMap;

use clause_data::example::Example;
use clause_data::rationales::Located;
use clause_infer::rng::SplitMix64;
use clause_segment::spans::{Granularity, insert_at, sentence_boundaries, spans};

/// Sentences longer than this are not buried in other provisions: a
/// sentence of a hundred words is a provision of its own.
const MAX_BURIED_WORDS: usize = 80;

/// The sentence, buried-sentence and label-less sentence examples of
/// `train` (see the module documentation), in a fixed order that depends only on the inputs and
/// `seed`. `label_order` orders each example's labels as the recipe does.
pub fn rationale_examples(
    train: &[Example],
    rationales: &[Located],
    label_order: &[String],
    seed: u64,
) -> Vec<Example> {
    let mut by_id: HashMap<&str, Vec<&Located>> = HashMap::new();
    for located in rationales {
        by_id.entry(located.id.as_str()).or_default().push(located);
    }
    let hosts: Vec<&Example> = train.iter().filter(|e| e.labels.is_empty()).collect();
    let mut rng = SplitMix64::new(seed ^ 0x6275_7269_6564_0001);
    let mut out = Vec::new();
    for host in &hosts {
        let pieces = spans(&host.text, Granularity::Sentences);
        if pieces.len() < 2 {
            continue;
        }
        for (k, piece) in pieces.into_iter().enumerate() {
            out.push(Example {
                id: format!("{}#sentence{}", host.id, k + 1),
                text: host.text[piece].to_string(),
                origin: format!("{} (sentence {})", host.origin, k + 1),
                ..(*host).clone()
            });
        }
    }
    for example in train {
        let Some(located) = by_id.get(example.id.as_str()) else {
            continue;
        };
        let pieces = spans(&example.text, Granularity::Sentences);
        for (k, piece) in pieces.iter().enumerate() {
            let labels: Vec<String> = label_order
                .iter()
                .filter(|label| {
                    located.iter().any(|l| &l.label == *label && l.start < piece.end && l.end > piece.start)
                })
                .cloned()
                .collect();
            if labels.is_empty() {
                continue;
            }
            let sentence = &example.text[piece.clone()];
            if pieces.len() > 1 {
                // Under another provision's headings: read alone, the
                // sentence must carry its label without its own title, as
                // it must when buried in an article about something else.
                let (title, chapter) = if hosts.is_empty() {
                    (example.title.clone(), example.chapter.clone())
                } else {
                    let host = hosts[rng.below(hosts.len())];
                    (host.title.clone(), host.chapter.clone())
                };
                out.push(Example {
                    id: format!("{}#sentence{}", example.id, k + 1),
                    text: sentence.to_string(),
                    labels: labels.clone(),
                    origin: format!("{} (sentence {})", example.origin, k + 1),
                    title,
                    chapter,
                    ..example.clone()
                });
            }
            if hosts.is_empty() || sentence.split_whitespace().count() > MAX_BURIED_WORDS {
                continue;
            }
            let host = hosts[rng.below(hosts.len())];
            out.push(Example {
                id: format!("{}#buried-in:{}", example.id, host.id),
                text: bury(&host.text, sentence, &mut rng),
                labels,
                origin: format!("{} (sentence {} buried in {})", example.origin, k + 1, host.id),
                ..host.clone()
            });
        }
    }
    out
}

/// `host` with `sentence` inserted at one of its sentence boundaries (its
/// start, between two sentences, or its end), chosen by `rng`.
pub fn bury(host: &str, sentence: &str, rng: &mut SplitMix64) -> String {
    let boundaries = sentence_boundaries(host);
    insert_at(host, boundaries[rng.below(boundaries.len())], sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(id: &str, text: &str, labels: &[&str]) -> Example {
        Example {
            id: id.into(),
            document: "d".into(),
            text: text.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            article: None,
            paragraph: None,
            title: Some(format!("title of {id}")),
            chapter: None,
            origin: id.into(),
        }
    }

    #[test]
    fn sentences_with_spans_become_examples_and_are_buried_in_label_less_hosts() {
        let risky = "The parties shall cooperate on all matters here. Each Party shall empower its \
                     authorities to intercept content data in real time.";
        let train = vec![
            example("a", risky, &["surveillance", "cross_border"]),
            example(
                "host",
                "This Convention enters into force on signature by both sides. It may be amended by the parties.",
                &[],
            ),
        ];
        let at = risky.find("Each Party").expect("span");
        let rationales = vec![
            Located { id: "a".into(), label: "surveillance".into(), start: at, end: risky.len() - 1 },
            Located { id: "a".into(), label: "cross_border".into(), start: 4, end: 20 },
        ];
        let order = ["surveillance".to_string(), "cross_border".to_string()];
        let extra = rationale_examples(&train, &rationales, &order, 7);
        let ids: Vec<&str> = extra.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            ["host#sentence1", "host#sentence2", "a#sentence1", "a#buried-in:host", "a#sentence2", "a#buried-in:host"]
        );
        assert_eq!(extra[1].text, "It may be amended by the parties.");
        assert!(extra[1].labels.is_empty());
        assert_eq!(extra[2].text, "The parties shall cooperate on all matters here.");
        assert_eq!(extra[2].labels, ["cross_border"]);
        assert_eq!(extra[4].labels, ["surveillance"]);
        // Alone, under another provision's headings.
        assert_eq!(extra[4].title.as_deref(), Some("title of host"));
        assert_eq!(extra[4].document, "d");
        // Buried: the host's headings, the sentence's labels, all words kept.
        let buried = &extra[5];
        assert_eq!(buried.title.as_deref(), Some("title of host"));
        assert_eq!(buried.labels, ["surveillance"]);
        assert!(buried.text.contains(&risky[at..]) && buried.text.contains("enters into force"));
        assert_eq!(
            buried.text.split_whitespace().count(),
            train[1].text.split_whitespace().count() + risky[at..].split_whitespace().count()
        );
        assert_eq!(extra, rationale_examples(&train, &rationales, &order, 7));
    }

    #[test]
    fn burying_puts_the_sentence_at_a_boundary() {
        let host = "One two three four five six. Seven eight nine ten eleven twelve.";
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = SplitMix64::new(1);
        for _ in 0..50 {
            seen.insert(bury(host, "NEW SENTENCE HERE.", &mut rng));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [
                "NEW SENTENCE HERE. One two three four five six. Seven eight nine ten eleven twelve.",
                "One two three four five six. NEW SENTENCE HERE. Seven eight nine ten eleven twelve.",
                "One two three four five six. Seven eight nine ten eleven twelve. NEW SENTENCE HERE.",
            ]
        );
        assert_eq!(bury("", "Alone.", &mut rng), "Alone.");
    }
}
