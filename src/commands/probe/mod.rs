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
//!
//! On a cross-validation run (`clause train --cross-validate K
//! --keep-fold-models`), each fold's model is probed on the instruments it
//! held out and the figures are pooled: every provision is then read by a
//! model that never saw its instrument, as a new draft would be.

mod folds;

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
use serde::{Deserialize, Serialize};

use crate::cli::{EvalArgs, ProbeKind};
use crate::commands::common::predict_with_progress;
use crate::commands::eval::resampling_units;
use folds::Folds;
pub use folds::run_folds;

/// Seed of the host choices, insertion points and heading swaps (fixed, so
/// a probe can be reproduced).
const PROBE_SEED: u64 = 20261206;

/// Bootstrap resamples of the interval on the change in micro-F1, and their
/// seed (fixed, so a report can be reproduced).
const RESAMPLES: usize = 1000;
const BOOTSTRAP_SEED: u64 = 20261129;

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
            let readings = headings(kind, model, examples)?;
            let report = headings_report(kind, &names, examples, truth, &readings, None)?;
            print(args, &report, |r, out| write_headings(r, out), out)
        }
        ProbeKind::Buried => {
            let (suite, sentences) = suite(args, &names)?;
            let report = buried(model, &names, examples, &sentences, args.probe_hosts)?;
            print(args, &report, |r, out| write_buried(r, &suite, out), out)
        }
    }
}

/// Write `report` as JSON when asked, else with `text`.
fn print<R: Serialize>(
    args: &EvalArgs,
    report: &R,
    text: impl Fn(&R, &mut dyn Write) -> anyhow::Result<()>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(report).context("serialising the report")?)?;
        Ok(())
    } else {
        text(report, out)
    }
}

/// The buried-clause suite's path and sentences, checked against `names`.
fn suite(args: &EvalArgs, names: &[String]) -> anyhow::Result<(PathBuf, Vec<ProbeSentence>)> {
    let path = suite_path(args)?;
    let known: BTreeSet<String> = names.iter().cloned().collect();
    let sentences = read_probe_sentences(&path, &known)?;
    Ok((path, sentences))
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
    /// The cross-validation folds pooled (none for a split).
    #[serde(skip_serializing_if = "Option::is_none")]
    folds: Option<Folds>,
    micro_f1: (f64, f64),
    /// 95% interval of the change in micro-F1, resampling documents.
    micro_f1_change_interval: (f64, f64),
    macro_f1: (f64, f64),
    labels: Vec<(String, usize, f64, f64)>,
}

/// Decisions on the provisions as they are and as the probe leaves them.
#[derive(Debug, Serialize, Deserialize)]
struct Readings {
    normal: Vec<Vec<bool>>,
    probed: Vec<Vec<bool>>,
}

/// The probe's name, as the command line spells it.
fn probe_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::HeadingsRemoved => "headings-removed",
        ProbeKind::HeadingsSwapped => "headings-swapped",
        ProbeKind::Buried => "buried",
    }
}

fn headings(kind: ProbeKind, model: &Classifier, examples: &[Example]) -> anyhow::Result<Readings> {
    let passages: Vec<Passage<'_>> = examples.iter().map(Example::passage).collect();
    let probed: Vec<Passage<'_>> = match kind {
        ProbeKind::HeadingsSwapped => swapped_headings(&passages),
        _ => passages.iter().map(|p| Passage::text(p.text)).collect(),
    };
    let decide = |passages: &[Passage<'_>]| -> anyhow::Result<Vec<Vec<bool>>> {
        let scores = predict_with_progress(model, passages, BatchPlan::default())?;
        Ok(decisions(&scores, &model.thresholds()))
    };
    Ok(Readings { normal: decide(&passages)?, probed: decide(&probed)? })
}

fn headings_report(
    kind: ProbeKind,
    names: &[String],
    examples: &[Example],
    truth: &[Vec<bool>],
    readings: &Readings,
    folds: Option<Folds>,
) -> anyhow::Result<HeadingsReport> {
    let normal = evaluate(names, truth, &readings.normal)?;
    let without = evaluate(names, truth, &readings.probed)?;
    Ok(HeadingsReport {
        probe: probe_name(kind),
        examples: examples.len(),
        folds,
        micro_f1: (normal.micro_f1, without.micro_f1),
        micro_f1_change_interval: micro_f1_change_interval(truth, readings, &resampling_units(examples)),
        macro_f1: (normal.macro_f1, without.macro_f1),
        labels: normal
            .labels
            .iter()
            .zip(&without.labels)
            .map(|(a, b)| (a.label.clone(), a.support, a.f1, b.f1))
            .collect(),
    })
}

/// Label decisions counted for micro-F1: true positives, false positives,
/// false negatives.
#[derive(Clone, Copy, Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn add(&mut self, truth: &[bool], predicted: &[bool]) {
        for (&t, &p) in truth.iter().zip(predicted) {
            self.tp += u64::from(t && p);
            self.fp += u64::from(!t && p);
            self.fn_ += u64::from(t && !p);
        }
    }

    fn plus(&mut self, other: Counts) {
        (self.tp, self.fp, self.fn_) = (self.tp + other.tp, self.fp + other.fp, self.fn_ + other.fn_);
    }

    fn micro_f1(self) -> f64 {
        let denominator = 2 * self.tp + self.fp + self.fn_;
        if denominator == 0 { 0.0 } else { (2 * self.tp) as f64 / denominator as f64 }
    }
}

