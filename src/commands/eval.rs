//! `clause eval`: score a model on labelled data, and compare it with the
//! model it would replace.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use clause_data::example::Example;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_data::table::{TableColumns, TableFormat, read_table};
use clause_eval::calibration::{Band, REVIEW_BANDS, bands};
use clause_eval::decision::flagged;
use clause_eval::evaluation::{
    Calibration, Intervals, RankingMetrics, bootstrap_intervals_by_group, calibration,
    expected_calibration_error_per_label, ranking_metrics,
};
use clause_eval::metrics::{Metrics, evaluate};
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::input::Passage;
use clause_review::report::{Bin, Curve};

use crate::cli::{EvalArgs, SplitArg};
use crate::commands::common::ensure_built;
use crate::commands::common::{load_model, predict_with_progress};

/// Bootstrap resamples for the intervals, and their seed (fixed, so a
/// report can be reproduced).
const RESAMPLES: usize = 1000;
const BOOTSTRAP_SEED: u64 = 20261129;

/// Equal-width probability bins of the calibration table.
const CALIBRATION_BINS: usize = 10;

/// Everything one model scores on one dataset.
#[derive(Debug, serde::Serialize)]
struct Scored {
    model: String,
    metrics: Metrics,
    ranking: Vec<RankingMetrics>,
    calibration: Calibration,
    /// Expected calibration error of each label's scores alone.
    label_calibration_error: Vec<f64>,
    /// How often scores in the bands a reviewer reads are right.
    bands: Vec<Band>,
    intervals: Intervals,
    #[serde(skip)]
    probabilities: Vec<Vec<f32>>,
    #[serde(skip)]
    predicted: Vec<Vec<bool>>,
}

/// One label's change from the baseline.
#[derive(Debug, serde::Serialize)]
struct Delta {
    label: String,
    f1_baseline: f64,
    f1: f64,
    delta: f64,
}

/// An example whose decision on one label differs between the models.
#[derive(Debug, serde::Serialize)]
struct Flip {
    id: String,
    label: String,
    baseline: bool,
    model: bool,
    truth: bool,
    baseline_probability: f32,
    probability: f32,
    text: String,
}

#[derive(Debug, serde::Serialize)]
struct Comparison {
    baseline: Scored,
    deltas: Vec<Delta>,
    flipped: Vec<Flip>,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    data: String,
    split: Option<String>,
    examples: usize,
    #[serde(flatten)]
    scored: Scored,
    #[serde(skip_serializing_if = "Option::is_none")]
    comparison: Option<Comparison>,
}

