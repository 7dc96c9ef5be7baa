//! `clause train --cross-validate K`: figures that predict a new document.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, bail};
use clause_data::build::read_split;
use clause_data::example::Example;
use clause_data::folds::{fold_splits, instrument_folds, instruments, named_folds};
use clause_data::recipe::{LoadedRecipe, SplitRule};
use clause_data::split::Split;
use clause_eval::calibration::{Band, REVIEW_BANDS, apply_per_label, bands, fit_per_label};
use clause_eval::evaluation::{
    Intervals, bootstrap_intervals_by_group, calibration, expected_calibration_error_per_label,
};
use clause_eval::metrics::{Metrics, decide, evaluate, tune_thresholds};
use clause_train::cross_validate::{
    CrossValidation, FoldPlan, FoldWork, OutOfFold, PREDICTIONS_FILE, cross_validate, fold_dir,
};
use clause_train::trainer::TrainOptions;
use serde::Serialize;

use crate::cli::TrainArgs;
use crate::commands::common::{device, ensure_built};
use crate::commands::train::{Progress, check_out_dir, interrupt_flag, recipe_train_data, training_config};

/// The validation share and seed of each fold's training folds when the
/// recipe's split rule has none (its held-out rule's are used otherwise).
const DEFAULT_VALIDATION: f64 = 0.15;
const DEFAULT_SEED: u64 = 20261206;

/// Bootstrap resamples of the intervals, and their seed.
const RESAMPLES: usize = 1000;
const BOOTSTRAP_SEED: u64 = 20261129;

/// Labels with fewer positives than this are left out of the macro-F1 the
/// README reports (their F1 moves by a third with one provision).
const MACRO_MIN_SUPPORT: usize = 10;

/// Equal-width score bins of the calibration figures.
const CALIBRATION_BINS: usize = 10;

/// The fold plan file: one line per fold and example, `fold<TAB>id<TAB>split`.
const FOLDS_FILE: &str = "folds.tsv";

/// What a cross-validation reports.
#[derive(Debug, Serialize)]
struct Summary {
    dataset: String,
    folds: usize,
    /// Folds whose predictions are in the figures (fewer than `folds` in a
    /// report on a run still going).
    folds_finished: usize,
    fold_members: usize,
    examples: usize,
    instruments: usize,
    pooled: Metrics,
    /// Mean F1 over labels with at least [`MACRO_MIN_SUPPORT`] positives.
    macro_f1_supported: f64,
    supported_labels: Vec<String>,
    intervals: Intervals,
    macro_f1_supported_interval: (f64, f64),
    per_instrument: Vec<InstrumentFigures>,
    /// Per label: positives, and expected calibration error (10 bins) of
    /// the raw and of the calibrated scores.
    calibration: Vec<(String, usize, f64, f64)>,
    bands_raw: Vec<Band>,
    bands_calibrated: Vec<Band>,
    /// What calibration and thresholds fitted on out-of-fold scores would
    /// do: each fold scored with maps and thresholds fitted on the other
    /// folds' raw out-of-fold scores.
    cross_fitted: CrossFitted,
}

/// Figures of [`Summary::cross_fitted`].
#[derive(Debug, Serialize)]
struct CrossFitted {
    micro_f1: f64,
    micro_f1_interval: (f64, f64),
    macro_f1_supported: f64,
    /// Per label, in label order.
    calibration_error: Vec<f64>,
    bands: Vec<Band>,
}

#[derive(Debug, Serialize)]
struct InstrumentFigures {
    instrument: String,
    fold: usize,
    examples: usize,
    labels: usize,
    micro_f1: f64,
}

