//! Explanations by occlusion: which parts of a provision drive a label.
//!
//! A provision is cut into clause-sized spans (at sentence ends, semicolons,
//! colons, commas and sub-paragraph markers); each span is removed in turn
//! and the text re-scored. The spans whose removal lowers a predicted
//! label's probability most are what drives it. Occlusion needs nothing but
//! forward passes, so it explains exactly the model that decides, and its
//! answer ("without these words, 0.94 becomes 0.21") is one a reviewer can
//! check by reading.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::classifier::{BatchPlan, Classifier};
use crate::input::Passage;
pub use clause_segment::spans::without;
use clause_segment::spans::{Granularity, spans};

/// One span and what removing it does to one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanDrop {
    /// Byte offset of the span in the text.
    pub start: usize,
    /// Byte offset one past its end.
    pub end: usize,
    /// The span's text.
    pub text: String,
    /// The label's probability with the text whole minus without the span.
    pub drop: f32,
}

/// Why one label was predicted: the spans that lower its probability most
/// when removed, largest drop first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Index of the label.
    pub label: usize,
    /// Spans with a positive drop, largest first.
    pub spans: Vec<SpanDrop>,
}

/// Byte ranges of the clause-sized spans of `text` (see
/// [`Granularity::Clauses`]), covering every word once, in order.
pub fn clause_spans(text: &str) -> Vec<Range<usize>> {
    spans(text, Granularity::Clauses)
}

impl Classifier {
    /// Explain each passage's predicted labels (`labels[i]`, indices) by
    /// occlusion, given its probabilities with the text whole; keep the
    /// `top` largest drops per label. Only the text is cut; the headings the
    /// model reads stay whole. All occluded variants of all passages are
    /// scored together, in length-bucketed batches, read as the model reads
    /// (so `probabilities` are [`Classifier::predict_passages`]'s).
    pub fn explain(
        &self,
        passages: &[Passage<'_>],
        probabilities: &[Vec<f32>],
        labels: &[Vec<usize>],
        top: usize,
    ) -> Result<Vec<Vec<Explanation>>, Error> {
        let mut variants: Vec<String> = Vec::new();
        let mut owners: Vec<(usize, Range<usize>)> = Vec::new();
        for (index, passage) in passages.iter().enumerate() {
            if labels.get(index).is_none_or(Vec::is_empty) {
                continue;
            }
            for span in clause_spans(passage.text) {
                variants.push(without(passage.text, &span));
                owners.push((index, span));
            }
        }
        let occluded_passages: Vec<Passage<'_>> =
            variants.iter().zip(&owners).map(|(rest, (index, _))| Passage { text: rest, ..passages[*index] }).collect();
        let occluded = self.predict_passages(&occluded_passages, BatchPlan::default(), &mut |_| {})?;
        let mut out: Vec<Vec<Explanation>> = labels
            .iter()
            .map(|row| row.iter().map(|&label| Explanation { label, spans: Vec::new() }).collect())
            .collect();
        for ((index, span), scores) in owners.into_iter().zip(occluded) {
            let whole = &probabilities[index];
            for explanation in &mut out[index] {
                let drop = whole[explanation.label] - scores[explanation.label];
                if drop > 0.0 {
                    explanation.spans.push(SpanDrop {
                        start: span.start,
                        end: span.end,
                        text: passages[index].text[span.clone()].to_string(),
                        drop,
                    });
                }
            }
        }
        for explanation in out.iter_mut().flatten() {
            explanation.spans.sort_by(|a, b| b.drop.total_cmp(&a.drop).then(a.start.cmp(&b.start)));
            explanation.spans.truncate(top);
        }
        Ok(out)
    }
}