pub fn run(args: &EvalArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(t) = args.threshold
        && !(0.0..=1.0).contains(&t)
    {
        bail!("--threshold {t}: expected a probability between 0 and 1");
    }
    // A run directory holds a fold plan and fold models, not a model.
    if crate::commands::cross_validate::is_run(&args.model) && !args.model.join("config.json").is_file() {
        let Some(kind) = args.probe else {
            bail!(
                "--model {}: a cross-validation run; its figures are in summary.json (`clause train \
                 --cross-validate` prints them), and --probe probes its fold models",
                args.model.display()
            );
        };
        if args.baseline.is_some() || args.threshold.is_some() {
            bail!(
                "--model {}: a cross-validation run is probed with each fold's own model and thresholds; \
                 --baseline and --threshold apply to one model",
                args.model.display()
            );
        }
        return crate::commands::probe::run_folds(args, kind, out);
    }
    let model = load_model(&args.model, &args.device)?;
    let names: Vec<String> = model.labels().iter().map(|l| l.name.clone()).collect();
    let baseline = args.baseline.as_deref().map(|dir| load_model(dir, &args.device)).transpose()?;
    if let Some(baseline) = &baseline {
        let baseline_names: Vec<&str> = baseline.labels().iter().map(|l| l.name.as_str()).collect();
        if baseline_names != names {
            bail!(
                "--baseline {}: its labels {baseline_names:?} differ from the model's {names:?}; only models of \
                 one label set can be compared",
                baseline.dir().display()
            );
        }
    }
    let (examples, split) = read_examples(args, &names)?;
    if examples.is_empty() {
        bail!("{}: no labelled examples to score", args.data.display());
    }
    let truth: Vec<Vec<bool>> = examples.iter().map(|e| names.iter().map(|n| e.labels.contains(n)).collect()).collect();
    if let Some(kind) = args.probe {
        return crate::commands::probe::run(args, kind, &model, &examples, &truth, out);
    }
    let passages: Vec<Passage<'_>> = examples.iter().map(Example::passage).collect();
    let units = resampling_units(&examples);
    let scored = score(&model, &names, &passages, &truth, &units, args.threshold)?;
    let comparison = match &baseline {
        Some(baseline) => {
            let old = score(baseline, &names, &passages, &truth, &units, args.threshold)?;
            Some(compare(&names, &examples, &truth, old, &scored))
        }
        None => None,
    };
    let report = Report { data: args.data.display().to_string(), split, examples: examples.len(), scored, comparison };
    if let Some(path) = &args.reliability_svg {
        std::fs::write(path, reliability_diagram(&report)).with_context(|| path.display().to_string())?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report).context("serialising the report")?)?;
    } else {
        write_text(&report, args.flips, out)?;
    }
    Ok(())
}

/// Examples of a recipe split or of a labelled table, with labels checked
/// against the model's.
fn read_examples(args: &EvalArgs, names: &[String]) -> anyhow::Result<(Vec<Example>, Option<String>)> {
    let known: BTreeSet<String> = names.iter().cloned().collect();
    if args.data.is_dir() {
        let recipe = LoadedRecipe::load(&args.data)?;
        let recipe_labels: BTreeSet<String> = recipe.recipe.labels.iter().map(|l| l.name.clone()).collect();
        if recipe_labels != known {
            bail!("{}: the recipe's labels {:?} are not the model's {:?}", args.data.display(), recipe_labels, names);
        }
        ensure_built(&recipe, args.data_root.data_root.clone())?;
        let split = match args.split {
            SplitArg::Train => Split::Train,
            SplitArg::Validation => Split::Validation,
            SplitArg::Test => Split::Test,
        };
        let examples = clause_data::build::read_split(&recipe, split)?;
        return Ok((examples, Some(split.name().to_string())));
    }
    TableFormat::from_path(&args.data)?;
    let columns = TableColumns {
        text: &args.text_field,
        labels: &args.labels_field,
        delimiter: ";",
        id: table_has_column(&args.data, "id").then_some("id"),
        document: None,
    };
    let examples = read_table(&args.data, &columns, &known).map_err(|err| match err {
        // The labels checked against are the model's, not a recipe's.
        clause_data::error::Error::UnknownLabel { path, line, label, known } => anyhow::anyhow!(
            "{}:{line}: unknown label `{label}`; the model {} predicts: {known}",
            path.display(),
            args.model.display()
        ),
        other => other.into(),
    })?;
    // Flipped decisions are reported by id: one id may not name two rows.
    let mut first: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for example in &examples {
        if let Some(earlier) = first.insert(&example.id, &example.origin) {
            bail!("{}: duplicate id `{}` (first at {earlier})", example.origin, example.id);
        }
    }
    Ok((examples, None))
}

fn table_has_column(path: &Path, column: &str) -> bool {
    clause_data::table::read_frame(path).is_ok_and(|frame| frame.get_column_names().iter().any(|n| *n == column))
}

/// What the bootstrap resamples: each example's document (numbered in order
/// of first appearance), so that the intervals say how far a figure may move
/// on other documents; each example alone when they all come from one
/// document, since one document cannot be resampled.
pub(crate) fn resampling_units(examples: &[Example]) -> Vec<usize> {
    let mut numbers: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let units: Vec<usize> = examples
        .iter()
        .map(|e| {
            let next = numbers.len();
            *numbers.entry(e.document.as_str()).or_insert(next)
        })
        .collect();
    if numbers.len() < 2 { (0..examples.len()).collect() } else { units }
}