pub fn run(args: &TrainArgs, folds: usize, out: &mut dyn Write) -> anyhow::Result<()> {
    if folds < 2 {
        bail!("--cross-validate {folds}: expected at least 2 folds");
    }
    let recipe = LoadedRecipe::load(&args.dataset)?;
    let mut config = training_config(args, &recipe.dir)?;
    config.ensemble = args.fold_members.max(1);
    check_out_dir(&args.out)?;
    let base = clause_infer::hub::resolve(&args.base)?;
    let manifest = ensure_built(&recipe, args.data_root.data_root.clone())?;
    let mut all = Vec::new();
    for split in Split::ALL {
        all.extend(read_split(&recipe, split)?);
    }
    let names: Vec<String> = recipe.recipe.labels.iter().map(|l| l.name.clone()).collect();
    let (all, fold_of) = assign_folds(&recipe, all, folds)?;
    let plan = plan(&recipe, &all, &fold_of, &names, folds);
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    write_plan(&args.out.join(FOLDS_FILE), &all, &plan)?;
    if args.plan_only {
        writeln!(out, "folds written to {}", args.out.join(FOLDS_FILE).display())?;
        return Ok(());
    }
    let data = recipe_train_data(&recipe, &manifest, all, Vec::new(), Vec::new())?;
    let options = TrainOptions {
        base: base.dir,
        base_source: base.source,
        out: args.out.clone(),
        config,
        device: device(&args.device)?,
        resume: false,
        interrupt: Some(interrupt_flag()?),
    };
    eprintln!(
        "cross-validating {} over {folds} folds of whole instruments ({} examples)",
        data.dataset,
        data.train.len()
    );
    let mut progress = Progress::new();
    let work = if args.refit_calibration {
        FoldWork::Refit
    } else if args.finished_folds_only {
        FoldWork::FinishedOnly
    } else {
        FoldWork::Train { keep_models: args.keep_fold_models }
    };
    let rows = match cross_validate(&data, &plan, &options, work, &mut progress)? {
        CrossValidation::Interrupted { fold } => {
            writeln!(out, "stopped in fold {fold}; run the same command again to continue")?;
            std::process::exit(130);
        }
        CrossValidation::Finished(rows) => rows,
    };
    if rows.is_empty() {
        bail!("{}: no fold is finished yet", args.out.display());
    }
    check_rows(&args.out, &rows, names.len())?;
    let summary = summarise(&data.dataset, &names, &data.train, &rows, folds, options.config.ensemble)?;
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?).with_context(|| path.display().to_string())?;
    let svg = args.out.join("reliability.svg");
    std::fs::write(&svg, reliability_diagram(&names, &rows)?).with_context(|| svg.display().to_string())?;
    write_summary(&summary, out)?;
    writeln!(
        out,
        "\nout-of-fold predictions in {}/fold-*/, figures in {}, reliability diagram {}",
        args.out.display(),
        path.display(),
        svg.display()
    )?;
    Ok(())
}

/// Every prediction row has one score, raw score and (where its model had
/// the lexical stage) margin per label: the files are read back from disk,
/// and a row edited short would otherwise fail deep in the summary.
fn check_rows(out: &Path, rows: &[OutOfFold], labels: usize) -> anyhow::Result<()> {
    for row in rows {
        let fields = [("scores", row.scores.len()), ("raw_scores", row.raw_scores.len())];
        let margins = [("lexical_margins", row.lexical_margins.len())];
        let margins = margins.iter().filter(|(_, n)| *n > 0);
        if let Some((field, n)) = fields.iter().chain(margins).find(|(_, n)| *n != labels) {
            bail!(
                "{}: example {} has {n} `{field}`, expected {labels} (one per label)",
                fold_dir(out, row.fold).join(PREDICTIONS_FILE).display(),
                row.id
            );
        }
    }
    Ok(())
}

/// The examples cross-validated and each one's fold: the recipe's own folds
/// where it names them (examples of other documents left out), else
/// `folds` folds of whole instruments.
fn assign_folds(recipe: &LoadedRecipe, all: Vec<Example>, folds: usize) -> anyhow::Result<(Vec<Example>, Vec<usize>)> {
    let Some(spec) = &recipe.recipe.cross_validation else {
        let fold_of = instrument_folds(&all, folds);
        let used: std::collections::BTreeSet<usize> = fold_of.iter().copied().collect();
        if used.len() < folds {
            bail!("{}: {} instruments cannot fill {folds} folds", recipe.path.display(), used.len());
        }
        return Ok((all, fold_of));
    };
    if spec.folds.len() != folds {
        bail!("--cross-validate {folds}: {} names {} folds", recipe.path.display(), spec.folds.len());
    }
    let named =
        named_folds(&all, &spec.folds).map_err(|message| anyhow::anyhow!("{}: {message}", recipe.path.display()))?;
    Ok(all.into_iter().zip(named).filter_map(|(example, fold)| fold.map(|k| (example, k))).unzip())
}

