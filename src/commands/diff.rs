//! `clause diff`: what changed between two versions of a draft, and how the
//! risk moved.

use std::io::Write;

use anyhow::{Context, bail};
use clause_eval::decision::{flagged, flags};
use clause_infer::classifier::BatchPlan;
use clause_infer::input::{Passage, Unit};

use crate::cli::{DiffArgs, DiffFormat};
use crate::commands::common::{load_model, predict_with_progress};
use crate::input::{Fields, Item, read_inputs};
use crate::output::{article_label, truncate};
use clause_review::align::{AlignItem, Pair, align};

/// Labels that protect rather than endanger: a rise in their probability
/// lowers the risk of a change, a fall raises it.
const PROTECTIVE_LABELS: [&str; 1] = ["safeguard"];

/// Probability moves smaller than this are not listed for a label whose
/// decision did not flip.
const SHOWN_DELTA: f32 = 0.05;

/// What happened to a provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Added,
    Removed,
    Changed,
    Moved,
    Unchanged,
}

/// One label's move.
#[derive(Debug, serde::Serialize)]
struct LabelMove {
    label: String,
    old: f32,
    new: f32,
    was_predicted: bool,
    is_predicted: bool,
}

/// A provision as the JSON output shows it.
#[derive(Debug, serde::Serialize)]
struct Side<'a> {
    id: &'a str,
    article: Option<&'a str>,
    paragraph: Option<&'a str>,
    title: Option<&'a str>,
    text: &'a str,
    labels: Vec<&'a str>,
}

#[derive(Debug, serde::Serialize)]
struct Change<'a> {
    kind: Kind,
    old: Option<Side<'a>>,
    new: Option<Side<'a>>,
    similarity: Option<f64>,
    /// Largest rise in risk over the labels (protective labels counted
    /// inversely); negative when the change only lowers risk.
    risk_delta: f32,
    labels: Vec<LabelMove>,
}

pub fn run(args: &DiffArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(t) = args.threshold
        && !(0.0..=1.0).contains(&t)
    {
        bail!("--threshold {t}: expected a probability between 0 and 1");
    }
    let fields = Fields { text: "text", title: None };
    let old = read_draft(&args.old, fields)?;
    let new = read_draft(&args.new, fields)?;
    let model = load_model(&args.model, &args.device)?;
    let names: Vec<String> = model.labels().iter().map(|l| l.name.clone()).collect();
    let thresholds = match args.threshold {
        Some(t) => vec![t; names.len()],
        None => model.thresholds(),
    };
    let passages: Vec<Passage<'_>> = old.iter().chain(&new).map(Item::passage).collect();
    let mut scores = predict_with_progress(&model, &passages, BatchPlan::default())?;
    let new_scores = scores.split_off(old.len());
    let old_scores = scores;
    let scored = Scored { old: &old, new: &new, old_scores: &old_scores, new_scores: &new_scores };
    let mut changes: Vec<Change<'_>> = align(&as_align(&old), &as_align(&new))
        .into_iter()
        .map(|pair| scored.change(pair, &names, &thresholds))
        .collect();
    let total = changes.len();
    if !args.all {
        changes.retain(|c| c.kind != Kind::Unchanged);
    }
    // Most risk-increasing first; the sort is stable, so ties keep the
    // reading order of the new draft.
    changes.sort_by(|a, b| b.risk_delta.total_cmp(&a.risk_delta));
    match args.format {
        DiffFormat::Json => {
            let document = serde_json::json!({
                "old": args.old.display().to_string(),
                "new": args.new.display().to_string(),
                "model": args.model.display().to_string(),
                "provisions": {"old": old.len(), "new": new.len()},
                "changes": changes,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&document).context("serialising the diff")?)?;
        }
        DiffFormat::Table => write_table(&changes, total, &old, &new, out)?,
    }
    Ok(())
}

/// Both drafts with their provisions' probabilities, label by label.
struct Scored<'a> {
    old: &'a [Item],
    new: &'a [Item],
    old_scores: &'a [Vec<f32>],
    new_scores: &'a [Vec<f32>],
}

