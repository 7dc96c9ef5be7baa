//! `clause eval --probe`: does the model read the language of risk, or
//! shortcuts around it?
//!
//! - `headings-removed` and `headings-swapped` score the split with every
//!   provision's headings taken away, or given another provision's: a model
//!   that leans on titles loses much; one that reads the text loses little.
//! - `buried` inserts each sentence of the project's probe suite
//!   (`<recipe>/probes/buried-clauses.tsv`, written from the annotation
//!   guidelines) at a sentence boundary of label-less provisions of the
//!   split, under those provisions' own headings. It reports how often the
//!   inserted label is flagged (recall), and how often a benign control
//!   sentence makes the model flag a label it did not flag on the provision
//!   alone (false additions).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clause_data::example::Example;
use clause_data::probes::{ProbeSentence, read_probe_sentences};
use clause_eval::decision::flagged;
use clause_eval::metrics::evaluate;
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::input::Passage;
use clause_infer::rng::SplitMix64;
use clause_segment::spans::{insert_at, sentence_boundaries};
use serde::Serialize;

use crate::cli::{EvalArgs, ProbeKind};
use crate::commands::common::predict_with_progress;

/// Seed of the host choices, insertion points and heading swaps (fixed, so
/// a probe can be reproduced).
const PROBE_SEED: u64 = 20261206;

/// The probe suite's place inside a recipe directory.
pub const SUITE_FILE: &str = "probes/buried-clauses.tsv";

/// Run the probe `kind` on `examples` (with `truth` in the model's label
/// order) and print its report.
pub fn run(
    args: &EvalArgs,
    kind: ProbeKind,
    model: &Classifier,
    examples: &[Example],
    truth: &[Vec<bool>],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let names: Vec<String> = model.labels().iter().map(|l| l.name.clone()).collect();
    match kind {
        ProbeKind::HeadingsRemoved | ProbeKind::HeadingsSwapped => {
            let report = headings(kind, model, &names, examples, truth)?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report).context("serialising the report")?)?;
            } else {
                write_headings(&report, out)?;
            }
        }
        ProbeKind::Buried => {
            let suite = suite_path(args)?;
            let known: BTreeSet<String> = names.iter().cloned().collect();
            let sentences = read_probe_sentences(&suite, &known)?;
            let report = buried(model, &names, examples, &sentences, args.probe_hosts)?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report).context("serialising the report")?)?;
            } else {
                write_buried(&report, &suite, out)?;
            }
        }
    }
    Ok(())
}

fn suite_path(args: &EvalArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.probe_sentences {
        return Ok(path.clone());
    }
    if args.data.is_dir() {
        return Ok(args.data.join(SUITE_FILE));
    }
    bail!("--probe buried on a table needs --probe-sentences FILE (a recipe directory has {SUITE_FILE})")
}

/// Micro- and macro-F1 and per-label F1 with the headings as they are and
/// as the probe leaves them.
#[derive(Debug, Serialize)]
struct HeadingsReport {
    probe: &'static str,
    examples: usize,
    micro_f1: (f64, f64),
    macro_f1: (f64, f64),
    labels: Vec<(String, usize, f64, f64)>,
}

fn headings(
    kind: ProbeKind,
    model: &Classifier,
    names: &[String],
    examples: &[Example],
    truth: &[Vec<bool>],
) -> anyhow::Result<HeadingsReport> {
    let passages: Vec<Passage<'_>> = examples.iter().map(Example::passage).collect();
    let probed: Vec<Passage<'_>> = match kind {
        ProbeKind::HeadingsSwapped => swapped_headings(&passages),
        _ => passages.iter().map(|p| Passage::text(p.text)).collect(),
    };
    let decide = |passages: &[Passage<'_>]| -> anyhow::Result<Vec<Vec<bool>>> {
        let scores = predict_with_progress(model, passages, BatchPlan::default())?;
        Ok(decisions(&scores, &model.thresholds()))
    };
    let normal = evaluate(names, truth, &decide(&passages)?)?;
    let without = evaluate(names, truth, &decide(&probed)?)?;
    Ok(HeadingsReport {
        probe: if kind == ProbeKind::HeadingsSwapped { "headings-swapped" } else { "headings-removed" },
        examples: examples.len(),
        micro_f1: (normal.micro_f1, without.micro_f1),
        macro_f1: (normal.macro_f1, without.macro_f1),
        labels: normal
            .labels
            .iter()
            .zip(&without.labels)
            .map(|(a, b)| (a.label.clone(), a.support, a.f1, b.f1))
            .collect(),
    })
}