/// Each fold's splits, its validation share drawn as the recipe's held-out
/// rule draws it.
fn plan(recipe: &LoadedRecipe, all: &[Example], fold_of: &[usize], names: &[String], folds: usize) -> FoldPlan {
    let (validation, seed) = match &recipe.recipe.split {
        SplitRule::HeldOut { seed, validation, .. } => (*validation, *seed),
        SplitRule::Stratified { seed, validation, train, .. } => (validation / (train + validation), *seed),
        SplitRule::Documents { .. } => (DEFAULT_VALIDATION, DEFAULT_SEED),
    };
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let labels: Vec<Vec<usize>> =
        all.iter().map(|e| e.labels.iter().filter_map(|l| index.get(l.as_str()).copied()).collect()).collect();
    let splits = (0..folds).map(|k| fold_splits(all, fold_of, k, &labels, names.len(), validation, seed)).collect();
    FoldPlan { folds, splits }
}

/// `fold<TAB>id<TAB>split` for every fold and example: what each fold
/// trained, validated and held out, for a baseline scored on the same folds.
fn write_plan(path: &Path, all: &[Example], plan: &FoldPlan) -> anyhow::Result<()> {
    let mut text = String::from("fold\tid\tsplit\n");
    for (k, splits) in plan.splits.iter().enumerate() {
        for (example, split) in all.iter().zip(splits) {
            text.push_str(&format!("{}\t{}\t{}\n", k + 1, example.id, split.name()));
        }
    }
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

/// Whether `dir` is a cross-validation run (it holds a fold plan).
pub fn is_run(dir: &Path) -> bool {
    dir.join(FOLDS_FILE).is_file()
}

/// The ids each fold held out (its `test` rows), by fold number from 1, as
/// [`write_plan`] wrote them into `run`'s fold plan.
pub fn read_held_out(run: &Path) -> anyhow::Result<BTreeMap<usize, std::collections::BTreeSet<String>>> {
    let path = run.join(FOLDS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut lines = text.lines().enumerate();
    if lines.next().map(|(_, header)| header) != Some("fold\tid\tsplit") {
        bail!("{}:1: expected the header `fold<TAB>id<TAB>split`", path.display());
    }
    let mut held_out: BTreeMap<usize, std::collections::BTreeSet<String>> = BTreeMap::new();
    for (k, line) in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        let (fold, id, split) = match fields[..] {
            [fold, id, split] => (fold, id, split),
            _ => bail!("{}:{}: expected 3 tab-separated fields, found {}", path.display(), k + 1, fields.len()),
        };
        let fold: usize = match fold.parse() {
            Ok(n) if n >= 1 => n,
            _ => bail!("{}:{}: fold `{fold}`: expected a fold number from 1", path.display(), k + 1),
        };
        let ids = held_out.entry(fold).or_default();
        match split {
            "test" => {
                ids.insert(id.to_string());
            }
            "train" | "validation" => {}
            other => bail!("{}:{}: split `{other}`: expected train, validation or test", path.display(), k + 1),
        }
    }
    Ok(held_out)
}

fn summarise(
    dataset: &str,
    names: &[String],
    all: &[Example],
    rows: &[OutOfFold],
    folds: usize,
    fold_members: usize,
) -> anyhow::Result<Summary> {
    let instrument_of: HashMap<&str, String> =
        all.iter().zip(instruments(all)).map(|(e, name)| (e.id.as_str(), name)).collect();
    let matrix = |pick: &dyn Fn(&OutOfFold, &str) -> bool| -> Vec<Vec<bool>> {
        rows.iter().map(|r| names.iter().map(|n| pick(r, n)).collect()).collect()
    };
    let truth = matrix(&|r, n| r.labels.iter().any(|l| l == n));
    let predicted = matrix(&|r, n| r.flagged.iter().any(|l| l == n));
    let pooled = evaluate(names, &truth, &predicted)?;
    let mut numbers: HashMap<&str, usize> = HashMap::new();
    let units: Vec<usize> = rows
        .iter()
        .map(|r| {
            let next = numbers.len();
            *numbers.entry(instrument_of.get(r.id.as_str()).map_or(r.document.as_str(), |s| s.as_str())).or_insert(next)
        })
        .collect();
    let intervals = bootstrap_intervals_by_group(names, &truth, &predicted, &units, RESAMPLES, BOOTSTRAP_SEED)?;
    let supported: Vec<usize> = (0..names.len()).filter(|&j| pooled.labels[j].support >= MACRO_MIN_SUPPORT).collect();
    let columns =
        |m: &[Vec<bool>]| -> Vec<Vec<bool>> { m.iter().map(|r| supported.iter().map(|&j| r[j]).collect()).collect() };
    let supported_names: Vec<String> = supported.iter().map(|&j| names[j].clone()).collect();
    let supported_intervals = bootstrap_intervals_by_group(
        &supported_names,
        &columns(&truth),
        &columns(&predicted),
        &units,
        RESAMPLES,
        BOOTSTRAP_SEED,
    )?;
    let per_instrument = per_instrument(names, rows, &instrument_of, &truth, &predicted)?;
    let raw: Vec<Vec<f32>> = rows.iter().map(|r| r.raw_scores.clone()).collect();
    let calibrated: Vec<Vec<f32>> = rows.iter().map(|r| r.scores.clone()).collect();
    let label_calibration = label_calibration(names, &pooled, &truth, &raw, &calibrated)?;
    let (fitted, fitted_predicted) = cross_fit(rows, &raw, &truth);
    let fitted_metrics = evaluate(names, &truth, &fitted_predicted)?;
    let fitted_intervals =
        bootstrap_intervals_by_group(names, &truth, &fitted_predicted, &units, RESAMPLES, BOOTSTRAP_SEED)?;
    let cross_fitted = CrossFitted {
        micro_f1: fitted_metrics.micro_f1,
        micro_f1_interval: (fitted_intervals.micro_f1.low, fitted_intervals.micro_f1.high),
        macro_f1_supported: supported.iter().map(|&j| fitted_metrics.labels[j].f1).sum::<f64>()
            / supported.len().max(1) as f64,
        calibration_error: expected_calibration_error_per_label(&fitted, &truth, CALIBRATION_BINS)?,
        bands: bands(&fitted, &truth, &REVIEW_BANDS),
    };
    Ok(Summary {
        dataset: dataset.to_string(),
        folds,
        folds_finished: rows.iter().map(|r| r.fold).collect::<std::collections::BTreeSet<_>>().len(),
        fold_members,
        examples: rows.len(),
        instruments: numbers.len(),
        macro_f1_supported: supported.iter().map(|&j| pooled.labels[j].f1).sum::<f64>() / supported.len().max(1) as f64,
        supported_labels: supported_names,
        pooled,
        intervals,
        macro_f1_supported_interval: (supported_intervals.macro_f1.low, supported_intervals.macro_f1.high),
        per_instrument,
        calibration: label_calibration,
        bands_raw: bands(&raw, &truth, &REVIEW_BANDS),
        bands_calibrated: bands(&calibrated, &truth, &REVIEW_BANDS),
        cross_fitted,
    })
}

/// Each fold's raw scores calibrated, and decided, with Platt maps and
/// thresholds fitted on the other folds' raw out-of-fold scores (and
/// lexical margins, where the folds' models had the stage): what
/// fitting them on unseen instruments, rather than on a validation share
/// of the training instruments, would give. With one fold there is nothing
/// to fit on, and its scores and decisions stay raw at 0.5.
fn cross_fit(rows: &[OutOfFold], raw: &[Vec<f32>], truth: &[Vec<bool>]) -> (Vec<Vec<f32>>, Vec<Vec<bool>>) {
    let mut scores = raw.to_vec();
    let mut decided = decide(raw, &vec![0.5; truth.first().map_or(0, Vec::len)]);
    let folds: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.fold).collect();
    if folds.len() < 2 {
        return (scores, decided);
    }
    // Each fold's stage margins, where its model had one; a run whose
    // models had none has none.
    let with_margins = rows.iter().all(|r| !r.lexical_margins.is_empty());
    let margins: Vec<Vec<f32>> =
        if with_margins { rows.iter().map(|r| r.lexical_margins.clone()).collect() } else { Vec::new() };
    for &fold in &folds {
        let (inside, outside): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| rows[i].fold == fold);
        let pick = |m: &[Vec<f32>], at: &[usize]| -> Vec<Vec<f32>> { at.iter().map(|&i| m[i].clone()).collect() };
        let outside_truth: Vec<Vec<bool>> = outside.iter().map(|&i| truth[i].clone()).collect();
        let pick_margins = |at: &[usize]| if margins.is_empty() { Vec::new() } else { pick(&margins, at) };
        let (outside_margins, inside_margins) = (pick_margins(&outside), pick_margins(&inside));
        let maps = fit_per_label(&pick(raw, &outside), &outside_truth, &outside_margins);
        let mut outside_scores = pick(raw, &outside);
        apply_per_label(&mut outside_scores, &maps, &outside_margins);
        let thresholds = tune_thresholds(&outside_scores, &outside_truth, 3, 0.5);
        let mut inside_scores = pick(raw, &inside);
        apply_per_label(&mut inside_scores, &maps, &inside_margins);
        for (&i, (row, flags)) in inside.iter().zip(inside_scores.iter().zip(decide(&inside_scores, &thresholds))) {
            scores[i].clone_from(row);
            decided[i] = flags;
        }
    }
    (scores, decided)
}