/// 95% percentile interval of the probe's change in micro-F1, resampling
/// `units` (each example's document, as `clause eval`'s intervals resample
/// them) with replacement: both readings of a unit move together (a paired
/// bootstrap), and the interval says how far the change may differ on other
/// documents.
fn micro_f1_change_interval(truth: &[Vec<bool>], readings: &Readings, units: &[usize]) -> (f64, f64) {
    let groups = units.iter().max().map_or(0, |&m| m + 1);
    let mut counts = vec![(Counts::default(), Counts::default()); groups];
    for (i, &unit) in units.iter().enumerate() {
        counts[unit].0.add(&truth[i], &readings.normal[i]);
        counts[unit].1.add(&truth[i], &readings.probed[i]);
    }
    if groups == 0 {
        return (0.0, 0.0);
    }
    let mut rng = SplitMix64::new(BOOTSTRAP_SEED);
    let mut changes: Vec<f64> = (0..RESAMPLES)
        .map(|_| {
            let (mut normal, mut probed) = (Counts::default(), Counts::default());
            for _ in 0..groups {
                let (a, b) = counts[rng.below(groups)];
                normal.plus(a);
                probed.plus(b);
            }
            probed.micro_f1() - normal.micro_f1()
        })
        .collect();
    changes.sort_by(f64::total_cmp);
    let at = |q: f64| changes[((q * (RESAMPLES - 1) as f64).round() as usize).min(RESAMPLES - 1)];
    (at(0.025), at(0.975))
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
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BuriedLabel {
    label: String,
    insertions: usize,
    found: usize,
    recall: f64,
    mean_probability: f64,
    /// Other labels the insertion made the model flag, over all insertions.
    other_labels_added: usize,
}

#[derive(Debug, Serialize, Deserialize)]
struct BuriedReport {
    /// Label-less provisions the sentences were inserted into (summed over
    /// cross-validation folds).
    hosts: usize,
    /// Hosts per sentence (in each fold).
    hosts_per_sentence: usize,
    labels: Vec<BuriedLabel>,
    /// Every labelled insertion pooled.
    recall: f64,
    control_insertions: usize,
    /// Control insertions after which some label is flagged that the host
    /// alone was not.
    controls_adding_a_label: usize,
    false_addition_rate: f64,
    /// The cross-validation folds pooled (none for a split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    folds: Option<Folds>,
    /// Each pooled fold's number, recall, controls adding a label and
    /// control insertions (empty for a split).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    per_fold: Vec<(usize, f64, usize, usize)>,
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
        folds: None,
        per_fold: Vec::new(),
    })
}

/// The folds' buried-clause figures as one: counts summed, each label's
/// mean probability weighted by its insertions, each fold's own figures
/// kept beside.
fn pool_buried(folds: Vec<(usize, BuriedReport)>) -> BuriedReport {
    let mut labels: Vec<BuriedLabel> = Vec::new();
    for (_, fold) in &folds {
        for l in &fold.labels {
            let weighted = l.mean_probability * l.insertions as f64;
            match labels.iter_mut().find(|p| p.label == l.label) {
                Some(p) => {
                    p.mean_probability += weighted;
                    p.insertions += l.insertions;
                    p.found += l.found;
                    p.other_labels_added += l.other_labels_added;
                }
                None => labels.push(BuriedLabel { mean_probability: weighted, ..l.clone() }),
            }
        }
    }
    for l in &mut labels {
        l.recall = l.found as f64 / l.insertions.max(1) as f64;
        l.mean_probability /= l.insertions.max(1) as f64;
    }
    let labelled: usize = labels.iter().map(|l| l.insertions).sum();
    let found: usize = labels.iter().map(|l| l.found).sum();
    let controls: usize = folds.iter().map(|(_, f)| f.control_insertions).sum();
    let adding: usize = folds.iter().map(|(_, f)| f.controls_adding_a_label).sum();
    BuriedReport {
        hosts: folds.iter().map(|(_, f)| f.hosts).sum(),
        hosts_per_sentence: folds.iter().map(|(_, f)| f.hosts_per_sentence).max().unwrap_or(0),
        labels,
        recall: found as f64 / labelled.max(1) as f64,
        control_insertions: controls,
        controls_adding_a_label: adding,
        false_addition_rate: adding as f64 / controls.max(1) as f64,
        folds: None,
        per_fold: folds.iter().map(|(k, f)| (*k, f.recall, f.controls_adding_a_label, f.control_insertions)).collect(),
    }
}