/// Each passage with the headings of another, chosen by a fixed shuffle: a
/// cyclic shift along a random order, so that no passage keeps its own
/// (unless it shares them with the passage it takes them from).
fn swapped_headings<'a>(passages: &[Passage<'a>]) -> Vec<Passage<'a>> {
    let mut order: Vec<usize> = (0..passages.len()).collect();
    SplitMix64::new(PROBE_SEED).shuffle(&mut order);
    let mut out = passages.to_vec();
    for (k, &index) in order.iter().enumerate() {
        let donor = &passages[order[(k + 1) % order.len()]];
        out[index] = Passage { text: passages[index].text, title: donor.title, chapter: donor.chapter };
    }
    out
}

fn decisions(scores: &[Vec<f32>], thresholds: &[f32]) -> Vec<Vec<bool>> {
    scores
        .iter()
        .map(|row| {
            let chosen = flagged(row, thresholds);
            (0..thresholds.len()).map(|j| chosen.contains(&j)).collect()
        })
        .collect()
}

/// One label's buried sentences: how often the label was flagged.
#[derive(Debug, Serialize)]
struct BuriedLabel {
    label: String,
    insertions: usize,
    found: usize,
    recall: f64,
    mean_probability: f64,
    /// Other labels the insertion made the model flag, over all insertions.
    other_labels_added: usize,
}

#[derive(Debug, Serialize)]
struct BuriedReport {
    hosts: usize,
    hosts_per_sentence: usize,
    labels: Vec<BuriedLabel>,
    /// Every labelled insertion pooled.
    recall: f64,
    control_insertions: usize,
    /// Control insertions after which some label is flagged that the host
    /// alone was not.
    controls_adding_a_label: usize,
    false_addition_rate: f64,
}

/// Insert every sentence into `per_sentence` label-less hosts and score.
fn buried(
    model: &Classifier,
    names: &[String],
    examples: &[Example],
    sentences: &[ProbeSentence],
    per_sentence: usize,
) -> anyhow::Result<BuriedReport> {
    let hosts: Vec<&Example> = examples.iter().filter(|e| e.labels.is_empty()).collect();
    if hosts.is_empty() {
        bail!("the data has no label-less provisions to insert probe sentences into");
    }
    let per_sentence = per_sentence.clamp(1, hosts.len());
    let mut rng = SplitMix64::new(PROBE_SEED);
    // (sentence, host, inserted text)
    let mut insertions: Vec<(usize, usize, String)> = Vec::new();
    for (s, sentence) in sentences.iter().enumerate() {
        let mut chosen: Vec<usize> = (0..hosts.len()).collect();
        rng.shuffle(&mut chosen);
        for &h in &chosen[..per_sentence] {
            let boundaries = sentence_boundaries(&hosts[h].text);
            let at = boundaries[rng.below(boundaries.len())];
            insertions.push((s, h, insert_at(&hosts[h].text, at, &sentence.sentence)));
        }
    }
    let mut passages: Vec<Passage<'_>> = hosts.iter().map(|h| h.passage()).collect();
    passages.extend(insertions.iter().map(|(_, h, text)| Passage { text, ..hosts[*h].passage() }));
    let scores = predict_with_progress(model, &passages, BatchPlan::default())?;
    let flags = decisions(&scores, &model.thresholds());
    let (alone, inserted) = flags.split_at(hosts.len());
    let inserted_scores = &scores[hosts.len()..];
    let added =
        |k: usize, h: usize| -> Vec<usize> { (0..names.len()).filter(|&j| inserted[k][j] && !alone[h][j]).collect() };
    let mut labels = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let rows: Vec<usize> =
            (0..insertions.len()).filter(|&k| sentences[insertions[k].0].label.as_deref() == Some(name)).collect();
        if rows.is_empty() {
            continue;
        }
        let found = rows.iter().filter(|&&k| inserted[k][j]).count();
        labels.push(BuriedLabel {
            label: name.clone(),
            insertions: rows.len(),
            found,
            recall: found as f64 / rows.len() as f64,
            mean_probability: rows.iter().map(|&k| f64::from(inserted_scores[k][j])).sum::<f64>() / rows.len() as f64,
            other_labels_added: rows
                .iter()
                .map(|&k| added(k, insertions[k].1).iter().filter(|&&a| a != j).count())
                .sum(),
        });
    }
    let labelled: usize = labels.iter().map(|l| l.insertions).sum();
    let found: usize = labels.iter().map(|l| l.found).sum();
    let controls: Vec<usize> = (0..insertions.len()).filter(|&k| sentences[insertions[k].0].label.is_none()).collect();
    let adding = controls.iter().filter(|&&k| !added(k, insertions[k].1).is_empty()).count();
    Ok(BuriedReport {
        hosts: hosts.len(),
        hosts_per_sentence: per_sentence,
        labels,
        recall: found as f64 / labelled.max(1) as f64,
        control_insertions: controls.len(),
        controls_adding_a_label: adding,
        false_addition_rate: adding as f64 / controls.len().max(1) as f64,
    })
}