/// Micro-F1 of each instrument's out-of-fold predictions.
fn per_instrument(
    names: &[String],
    rows: &[OutOfFold],
    instrument_of: &HashMap<&str, String>,
    truth: &[Vec<bool>],
    predicted: &[Vec<bool>],
) -> anyhow::Result<Vec<InstrumentFigures>> {
    let mut per_instrument: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let name = instrument_of.get(row.id.as_str()).cloned().unwrap_or_else(|| row.document.clone());
        per_instrument.entry(name).or_insert((row.fold, Vec::new())).1.push(i);
    }
    per_instrument
        .into_iter()
        .map(|(instrument, (fold, members))| {
            let pick = |m: &[Vec<bool>]| -> Vec<Vec<bool>> { members.iter().map(|&i| m[i].clone()).collect() };
            let figures = evaluate(names, &pick(truth), &pick(predicted))?;
            Ok(InstrumentFigures {
                instrument,
                fold,
                examples: members.len(),
                labels: figures.labels.iter().map(|l| l.support).sum(),
                micro_f1: figures.micro_f1,
            })
        })
        .collect()
}

/// Per label: positives, and the expected calibration error of its raw and
/// calibrated scores alone.
fn label_calibration(
    names: &[String],
    pooled: &Metrics,
    truth: &[Vec<bool>],
    raw: &[Vec<f32>],
    calibrated: &[Vec<f32>],
) -> anyhow::Result<Vec<(String, usize, f64, f64)>> {
    let (raw, calibrated) = (
        expected_calibration_error_per_label(raw, truth, CALIBRATION_BINS)?,
        expected_calibration_error_per_label(calibrated, truth, CALIBRATION_BINS)?,
    );
    Ok((0..names.len()).map(|j| (names[j].clone(), pooled.labels[j].support, raw[j], calibrated[j])).collect())
}

