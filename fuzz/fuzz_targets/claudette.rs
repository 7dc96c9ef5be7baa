//! The CLAUDETTE reader on one document: the input is the sentence file's
//! bytes, a NUL byte, then the tag file's bytes (no NUL: an empty tag file).
//! Either file may be non-UTF-8, as a file on disk may be. Errors are fine;
//! panics are not, and every example has a non-empty text and only known
//! labels.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

use clause_data::claudette::{TagRules, parse_claudette_document};
use clause_data::text::decode_utf8;
use libfuzzer_sys::fuzz_target;

/// The tos-unfair recipe's rules.
static LABELS: LazyLock<BTreeSet<String>> =
    LazyLock::new(|| ["a", "ch", "cr", "j", "law", "ltd", "ter", "use"].iter().map(|s| s.to_string()).collect());

fuzz_target!(|data: &[u8]| {
    let (sentences, tags) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let sentence_path = Path::new("sentences/Fuzz.txt");
    let tag_path = Path::new("tags/Fuzz.txt");
    let (Ok(sentence_text), Ok(tag_text)) =
        (decode_utf8(sentence_path, sentences.to_vec()), decode_utf8(tag_path, tags.to_vec()))
    else {
        return;
    };
    let ignore = ["pinc".to_string(), "countrym".to_string()];
    let rules = TagRules { labels: &LABELS, levels: &[2, 3], ignore: &ignore };
    let Ok(examples) = parse_claudette_document("Fuzz", (sentence_path, &sentence_text), (tag_path, &tag_text), &rules)
    else {
        return;
    };
    for example in &examples {
        assert!(!example.text.is_empty());
        assert!(example.labels.iter().all(|l| LABELS.contains(l)), "{:?}", example.labels);
    }
});