fn write_headings(report: &HeadingsReport, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "probe {}: {} examples\n", report.probe, report.examples)?;
    writeln!(out, "{:<16} {:>7} {:>8} {:>8} {:>7}", "label", "support", "F1", "probed", "Δ")?;
    for (label, support, normal, probed) in &report.labels {
        writeln!(out, "{label:<16} {support:>7} {normal:>8.3} {probed:>8.3} {:>+7.3}", probed - normal)?;
    }
    for (name, (normal, probed)) in [("micro-F1", report.micro_f1), ("macro-F1", report.macro_f1)] {
        writeln!(out, "{name:<16} {:>7} {normal:>8.3} {probed:>8.3} {:>+7.3}", "", probed - normal)?;
    }
    Ok(())
}

fn write_buried(report: &BuriedReport, suite: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "probe buried: sentences of {} inserted into {} of {} label-less provisions each\n",
        suite.display(),
        report.hosts_per_sentence,
        report.hosts
    )?;
    writeln!(
        out,
        "{:<16} {:>10} {:>6} {:>7} {:>9} {:>12}",
        "label", "insertions", "found", "recall", "mean p", "other added"
    )?;
    for l in &report.labels {
        writeln!(
            out,
            "{:<16} {:>10} {:>6} {:>7.3} {:>9.3} {:>12}",
            l.label, l.insertions, l.found, l.recall, l.mean_probability, l.other_labels_added
        )?;
    }
    writeln!(out, "\nrecall of the inserted label, pooled: {:.3}", report.recall)?;
    writeln!(
        out,
        "controls: {} of {} insertions added a label ({:.3})",
        report.controls_adding_a_label, report.control_insertions, report.false_addition_rate
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapped_headings_move_every_heading_to_another_passage() {
        let titles: Vec<String> = (0..10).map(|i| format!("title {i}")).collect();
        let passages: Vec<Passage<'_>> =
            titles.iter().map(|t| Passage { text: t, title: Some(t), chapter: None }).collect();
        let swapped = swapped_headings(&passages);
        assert!(swapped.iter().all(|p| p.title != Some(p.text)));
        let mut moved: Vec<&str> = swapped.iter().filter_map(|p| p.title).collect();
        moved.sort_unstable();
        let mut all: Vec<&str> = titles.iter().map(String::as_str).collect();
        all.sort_unstable();
        assert_eq!(moved, all);
        assert_eq!(swapped_headings(&passages[..1]), passages[..1]);
    }
}