fn write_summary(s: &Summary, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{}: {} examples of {} instruments, {} of {} folds ({} run{} per fold), out-of-fold\n",
        s.dataset,
        s.examples,
        s.instruments,
        s.folds_finished,
        s.folds,
        s.fold_members,
        if s.fold_members == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>6} {:>6} {:>9} {:>9}",
        "label", "support", "precision", "recall", "F1", "ECE raw", "ECE cal"
    )?;
    for (label, (_, _, raw, cal)) in s.pooled.labels.iter().zip(&s.calibration) {
        writeln!(
            out,
            "{:<16} {:>7} {:>9.3} {:>6.3} {:>6.3} {raw:>9.3} {cal:>9.3}",
            label.label, label.support, label.precision, label.recall, label.f1
        )?;
    }
    let i = &s.intervals;
    writeln!(
        out,
        "\nmicro-F1          {:.3}  95% CI [{:.3}, {:.3}]",
        s.pooled.micro_f1, i.micro_f1.low, i.micro_f1.high
    )?;
    writeln!(
        out,
        "macro-F1 (≥{MACRO_MIN_SUPPORT})    {:.3}  95% CI [{:.3}, {:.3}]  ({})",
        s.macro_f1_supported,
        s.macro_f1_supported_interval.0,
        s.macro_f1_supported_interval.1,
        s.supported_labels.join(", ")
    )?;
    writeln!(
        out,
        "macro-F1 (all)    {:.3}  95% CI [{:.3}, {:.3}]",
        s.pooled.macro_f1, i.macro_f1.low, i.macro_f1.high
    )?;
    writeln!(
        out,
        "LexGLUE macro-F1  {:.3}  95% CI [{:.3}, {:.3}]",
        s.pooled.lexglue_macro_f1, i.lexglue_macro_f1.low, i.lexglue_macro_f1.high
    )?;
    writeln!(out, "(intervals: {} resamples of the {} instruments)", i.resamples, i.units)?;
    writeln!(
        out,
        "\n{:<12} {:>7} {:>10} {:>8} {:>10} {:>8}",
        "score band", "raw n", "raw mean", "raw true", "cal n", "cal mean"
    )?;
    for (raw, cal) in s.bands_raw.iter().zip(&s.bands_calibrated) {
        writeln!(
            out,
            "{:.2}–{:<7.2} {:>7} {:>10.3} {:>8.3} {:>10} {:>8.3}  true {:.3}",
            raw.low, raw.high, raw.count, raw.mean_score, raw.share_true, cal.count, cal.mean_score, cal.share_true
        )?;
    }
    let f = &s.cross_fitted;
    if s.folds_finished < 2 {
        writeln!(out, "\n(calibration and thresholds fitted on other folds need two finished folds)")?;
    } else {
        write_cross_fitted(s, f, out)?;
    }
    writeln!(out, "\n{:<44} {:>4} {:>8} {:>6} {:>8}", "instrument", "fold", "examples", "labels", "micro-F1")?;
    for f in &s.per_instrument {
        writeln!(out, "{:<44} {:>4} {:>8} {:>6} {:>8.3}", f.instrument, f.fold, f.examples, f.labels, f.micro_f1)?;
    }
    Ok(())
}