impl<'a> Scored<'a> {
    /// What an aligned pair shows a reviewer: its kind, both sides, the
    /// labels that flipped or moved, and its largest rise in risk.
    fn change(&self, pair: Pair, names: &'a [String], thresholds: &[f32]) -> Change<'a> {
        let (old, new) = (self.old, self.new);
        let (kind, before, after, similarity) = match pair {
            Pair::Added { new: n } => (Kind::Added, None, Some(n), None),
            Pair::Removed { old: o } => (Kind::Removed, Some(o), None, None),
            Pair::Matched { old: o, new: n, similarity, identical } => {
                let kind = if !identical {
                    Kind::Changed
                } else if place(&old[o]) != place(&new[n]) {
                    Kind::Moved
                } else {
                    Kind::Unchanged
                };
                (kind, Some(o), Some(n), Some(similarity))
            }
        };
        let zeros = vec![0.0; names.len()];
        let p_old = before.map_or(zeros.as_slice(), |o| self.old_scores[o].as_slice());
        let p_new = after.map_or(zeros.as_slice(), |n| self.new_scores[n].as_slice());
        let labels: Vec<LabelMove> = names
            .iter()
            .enumerate()
            .map(|(j, label)| LabelMove {
                label: label.clone(),
                old: p_old[j],
                new: p_new[j],
                was_predicted: before.is_some() && flags(p_old[j], thresholds[j]),
                is_predicted: after.is_some() && flags(p_new[j], thresholds[j]),
            })
            .filter(|m| {
                let both = before.is_some() && after.is_some();
                m.was_predicted != m.is_predicted || (both && (m.new - m.old).abs() >= SHOWN_DELTA)
            })
            .collect();
        let risk_delta = names
            .iter()
            .enumerate()
            .map(|(j, label)| {
                let delta = p_new[j] - p_old[j];
                if PROTECTIVE_LABELS.contains(&label.as_str()) { -delta } else { delta }
            })
            .fold(f32::NEG_INFINITY, f32::max);
        Change {
            kind,
            old: before.map(|o| side(&old[o], &self.old_scores[o], thresholds, names)),
            new: after.map(|n| side(&new[n], &self.new_scores[n], thresholds, names)),
            similarity,
            risk_delta: if risk_delta.is_finite() { risk_delta } else { 0.0 },
            labels,
        }
    }
}

fn as_align(items: &[Item]) -> Vec<AlignItem<'_>> {
    items
        .iter()
        .map(|i| AlignItem {
            article: i.article.as_deref(),
            paragraph: i.paragraph.as_deref(),
            title: i.title.as_deref(),
            text: &i.text,
        })
        .collect()
}

fn side<'a>(item: &'a Item, scores: &[f32], thresholds: &[f32], names: &'a [String]) -> Side<'a> {
    Side {
        id: &item.id,
        article: item.article.as_deref(),
        paragraph: item.paragraph.as_deref(),
        title: item.title.as_deref(),
        text: &item.text,
        labels: flagged(scores, thresholds).into_iter().map(|j| names[j].as_str()).collect(),
    }
}

fn read_draft(path: &std::path::Path, fields: Fields<'_>) -> anyhow::Result<Vec<Item>> {
    // Provisions, whatever the model was trained on: diff matches
    // provisions (renumbered articles included) between two drafts.
    let inputs = read_inputs(std::slice::from_ref(&path.to_path_buf()), fields, Unit::Provision)?;
    if !inputs.carried.is_empty() || inputs.items.iter().any(|i| i.range.is_none()) {
        bail!("{}: diff compares drafts (.md, .txt, .docx, .html, .pdf), not tables", path.display());
    }
    Ok(inputs.items)
}

fn place(item: &Item) -> String {
    article_label(item.article.as_deref(), item.paragraph.as_deref(), &item.id)
}

fn write_table(
    changes: &[Change<'_>],
    total: usize,
    old: &[Item],
    new: &[Item],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let counts = |kind: Kind| changes.iter().filter(|c| c.kind == kind).count();
    writeln!(
        out,
        "{} provisions before, {} after: {} added, {} removed, {} changed, {} moved, {} unchanged",
        old.len(),
        new.len(),
        counts(Kind::Added),
        counts(Kind::Removed),
        counts(Kind::Changed),
        counts(Kind::Moved),
        total - changes.iter().filter(|c| c.kind != Kind::Unchanged).count()
    )?;
    let mut renumbered = Vec::new();
    for change in changes {
        if let (Kind::Moved, true, Some(o), Some(n)) = (change.kind, change.labels.is_empty(), &change.old, &change.new)
        {
            renumbered.push(format!("{} (was {})", side_place(n), side_place(o).trim_start_matches("Art. ")));
            continue;
        }
        let where_ = match (&change.old, &change.new) {
            (Some(o), Some(n)) => {
                let (before, after) = (side_place(o), side_place(n));
                if before == after { after } else { format!("{after} (was {})", before.trim_start_matches("Art. ")) }
            }
            (None, Some(n)) => side_place(n),
            (Some(o), None) => format!("{} (old)", side_place(o)),
            (None, None) => String::new(),
        };
        let kind = match change.kind {
            Kind::Added => "added",
            Kind::Removed => "removed",
            Kind::Changed => "changed",
            Kind::Moved => "moved",
            Kind::Unchanged => "same",
        };
        let moves: Vec<String> = change
            .labels
            .iter()
            .map(|m| {
                let sign = match (m.was_predicted, m.is_predicted) {
                    (false, true) => "+",
                    (true, false) => "-",
                    _ => "~",
                };
                match change.kind {
                    Kind::Added => format!("{sign}{} {:.2}", m.label, m.new),
                    Kind::Removed => format!("{sign}{} {:.2}", m.label, m.old),
                    _ => format!("{sign}{} {:.2}→{:.2}", m.label, m.old, m.new),
                }
            })
            .collect();
        let moves = match (moves.is_empty(), change.kind) {
            (false, _) => moves.join(", "),
            (true, Kind::Added | Kind::Removed) => "no label".to_string(),
            (true, _) => "no label change".to_string(),
        };
        writeln!(out, "\n{where_}: {kind}  {moves}")?;
        let text = change.new.as_ref().or(change.old.as_ref()).map_or("", |s| s.text);
        writeln!(out, "    {}", truncate(text, 96))?;
    }
    if !renumbered.is_empty() {
        writeln!(out, "\nrenumbered, text and labels unchanged: {}", renumbered.join(", "))?;
    }
    Ok(())
}

fn side_place(side: &Side<'_>) -> String {
    article_label(side.article, side.paragraph, side.id)
}
