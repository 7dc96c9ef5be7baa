//! `clause dataset stats`: label counts, text lengths and duplicates per split.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::example::Example;
use crate::leakage::{LeakageReport, normalise_for_matching};
use crate::rationales::Coverage;
use crate::split::Split;

/// Percentiles of a length distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Percentiles {
    /// Smallest.
    pub min: usize,
    /// 50th percentile.
    pub p50: usize,
    /// 90th percentile.
    pub p90: usize,
    /// 99th percentile.
    pub p99: usize,
    /// Largest.
    pub max: usize,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values`.
    pub fn of(mut values: Vec<usize>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable();
        let rank = |p: f64| {
            let index = ((p / 100.0) * values.len() as f64).ceil() as usize;
            values[index.clamp(1, values.len()) - 1]
        };
        Self { min: values[0], p50: rank(50.0), p90: rank(90.0), p99: rank(99.0), max: values[values.len() - 1] }
    }
}

/// Statistics of one split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitStats {
    /// Which split.
    pub split: Split,
    /// Examples.
    pub rows: usize,
    /// Documents.
    pub documents: usize,
    /// Examples per label, in label-set order.
    pub label_counts: Vec<(String, usize)>,
    /// Examples with no label.
    pub unlabelled: usize,
    /// Text length in characters.
    pub chars: Percentiles,
    /// Text length in whitespace-separated words.
    pub words: Percentiles,
    /// Examples whose normalised text repeats an earlier example of the same split.
    pub duplicates: usize,
}

/// Statistics of a built dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// The label set.
    pub labels: Vec<String>,
    /// Per split, in train / validation / test order.
    pub splits: Vec<SplitStats>,
    /// Distinct documents over all splits.
    pub documents: usize,
    /// Texts shared between splits.
    pub leakage: LeakageReport,
    /// How many labels have a rationale span (recipes with rationale files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationales: Option<Coverage>,
}

/// Compute statistics from `(split, example)` rows.
pub fn compute_stats<'a>(
    labels: &[String],
    rows: impl IntoIterator<Item = (Split, &'a Example)>,
    leakage: LeakageReport,
) -> DatasetStats {
    let mut by_split: BTreeMap<Split, Vec<&Example>> = BTreeMap::new();
    let mut documents = HashSet::new();
    for (split, example) in rows {
        documents.insert(example.document.as_str());
        by_split.entry(split).or_default().push(example);
    }
    let splits = Split::ALL
        .iter()
        .map(|split| {
            let rows = by_split.get(split).map(Vec::as_slice).unwrap_or(&[]);
            let mut seen = HashSet::new();
            let duplicates = rows.iter().filter(|e| !seen.insert(normalise_for_matching(&e.text))).count();
            let documents = rows.iter().map(|e| e.document.as_str()).collect::<HashSet<_>>().len();
            SplitStats {
                split: *split,
                rows: rows.len(),
                documents,
                label_counts: labels
                    .iter()
                    .map(|label| (label.clone(), rows.iter().filter(|e| e.labels.contains(label)).count()))
                    .collect(),
                unlabelled: rows.iter().filter(|e| e.labels.is_empty()).count(),
                chars: Percentiles::of(rows.iter().map(|e| e.text.chars().count()).collect()),
                words: Percentiles::of(rows.iter().map(|e| e.text.split_whitespace().count()).collect()),
                duplicates,
            }
        })
        .collect();
    DatasetStats { labels: labels.to_vec(), splits, documents: documents.len(), leakage, rationales: None }
}

impl DatasetStats {
    /// A plain-text report for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let width = self.labels.iter().map(String::len).max().unwrap_or(5).max(10);
        out.push_str(&format!("{:<width$}", "label"));
        for split in &self.splits {
            out.push_str(&format!(" {:>10}", split.split.name()));
        }
        out.push_str(&format!(" {:>10}\n", "total"));
        for (index, label) in self.labels.iter().enumerate() {
            out.push_str(&format!("{label:<width$}"));
            let mut total = 0;
            for split in &self.splits {
                let n = split.label_counts[index].1;
                total += n;
                out.push_str(&format!(" {n:>10}"));
            }
            out.push_str(&format!(" {total:>10}\n"));
        }
        // Documents may span splits, so their total is counted, not summed.
        let row = |name: &str, f: &dyn Fn(&SplitStats) -> usize, total: Option<usize>| {
            let mut line = format!("{name:<width$}");
            for split in &self.splits {
                line.push_str(&format!(" {:>10}", f(split)));
            }
            let total = total.unwrap_or_else(|| self.splits.iter().map(f).sum());
            line.push_str(&format!(" {total:>10}\n"));
            line
        };
        out.push_str(&row("(none)", &|s| s.unlabelled, None));
        out.push_str(&row("examples", &|s| s.rows, None));
        out.push_str(&row("documents", &|s| s.documents, Some(self.documents)));
        out.push_str(&row("duplicates", &|s| s.duplicates, None));
        out.push_str("\ntext length (characters / words): min p50 p90 p99 max\n");
        for split in &self.splits {
            let (c, w) = (split.chars, split.words);
            out.push_str(&format!(
                "  {:<10} {} {} {} {} {}  /  {} {} {} {} {}\n",
                split.split.name(),
                c.min,
                c.p50,
                c.p90,
                c.p99,
                c.max,
                w.min,
                w.p50,
                w.p90,
                w.p99,
                w.max
            ));
        }
        let l = &self.leakage;
        out.push_str(&format!(
            "\nshared between splits (>= {} chars): {} identical, {} near-identical ({} examples); {} shorter boilerplate texts ignored\n",
            l.min_chars, l.identical, l.near_identical, l.examples_involved, l.short_shared
        ));
        out.push_str(&format!("articles with paragraphs in more than one split: {}\n", l.articles_across_splits));
        for (pair, n) in &l.by_pair {
            out.push_str(&format!("  {pair}: {n}\n"));
        }
        for shared in &l.shared {
            let ids: Vec<String> =
                shared.ids.iter().map(|(split, ids)| format!("{split}: {}", ids.join(" "))).collect();
            let text: String = shared.text.chars().take(90).collect();
            out.push_str(&format!("  - {text:?} [{}]\n", ids.join("; ")));
        }
        if let Some(coverage) = &self.rationales {
            let (labels, with_span) = coverage.totals();
            out.push_str(&format!(
                "\nlabels with a rationale span: {with_span} of {labels} ({} spans)\n",
                coverage.spans
            ));
            for (label, n, s) in &coverage.per_label {
                out.push_str(&format!("  {label:<width$} {s:>6} of {n}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=100).collect());
        assert_eq!((p.min, p.p50, p.p90, p.p99, p.max), (1, 50, 90, 99, 100));
        assert_eq!(Percentiles::of(vec![]), Percentiles::default());
        let p = Percentiles::of(vec![7]);
        assert_eq!((p.p50, p.p99), (7, 7));
    }
}