fn write_headings(report: &HeadingsReport, out: &mut dyn Write) -> anyhow::Result<()> {
    let pooled = match &report.folds {
        None => String::new(),
        Some(folds) => format!(", out of fold ({}, each read by the model that held it out)", folds.describe()),
    };
    writeln!(out, "probe {}: {} examples{pooled}\n", report.probe, report.examples)?;
    writeln!(out, "{:<16} {:>7} {:>8} {:>8} {:>7}", "label", "support", "F1", "probed", "Δ")?;
    for (label, support, normal, probed) in &report.labels {
        writeln!(out, "{label:<16} {support:>7} {normal:>8.3} {probed:>8.3} {:>+7.3}", probed - normal)?;
    }
    for (name, (normal, probed)) in [("micro-F1", report.micro_f1), ("macro-F1", report.macro_f1)] {
        writeln!(out, "{name:<16} {:>7} {normal:>8.3} {probed:>8.3} {:>+7.3}", "", probed - normal)?;
    }
    let (low, high) = report.micro_f1_change_interval;
    writeln!(
        out,
        "\nchange in micro-F1, 95% CI [{low:+.3}, {high:+.3}] (bootstrap: {RESAMPLES} resamples of documents)"
    )?;
    Ok(())
}

fn write_buried(report: &BuriedReport, suite: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let hosts = match &report.folds {
        None => format!("{} of {} label-less provisions each", report.hosts_per_sentence, report.hosts),
        Some(folds) => format!(
            "{} label-less provisions of each fold's held-out instruments each ({} hosts over {}, each read by the \
             model that held it out)",
            report.hosts_per_sentence,
            report.hosts,
            folds.describe()
        ),
    };
    writeln!(out, "probe buried: sentences of {} inserted into {hosts}\n", suite.display())?;
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
    for (fold, recall, adding, controls) in &report.per_fold {
        writeln!(out, "  fold {fold}: recall {recall:.3}, controls {adding} of {controls}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, insertions: usize, found: usize, mean_probability: f64) -> BuriedLabel {
        let recall = found as f64 / insertions as f64;
        BuriedLabel { label: name.into(), insertions, found, recall, mean_probability, other_labels_added: 1 }
    }

    fn fold(labels: Vec<BuriedLabel>, controls: usize, adding: usize) -> BuriedReport {
        let found: usize = labels.iter().map(|l| l.found).sum();
        let labelled: usize = labels.iter().map(|l| l.insertions).sum();
        BuriedReport {
            hosts: 10,
            hosts_per_sentence: 5,
            labels,
            recall: found as f64 / labelled as f64,
            control_insertions: controls,
            controls_adding_a_label: adding,
            false_addition_rate: adding as f64 / controls as f64,
            folds: None,
            per_fold: Vec::new(),
        }
    }

    #[test]
    fn pooled_folds_sum_counts_and_weigh_probabilities_by_insertions() {
        let first = fold(vec![label("secrecy", 10, 2, 0.2), label("expression", 10, 10, 0.9)], 20, 1);
        let second = fold(vec![label("secrecy", 30, 27, 0.6)], 20, 3);
        let pooled = pool_buried(vec![(1, first), (3, second)]);
        assert_eq!(pooled.hosts, 20);
        let secrecy = &pooled.labels[0];
        assert_eq!((secrecy.insertions, secrecy.found, secrecy.other_labels_added), (40, 29, 2));
        assert!((secrecy.recall - 29.0 / 40.0).abs() < 1e-12);
        assert!((secrecy.mean_probability - (0.2 * 10.0 + 0.6 * 30.0) / 40.0).abs() < 1e-12);
        assert_eq!(pooled.labels[1].label, "expression");
        assert!((pooled.recall - 39.0 / 50.0).abs() < 1e-12);
        assert_eq!((pooled.control_insertions, pooled.controls_adding_a_label), (40, 4));
        assert!((pooled.false_addition_rate - 0.1).abs() < 1e-12);
        assert_eq!(pooled.per_fold.iter().map(|f| f.0).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn the_change_interval_brackets_the_change_and_is_empty_when_nothing_changes() {
        // Ten documents of two examples and one label each; the probe loses
        // the positive of every second document.
        let truth: Vec<Vec<bool>> = (0..20).map(|i| vec![i % 2 == 0]).collect();
        let documents: Vec<usize> = (0..20).map(|i| i / 2).collect();
        let same = Readings { normal: truth.clone(), probed: truth.clone() };
        assert_eq!(micro_f1_change_interval(&truth, &same, &documents), (0.0, 0.0));
        let probed: Vec<Vec<bool>> = (0..20).map(|i| vec![i % 4 == 0]).collect();
        let worse = Readings { normal: truth.clone(), probed };
        let (low, high) = micro_f1_change_interval(&truth, &worse, &documents);
        // Micro-F1 falls from 1 to 2·5 / (2·5 + 5) = 2/3.
        assert!(low < -1.0 / 3.0 && -1.0 / 3.0 < high && high < 0.0, "({low}, {high})");
        // Each example its own unit, as for a table from one document.
        let alone: Vec<usize> = (0..20).collect();
        let (low, high) = micro_f1_change_interval(&truth, &worse, &alone);
        assert!(low < high && high < 0.0, "({low}, {high})");
    }

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
