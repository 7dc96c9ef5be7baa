//! How a provision becomes the sequences a model reads, and how their
//! scores become the provision's.
//!
//! A model reads at most `max_length` tokens at a time. A provision longer
//! than that is read in overlapping windows, each with the headings the
//! model reads before the text, so that nothing past the first window is
//! lost. With [`Reading::Sentences`], each sentence (or sub-paragraph) of a
//! provision is also read on its own: one risky sentence in a paragraph of
//! boilerplate is then scored by itself, where averaging token states over
//! the whole paragraph would dilute it. A provision's score for a label is
//! the highest of its sequences' scores.
//!
//! Training's validation, `classify`, `eval`, `report`, `diff` and `serve`
//! all read through [`Views::of`], so a model is scored as it is used.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::input::{Context, Passage};
use crate::tokenize::TextEncoder;
use clause_segment::spans::{Granularity, spans};

/// How a model reads a provision; recorded in `clause.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// The provision whole, in overlapping windows when it is long.
    #[default]
    Whole,
    /// The provision whole, and each of its sentences on its own.
    Sentences,
}

/// Windows a text is read in at most: about 6,000 tokens at 256 a window,
/// longer than any provision of the treaties this project reads. Text
/// beyond is not read, and [`Views::cut`] says so.
pub const MAX_WINDOWS: usize = 32;

/// Bytes of a text tokenised at most per token of the windows it may fill:
/// word pieces average under 8 bytes, so this never cuts text a window
/// would read, and a megabyte-long "provision" is not aligned byte by byte.
const BYTES_PER_TOKEN: usize = 16;

/// The sequences that read a set of passages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Views {
    /// Token ids of each sequence, special tokens included.
    pub ids: Vec<Vec<u32>>,
    /// The passage each sequence reads.
    pub owners: Vec<usize>,
    /// Passages of which some text was not read (past [`MAX_WINDOWS`]).
    pub cut: Vec<usize>,
    /// Passages read.
    pub passages: usize,
    /// The lexical stage's margins of each passage (`[passage][label]`),
    /// which calibration weighs beside the encoder's scores; empty for a
    /// model without the stage.
    pub margins: Vec<Vec<f32>>,
}

impl Views {
    /// The sequences that read `passages`, with `context` before each
    /// piece of text, as `reading` says.
    pub fn of(
        encoder: &TextEncoder,
        context: Context,
        reading: Reading,
        passages: &[Passage<'_>],
    ) -> Result<Self, Error> {
        let content_cap = encoder.max_length().saturating_sub(encoder.special_length()).max(2);
        let byte_cap = MAX_WINDOWS * content_cap * BYTES_PER_TOKEN;
        let prefixes: Vec<String> = passages.iter().map(|p| context.prefix(p)).collect();
        let mut sentences: Vec<(usize, Range<usize>)> = Vec::new();
        if reading == Reading::Sentences {
            for (index, passage) in passages.iter().enumerate() {
                let pieces = spans(prefix(passage.text, byte_cap), Granularity::Sentences);
                if pieces.len() > 1 {
                    sentences.extend(pieces.into_iter().map(|piece| (index, piece)));
                }
            }
        }
        let mut texts: Vec<&str> = Vec::with_capacity(passages.len() * 2 + sentences.len());
        texts.extend(prefixes.iter().map(String::as_str));
        texts.extend(passages.iter().map(|p| prefix(p.text, byte_cap)));
        texts.extend(sentences.iter().map(|(index, piece)| &passages[*index].text[piece.clone()]));
        let mut pieces = encoder.piece_ids(&texts)?.into_iter();
        let headings: Vec<Vec<u32>> = pieces.by_ref().take(passages.len()).collect();
        let bodies: Vec<Vec<u32>> = pieces.by_ref().take(passages.len()).collect();
        let mut views = Self { passages: passages.len(), ..Self::default() };
        for (index, (heading, body)) in headings.iter().zip(&bodies).enumerate() {
            // Headings take at most half a window, so text always has room.
            let heading = &heading[..heading.len().min(content_cap / 2)];
            let room = content_cap - heading.len();
            let windows = windows(body.len(), room);
            if windows.len() > MAX_WINDOWS || passages[index].text.len() > byte_cap {
                views.cut.push(index);
            }
            for window in windows.into_iter().take(MAX_WINDOWS) {
                views.ids.push(encoder.sequence(&[heading, &body[window]]));
                views.owners.push(index);
            }
        }
        for ((index, _), sentence) in sentences.iter().zip(pieces) {
            let heading = &headings[*index][..headings[*index].len().min(content_cap / 2)];
            let room = content_cap - heading.len();
            views.ids.push(encoder.sequence(&[heading, &sentence[..sentence.len().min(room)]]));
            views.owners.push(*index);
        }
        Ok(views)
    }

    /// Each passage's scores: per label, the highest of its sequences'
    /// (`scores[sequence][label]`, in the order of [`Views::ids`]). NaN
    /// wins, so a failed score is never hidden by a good one.
    pub fn combine(&self, scores: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); self.passages];
        for (&owner, row) in self.owners.iter().zip(scores) {
            let best = &mut out[owner];
            if best.is_empty() {
                best.clone_from(row);
                continue;
            }
            for (b, &s) in best.iter_mut().zip(row) {
                if s.is_nan() || s > *b {
                    *b = s;
                }
            }
        }
        out
    }
}

/// Token ranges of windows of `room` tokens over `len` tokens, each
/// overlapping the one before by a quarter, the last ending at `len`. An
/// empty text is one empty window, so every passage has a sequence.
fn windows(len: usize, room: usize) -> Vec<Range<usize>> {
    let room = room.max(1);
    if len <= room {
        let whole = 0..len;
        return vec![whole];
    }
    let stride = (room * 3 / 4).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + room).min(len);
        out.push(start..end);
        if end == len {
            return out;
        }
        start += stride;
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary: how readers cut a huge text before tokenising it.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn windows_overlap_and_end_at_the_text_end() {
        assert_eq!(windows(0, 10), [0..0]);
        assert_eq!(windows(10, 10), [0..10]);
        assert_eq!(windows(11, 10), [0..10, 7..11]);
        assert_eq!(windows(30, 8), [0..8, 6..14, 12..20, 18..26, 24..30]);
        for (len, room) in [(1000, 254), (255, 254), (77, 3), (5, 1)] {
            let w = windows(len, room);
            assert_eq!(w.last().map(|r| r.end), Some(len));
            assert!(w.windows(2).all(|p| p[1].start <= p[0].end && p[1].start > p[0].start));
            assert!(w.iter().all(|r| r.len() <= room));
        }
    }

    #[test]
    fn a_passage_scores_the_highest_of_its_sequences() {
        let views = Views { ids: vec![vec![]; 4], owners: vec![0, 0, 1, 0], cut: vec![], passages: 2, margins: vec![] };
        let combined = views.combine(&[vec![0.1, 0.9], vec![0.7, 0.2], vec![0.3, 0.3], vec![0.2, f32::NAN]]);
        assert_eq!(combined[0][0], 0.7);
        assert!(combined[0][1].is_nan());
        assert_eq!(combined[1], [0.3, 0.3]);
    }
}
