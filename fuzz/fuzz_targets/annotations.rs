//! The annotation and rationale file parsers on any UTF-8 text: a clean
//! error or annotations with known labels and 16-hex-digit hashes, and an
//! annotation formatted by `format_annotation` reads back as itself; a clean
//! error or rationales with known labels and non-empty, whitespace-normalised
//! spans; a clean error or probe sentences with a known label (or none) and a
//! non-empty, whitespace-normalised sentence; the same for written training
//! sentences, whose labels are known, sorted and distinct.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use clause_data::annotations::{format_annotation, parse_annotations, parse_labels};
use clause_data::probes::parse_probe_sentences;
use clause_data::rationales::parse_rationales;
use clause_data::written::parse_written_sentences;
use libfuzzer_sys::fuzz_target;

static LABELS: LazyLock<BTreeSet<String>> = LazyLock::new(|| {
    ["surveillance", "cross_border", "extradition", "criminalisation", "expression", "secrecy", "safeguard"]
        .iter()
        .map(|s| s.to_string())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("annotations/fuzz.tsv");
    if let Ok(annotations) = parse_annotations(path, text, &LABELS) {
        for annotation in &annotations {
            assert_eq!(annotation.text_hash.len(), 16);
            assert!(annotation.labels.iter().all(|l| LABELS.contains(l)));
            // Written back (with any text as the excerpt), it reads the same.
            let line = format_annotation(&annotation.id, &annotation.text_hash, &annotation.labels, text);
            let again = parse_annotations(path, &line, &LABELS).expect("a formatted annotation reads back");
            assert_eq!(again.len(), 1, "{line:?}");
            assert_eq!(
                (&again[0].id, &again[0].text_hash, &again[0].labels),
                (&annotation.id, &annotation.text_hash, &annotation.labels)
            );
        }
    }
    // Any line as a labels field.
    let _ = parse_labels(text);
    if let Ok(rationales) = parse_rationales(Path::new("rationales/fuzz.tsv"), text, &LABELS) {
        for rationale in &rationales {
            assert!(LABELS.contains(&rationale.label) && !rationale.id.is_empty());
            assert!(!rationale.span.is_empty());
            assert_eq!(rationale.span.split_whitespace().collect::<Vec<_>>().join(" "), rationale.span);
        }
    }
    if let Ok(sentences) = parse_probe_sentences(Path::new("probes/fuzz.tsv"), text, &LABELS) {
        assert!(!sentences.is_empty());
        for sentence in &sentences {
            assert!(sentence.label.as_ref().is_none_or(|l| LABELS.contains(l)));
            assert!(!sentence.sentence.is_empty());
            assert_eq!(sentence.sentence.split_whitespace().collect::<Vec<_>>().join(" "), sentence.sentence);
        }
    }
    if let Ok(sentences) = parse_written_sentences(Path::new("sentences/fuzz.tsv"), text, &LABELS) {
        assert!(!sentences.is_empty());
        for sentence in &sentences {
            assert!(sentence.labels.iter().all(|l| LABELS.contains(l)));
            assert!(sentence.labels.windows(2).all(|pair| pair[0] < pair[1]));
            assert!(!sentence.sentence.is_empty());
            assert_eq!(sentence.sentence.split_whitespace().collect::<Vec<_>>().join(" "), sentence.sentence);
        }
    }
});