fn score(
    model: &Classifier,
    names: &[String],
    passages: &[Passage<'_>],
    truth: &[Vec<bool>],
    units: &[usize],
    threshold: Option<f32>,
) -> anyhow::Result<Scored> {
    // Each model reads the headings it was trained with.
    let probabilities = predict_with_progress(model, passages, BatchPlan::default())?;
    let thresholds = match threshold {
        Some(t) => vec![t; names.len()],
        None => model.thresholds(),
    };
    let predicted: Vec<Vec<bool>> = probabilities
        .iter()
        .map(|p| {
            let chosen = flagged(p, &thresholds);
            (0..names.len()).map(|j| chosen.contains(&j)).collect()
        })
        .collect();
    Ok(Scored {
        model: model.dir().display().to_string(),
        metrics: evaluate(names, truth, &predicted)?,
        ranking: ranking_metrics(names, &probabilities, truth)?,
        calibration: calibration(&probabilities, truth, CALIBRATION_BINS)?,
        label_calibration_error: expected_calibration_error_per_label(&probabilities, truth, CALIBRATION_BINS)?,
        bands: bands(&probabilities, truth, &REVIEW_BANDS),
        intervals: bootstrap_intervals_by_group(names, truth, &predicted, units, RESAMPLES, BOOTSTRAP_SEED)?,
        probabilities,
        predicted,
    })
}

/// The reliability diagram of the model's scores (and the baseline's), as
/// SVG.
fn reliability_diagram(report: &Report) -> String {
    let curve = |scored: &Scored| -> Vec<Bin> {
        scored.calibration.bins.iter().map(|b| (b.mean_probability, b.fraction_positive, b.count)).collect()
    };
    let model = curve(&report.scored);
    let baseline = report.comparison.as_ref().map(|c| curve(&c.baseline));
    let mut curves: Vec<Curve<'_>> = vec![("model", &model)];
    if let Some(baseline) = &baseline {
        curves.push(("baseline", baseline));
    }
    clause_review::report::reliability_svg(&curves)
}

fn compare(names: &[String], examples: &[Example], truth: &[Vec<bool>], old: Scored, new: &Scored) -> Comparison {
    let deltas = names
        .iter()
        .enumerate()
        .map(|(j, label)| Delta {
            label: label.clone(),
            f1_baseline: old.metrics.labels[j].f1,
            f1: new.metrics.labels[j].f1,
            delta: new.metrics.labels[j].f1 - old.metrics.labels[j].f1,
        })
        .collect();
    let mut flipped = Vec::new();
    for (i, example) in examples.iter().enumerate() {
        for (j, label) in names.iter().enumerate() {
            if old.predicted[i][j] != new.predicted[i][j] {
                flipped.push(Flip {
                    id: example.id.clone(),
                    label: label.clone(),
                    baseline: old.predicted[i][j],
                    model: new.predicted[i][j],
                    truth: truth[i][j],
                    baseline_probability: old.probabilities[i][j],
                    probability: new.probabilities[i][j],
                    text: example.text.clone(),
                });
            }
        }
    }
    Comparison { baseline: old, deltas, flipped }
}

fn optional(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.3}"))
}

