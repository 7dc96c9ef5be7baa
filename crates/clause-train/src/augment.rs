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

use std::borrow::Cow;
use std::collections::HashMap;

use clause_data::example::Example;
use clause_data::rationales::Located;
use clause_data::written::WrittenSentence;
use clause_infer::rng::SplitMix64;
use clause_segment::spans::{Granularity, insert_at, sentence_boundaries, spans};

use crate::config::TrainConfig;
use crate::trainer::TrainData;

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

/// Examples from sentences written for training from the guidelines
/// ([`clause_data::written`]): each alone under the headings of a random
/// label-less training provision, and (when at most [`MAX_BURIED_WORDS`]
/// long) buried at a sentence boundary of another, both with the sentence's
/// labels; a `none` sentence makes label-less examples alike. As with
/// rationale sentences, the headings are a host's, not the sentence's own,
/// so that the words carry the label. A split without label-less
/// provisions adds the sentences alone, without headings.
pub fn written_examples(train: &[Example], written: &[WrittenSentence], seed: u64) -> Vec<Example> {
    let hosts: Vec<&Example> = train.iter().filter(|e| e.labels.is_empty()).collect();
    let mut rng = SplitMix64::new(seed ^ 0x7772_6974_7465_6e01);
    let mut out = Vec::with_capacity(written.len() * 2);
    for (k, sentence) in written.iter().enumerate() {
        let alone = Example {
            id: format!("written{}", k + 1),
            document: "written".to_string(),
            text: sentence.sentence.clone(),
            labels: sentence.labels.clone(),
            article: None,
            paragraph: None,
            title: None,
            chapter: None,
            origin: sentence.origin.clone(),
        };
        if hosts.is_empty() {
            out.push(alone);
            continue;
        }
        let host = hosts[rng.below(hosts.len())];
        out.push(Example { title: host.title.clone(), chapter: host.chapter.clone(), ..alone });
        if sentence.sentence.split_whitespace().count() > MAX_BURIED_WORDS {
            continue;
        }
        let host = hosts[rng.below(hosts.len())];
        out.push(Example {
            id: format!("written{}#buried-in:{}", k + 1, host.id),
            text: bury(&host.text, &sentence.sentence, &mut rng),
            labels: sentence.labels.clone(),
            origin: format!("{} (buried in {})", sentence.origin, host.id),
            ..host.clone()
        });
    }
    out
}

/// The examples a run learns from: the training split, with the rationale
/// and written-sentence examples above where `config` asks for them. The
/// encoder and the lexical stage both learn from these.
pub fn training_examples<'a>(data: &'a TrainData, label_order: &[String], config: &TrainConfig) -> Cow<'a, [Example]> {
    let mut train = Cow::Borrowed(data.train.as_slice());
    if config.rationale_examples {
        let extra = rationale_examples(&data.train, &data.rationales, label_order, config.seed);
        tracing::info!(examples = extra.len(), "sentence and buried-sentence examples from rationales");
        train.to_mut().extend(extra);
    }
    if config.written_sentences {
        let mut extra = written_examples(&data.train, &data.written, config.seed);
        // In the recipe's label order, as every other example's labels are.
        for example in &mut extra {
            example.labels = label_order.iter().filter(|l| example.labels.contains(l)).cloned().collect();
        }
        tracing::info!(examples = extra.len(), "examples from written sentences");
        train.to_mut().extend(extra);
    }
    train
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

    #[test]
    fn written_sentences_stand_alone_and_buried_under_a_label_less_hosts_headings() {
        let host_text =
            "This Convention enters into force on signature by both sides. It may be amended by the parties.";
        let train =
            vec![example("risky", "Each Party shall intercept.", &["surveillance"]), example("host", host_text, &[])];
        let written = |labels: &[&str], sentence: &str| WrittenSentence {
            labels: labels.iter().map(|l| l.to_string()).collect(),
            rule: "1".into(),
            sentence: sentence.into(),
            origin: "w.tsv:2".into(),
        };
        let gag = "The provider shall not disclose to anyone that the order was made.";
        let long = vec!["word"; MAX_BURIED_WORDS + 1].join(" ");
        let sentences =
            [written(&["secrecy", "surveillance"], gag), written(&[], "The Parties meet yearly."), written(&[], &long)];
        let extra = written_examples(&train, &sentences, 3);
        let ids: Vec<&str> = extra.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["written1", "written1#buried-in:host", "written2", "written2#buried-in:host", "written3"]);
        assert_eq!(extra[0].text, gag);
        assert_eq!(extra[0].title.as_deref(), Some("title of host"), "the host's headings, not its own");
        assert_eq!(extra[0].labels, ["secrecy", "surveillance"]);
        assert!(extra[1].text.contains(gag) && extra[1].text.contains("enters into force"));
        assert_eq!(extra[1].labels, extra[0].labels);
        assert!(extra[2].labels.is_empty() && extra[3].labels.is_empty());
        assert_eq!(extra, written_examples(&train, &sentences, 3));
        // Without a label-less provision to stand under, alone and bare.
        let alone = written_examples(&train[..1], &sentences[..1], 3);
        assert_eq!(alone.len(), 1);
        assert_eq!((alone[0].title.as_deref(), alone[0].text.as_str()), (None, gag));
    }

    #[test]
    fn training_examples_add_written_sentences_only_when_asked() {
        let data = TrainData {
            dataset: "d".into(),
            manifest_sha256: String::new(),
            labels: Vec::new(),
            train: vec![example("host", "The Parties shall meet. They shall report yearly.", &[])],
            validation: Vec::new(),
            test: Vec::new(),
            rationales: Vec::new(),
            written: vec![WrittenSentence {
                labels: vec!["secrecy".into(), "cross_border".into()],
                rule: "6".into(),
                sentence: "The request shall be kept confidential.".into(),
                origin: "w.tsv:2".into(),
            }],
            unit: clause_infer::input::Unit::Provision,
        };
        let order = ["cross_border".to_string(), "secrecy".to_string()];
        let mut config = TrainConfig::default();
        assert_eq!(training_examples(&data, &order, &config).len(), 1);
        config.written_sentences = true;
        let examples = training_examples(&data, &order, &config);
        assert_eq!(examples.len(), 3, "alone and buried");
        // Labels in the recipe's order, as every example's are.
        assert!(examples[1..].iter().all(|e| e.labels == order), "{examples:?}");
    }
}