/// What calibration and thresholds fitted on the other folds would give.
fn write_cross_fitted(s: &Summary, f: &CrossFitted, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "\nwith calibration and thresholds fitted on the other folds' out-of-fold scores:\n  micro-F1 {:.3}  95% CI [{:.3}, {:.3}]; macro-F1 (≥{MACRO_MIN_SUPPORT}) {:.3}; ECE {}",
        f.micro_f1,
        f.micro_f1_interval.0,
        f.micro_f1_interval.1,
        f.macro_f1_supported,
        s.calibration
            .iter()
            .zip(&f.calibration_error)
            .map(|(l, e)| format!("{} {e:.3}", l.0))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    for band in &f.bands {
        writeln!(
            out,
            "  {:.2}–{:<5.2} n {:>5}  mean {:.3}  true {:.3}",
            band.low, band.high, band.count, band.mean_score, band.share_true
        )?;
    }
    Ok(())
}

/// The reliability diagram of the out-of-fold scores, raw and calibrated,
/// pooled over labels, as a self-contained SVG.
fn reliability_diagram(names: &[String], rows: &[OutOfFold]) -> anyhow::Result<String> {
    let truth: Vec<Vec<bool>> =
        rows.iter().map(|r| names.iter().map(|n| r.labels.iter().any(|l| l == n)).collect()).collect();
    let curve = |scores: Vec<Vec<f32>>| -> anyhow::Result<Vec<clause_review::report::Bin>> {
        Ok(calibration(&scores, &truth, CALIBRATION_BINS)?
            .bins
            .iter()
            .map(|b| (b.mean_probability, b.fraction_positive, b.count))
            .collect())
    };
    let raw = curve(rows.iter().map(|r| r.raw_scores.clone()).collect())?;
    let calibrated = curve(rows.iter().map(|r| r.scores.clone()).collect())?;
    Ok(clause_review::report::reliability_svg(&[("raw scores", &raw), ("calibrated", &calibrated)]))
}
