//! The provision segmenter on any UTF-8 text: it never panics, and every
//! provision's byte range lies within the input, on character boundaries, in
//! document order.
#![no_main]

use clause_segment::{normalise_whitespace, segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    let provisions = segment("fuzz", source);
    let mut previous_end = 0;
    for provision in &provisions {
        let (start, end) = (provision.start, provision.end);
        assert!(start <= end && end <= source.len(), "range {start}..{end} of {} bytes", source.len());
        assert!(source.is_char_boundary(start) && source.is_char_boundary(end), "range {start}..{end}");
        assert!(start >= previous_end, "range {start}..{end} overlaps the previous one, ending at {previous_end}");
        previous_end = end;
        assert!(provision.line >= 1);
        assert!(!provision.text.is_empty(), "empty provision text at {start}..{end}");
        assert_eq!(normalise_whitespace(&provision.text), provision.text, "text not normalised");
        assert!(
            provision.id.starts_with(&provision.document),
            "id {} of document {}",
            provision.id,
            provision.document
        );
    }
});