fn write_text(report: &Report, flips_shown: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let scored = &report.scored;
    let split = report.split.as_ref().map(|s| format!(" ({s} split)")).unwrap_or_default();
    writeln!(out, "model {} on {}{split}: {} examples", scored.model, report.data, report.examples)?;
    let comparison = report.comparison.as_ref();
    let extra = if comparison.is_some() { format!("  {:>7} {:>7}", "F1 base", "ΔF1") } else { String::new() };
    writeln!(
        out,
        "\n{:<16} {:>7} {:>9} {:>6} {:>6} {:>7} {:>6} {:>6}{extra}",
        "label", "support", "precision", "recall", "F1", "ROC-AUC", "AP", "ECE"
    )?;
    for (j, label) in scored.metrics.labels.iter().enumerate() {
        let ranking = &scored.ranking[j];
        let extra = comparison
            .map(|c| format!("  {:>7.3} {:>+7.3}", c.deltas[j].f1_baseline, c.deltas[j].delta))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<16} {:>7} {:>9.3} {:>6.3} {:>6.3} {:>7} {:>6} {:>6.3}{extra}",
            label.label,
            label.support,
            label.precision,
            label.recall,
            label.f1,
            optional(ranking.roc_auc),
            optional(ranking.average_precision),
            scored.label_calibration_error[j]
        )?;
    }
    let none = &scored.metrics.none;
    writeln!(
        out,
        "{:<16} {:>7} {:>9.3} {:>6.3} {:>6.3}",
        "(none)", none.support, none.precision, none.recall, none.f1
    )?;
    let intervals = &scored.intervals;
    writeln!(out)?;
    for (name, value, interval, base) in [
        ("micro-F1", scored.metrics.micro_f1, &intervals.micro_f1, comparison.map(|c| c.baseline.metrics.micro_f1)),
        ("macro-F1", scored.metrics.macro_f1, &intervals.macro_f1, comparison.map(|c| c.baseline.metrics.macro_f1)),
        (
            "LexGLUE macro-F1",
            scored.metrics.lexglue_macro_f1,
            &intervals.lexglue_macro_f1,
            comparison.map(|c| c.baseline.metrics.lexglue_macro_f1),
        ),
    ] {
        let base = base.map(|b| format!("  baseline {b:.3} ({:+.3})", value - b)).unwrap_or_default();
        writeln!(out, "{name:<17} {value:.3}  95% CI [{:.3}, {:.3}]{base}", interval.low, interval.high)?;
    }
    writeln!(
        out,
        "{:<17} {:.3}  ({} bins; bootstrap: {} resamples of {} {}, seed {})",
        "calibration error",
        scored.calibration.expected_calibration_error,
        scored.calibration.bins.len(),
        intervals.resamples,
        intervals.units,
        if intervals.units == report.examples { "examples" } else { "documents" },
        intervals.seed
    )?;
    writeln!(out, "\nscore band    labels  mean score  share true")?;
    for band in &scored.bands {
        writeln!(
            out,
            "{:.2}–{:<7.2} {:>7} {:>11.3} {:>11.3}",
            band.low, band.high, band.count, band.mean_score, band.share_true
        )?;
    }
    if let Some(comparison) = comparison {
        write_flips(comparison, flips_shown, out)?;
    }
    Ok(())
}

/// The decisions that flipped against the baseline model, at most
/// `flips_shown` of them.
fn write_flips(comparison: &Comparison, flips_shown: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    let fixed = comparison.flipped.iter().filter(|f| f.model == f.truth).count();
    writeln!(
        out,
        "\n{} decisions flipped against {}: {fixed} now right, {} now wrong",
        comparison.flipped.len(),
        comparison.baseline.model,
        comparison.flipped.len() - fixed
    )?;
    for flip in comparison.flipped.iter().take(flips_shown) {
        let verdict = if flip.model == flip.truth { "fixed" } else { "broken" };
        let sign = |b: bool| if b { '+' } else { '-' };
        writeln!(
            out,
            "  {:<6} {}{} {:.2}→{:.2}  {}  {}",
            verdict,
            sign(flip.model),
            flip.label,
            flip.baseline_probability,
            flip.probability,
            flip.id,
            crate::output::truncate(&flip.text, 60)
        )?;
    }
    if comparison.flipped.len() > flips_shown {
        writeln!(out, "  … {} more (--flips N, or --json for all)", comparison.flipped.len() - flips_shown)?;
    }
    Ok(())
}
