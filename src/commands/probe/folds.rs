//! `clause eval --probe` on a cross-validation run: each fold's model probes
//! the instruments that fold held out, and the figures are pooled, so every
//! provision is read by a model that never saw its instrument.
//!
//! Each time a fold's model is probed, its figures are saved beside it
//! (`fold-<k>/probe-<kind>.json`), with what they were computed under: the
//! probe, the labels, the fold's held-out examples and, for `buried`, the
//! suite's SHA-256 and the hosts per sentence. A fold whose weights are gone
//! (removed after probing to save 90 MB a fold, or a run whose small files
//! were kept without its models, so that a cross-validation longer than one
//! sitting can be finished on another machine) is pooled from its saved
//! figures when they were computed under the same settings, and the report
//! names those folds. The probes are seeded, so a saved fold's figures are
//! the ones its model would give again.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clause_data::build::read_split;
use clause_data::example::Example;
use clause_data::hash::sha256_file;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_infer::card::write_atomically;
use serde::{Deserialize, Serialize};

use super::{BuriedReport, Readings, buried, headings, headings_report, pool_buried, print, probe_name, suite};
use super::{write_buried, write_headings};
use crate::cli::{EvalArgs, ProbeKind};
use crate::commands::common::{ensure_built, load_model};
use crate::commands::cross_validate::read_held_out;

/// Which folds of a cross-validation run a report pools.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Folds {
    /// Fold numbers (from 1) whose models read their held-out provisions.
    probed: Vec<usize>,
    /// Of those, the folds pooled from figures saved when their models were
    /// probed earlier (their weights are gone now).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    saved: Vec<usize>,
    /// Folds in the run's plan.
    planned: usize,
}

impl Folds {
    /// "5 folds", or "folds 1, 2 of 5" when some are missing, and which were
    /// read from saved figures.
    pub(super) fn describe(&self) -> String {
        let list = |folds: &[usize]| folds.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        let mut text = if self.probed.len() == self.planned {
            format!("{} folds", self.planned)
        } else if self.probed.len() == 1 {
            format!("fold {} of {}", list(&self.probed), self.planned)
        } else {
            format!("folds {} of {}", list(&self.probed), self.planned)
        };
        if !self.saved.is_empty() {
            text.push_str(&format!(
                ", of which {} from figures saved when their models were probed",
                list(&self.saved)
            ));
        }
        text
    }
}

/// What a fold's figures were computed under: saved figures are pooled only
/// under the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Settings {
    probe: String,
    labels: Vec<String>,
    /// SHA-256 of the buried-clause suite (`buried` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suite_sha256: Option<String>,
    /// Hosts asked for per sentence (`buried` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hosts_per_sentence: Option<usize>,
}

/// One fold's probe figures, as they are saved.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum FoldFigures {
    /// Decisions on each held-out example, as it is and as the probe left it.
    Headings(Readings),
    /// The buried-clause figures; none when the fold held out no label-less
    /// provision to bury a sentence in.
    Buried(Option<BuriedReport>),
}

/// The file a fold's figures are saved in.
#[derive(Debug, Serialize, Deserialize)]
struct SavedFold {
    #[serde(flatten)]
    settings: Settings,
    /// The fold's held-out examples, in the order the figures list them.
    examples: Vec<String>,
    figures: FoldFigures,
}

fn saved_path(dir: &Path, settings: &Settings) -> PathBuf {
    dir.join(format!("probe-{}.json", settings.probe))
}

/// Run the probe `kind` on a cross-validation run (`args.model`): each
/// fold's model on the instruments that fold held out (or its saved
/// figures), figures pooled over the folds. Folds with neither (a run still
/// going) are left out, and the report names the folds it pools.
pub fn run_folds(args: &EvalArgs, kind: ProbeKind, out: &mut dyn Write) -> anyhow::Result<()> {
    let run_dir = &args.model;
    if !args.data.is_dir() {
        bail!(
            "--model {} is a cross-validation run: probe it on the recipe directory it was trained on, not a table",
            run_dir.display()
        );
    }
    let recipe = LoadedRecipe::load(&args.data)?;
    ensure_built(&recipe, args.data_root.data_root.clone())?;
    let mut all = Vec::new();
    for split in Split::ALL {
        all.extend(read_split(&recipe, split)?);
    }
    let by_id: HashMap<&str, &Example> = all.iter().map(|e| (e.id.as_str(), e)).collect();
    let names: Vec<String> = recipe.recipe.labels.iter().map(|l| l.name.clone()).collect();
    let suite = match kind {
        ProbeKind::Buried => Some(suite(args, &names)?),
        _ => None,
    };
    let settings = Settings {
        probe: probe_name(kind).to_string(),
        labels: names.clone(),
        suite_sha256: suite.as_ref().map(|(path, _)| sha256_file(path)).transpose()?,
        hosts_per_sentence: suite.as_ref().map(|_| args.probe_hosts),
    };
    let (mut pooled, mut buried_folds) = (Vec::new(), Vec::new());
    let mut readings = Readings { normal: Vec::new(), probed: Vec::new() };
    let held_out = read_held_out(run_dir)?;
    let mut folds = Folds { probed: Vec::new(), saved: Vec::new(), planned: held_out.len() };
    for (&fold, ids) in &held_out {
        let dir = clause_train::cross_validate::fold_dir(run_dir, fold);
        let examples = held_out_examples(args, fold, ids, &by_id)?;
        let figures = if dir.join("model.safetensors").is_file() {
            let figures = probe_fold(args, kind, &dir, &names, &examples, suite.as_ref().map(|(_, s)| &s[..]))?;
            save(&dir, &settings, &examples, figures)?
        } else {
            match read_saved(&dir, &settings, &examples)? {
                Some(figures) => {
                    folds.saved.push(fold);
                    figures
                }
                None => continue,
            }
        };
        folds.probed.push(fold);
        match figures {
            FoldFigures::Headings(r) => {
                readings.normal.extend(r.normal);
                readings.probed.extend(r.probed);
            }
            FoldFigures::Buried(Some(report)) => buried_folds.push((fold, report)),
            FoldFigures::Buried(None) => {}
        }
        pooled.extend(examples);
    }
    if folds.probed.is_empty() {
        bail!(
            "{}: no fold has a model or saved figures of this probe; probing needs a run of `clause train \
             --cross-validate K --keep-fold-models` with at least one fold finished",
            run_dir.display()
        );
    }
    if let Some((path, _)) = &suite {
        if buried_folds.is_empty() {
            bail!("{}: no fold held out a label-less provision to bury sentences in", run_dir.display());
        }
        let report = BuriedReport { folds: Some(folds), ..pool_buried(buried_folds) };
        return print(args, &report, |r, out| write_buried(r, path, out), out);
    }
    let truth: Vec<Vec<bool>> = pooled.iter().map(|e| names.iter().map(|n| e.labels.contains(n)).collect()).collect();
    let report = headings_report(kind, &names, &pooled, &truth, &readings, Some(folds))?;
    print(args, &report, |r, out| write_headings(r, out), out)
}

/// Probe fold `dir`'s model on the examples it held out.
fn probe_fold(
    args: &EvalArgs,
    kind: ProbeKind,
    dir: &Path,
    names: &[String],
    examples: &[Example],
    sentences: Option<&[clause_data::probes::ProbeSentence]>,
) -> anyhow::Result<FoldFigures> {
    let model = load_model(dir, &args.device)?;
    let model_names: Vec<&str> = model.labels().iter().map(|l| l.name.as_str()).collect();
    if model_names != names {
        bail!("{}: the model's labels {model_names:?} are not the recipe's {names:?}", dir.display());
    }
    tracing::info!(model = %dir.display(), examples = examples.len(), "probing");
    Ok(match sentences {
        // A fold may hold out only labelled provisions: nothing to bury a
        // sentence in there.
        Some(_) if examples.iter().all(|e| !e.labels.is_empty()) => {
            tracing::warn!(model = %dir.display(), "the fold held out no label-less provision; no sentence is buried in it");
            FoldFigures::Buried(None)
        }
        Some(sentences) => FoldFigures::Buried(Some(buried(&model, names, examples, sentences, args.probe_hosts)?)),
        None => FoldFigures::Headings(headings(kind, &model, examples)?),
    })
}

/// Save a fold's figures beside its model, and hand them back.
fn save(dir: &Path, settings: &Settings, examples: &[Example], figures: FoldFigures) -> anyhow::Result<FoldFigures> {
    let saved =
        SavedFold { settings: settings.clone(), examples: examples.iter().map(|e| e.id.clone()).collect(), figures };
    let path = saved_path(dir, settings);
    let json = serde_json::to_string(&saved).context("serialising a fold's probe figures")?;
    write_atomically(&path, json.as_bytes())?;
    Ok(saved.figures)
}

/// A fold's saved figures, when there are some computed under `settings`
/// on the same held-out examples; none (with a warning saying why) when
/// there are not.
fn read_saved(dir: &Path, settings: &Settings, examples: &[Example]) -> anyhow::Result<Option<FoldFigures>> {
    let path = saved_path(dir, settings);
    if !path.is_file() {
        tracing::warn!(fold = %dir.display(), "no model of this fold (not finished, or not kept) and no saved figures; left out");
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let saved: SavedFold =
        serde_json::from_str(&text).with_context(|| format!("{}: not a fold's saved probe figures", path.display()))?;
    if saved.settings != *settings {
        tracing::warn!(
            path = %path.display(),
            saved = ?saved.settings,
            now = ?settings,
            "the fold's model is gone and its saved figures were computed under other settings; left out"
        );
        return Ok(None);
    }
    if !saved.examples.iter().eq(examples.iter().map(|e| &e.id)) {
        bail!("{}: the saved figures are for other held-out examples than folds.tsv lists", path.display());
    }
    if let FoldFigures::Headings(r) = &saved.figures {
        let fits = |rows: &[Vec<bool>]| {
            rows.len() == examples.len() && rows.iter().all(|row| row.len() == settings.labels.len())
        };
        if !fits(&r.normal) || !fits(&r.probed) {
            bail!(
                "{}: expected one row of {} decisions per held-out example ({}) in `normal` and `probed`",
                path.display(),
                settings.labels.len(),
                examples.len()
            );
        }
    }
    Ok(Some(saved.figures))
}

/// The examples a fold held out, by id, from the recipe's examples.
fn held_out_examples(
    args: &EvalArgs,
    fold: usize,
    ids: &BTreeSet<String>,
    by_id: &HashMap<&str, &Example>,
) -> anyhow::Result<Vec<Example>> {
    ids.iter()
        .map(|id| {
            by_id.get(id.as_str()).map(|e| (*e).clone()).with_context(|| {
                format!(
                    "{}: fold {fold} held out `{id}`, which {} does not have (was the recipe changed since?)",
                    args.model.join("folds.tsv").display(),
                    args.data.display()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_names_missing_folds_and_saved_ones() {
        let all = Folds { probed: vec![1, 2, 3], saved: Vec::new(), planned: 3 };
        assert_eq!(all.describe(), "3 folds");
        let some = Folds { probed: vec![1, 3], saved: vec![3], planned: 3 };
        assert_eq!(some.describe(), "folds 1, 3 of 3, of which 3 from figures saved when their models were probed");
        let one = Folds { probed: vec![2], saved: Vec::new(), planned: 5 };
        assert_eq!(one.describe(), "fold 2 of 5");
    }

    fn example(id: &str) -> Example {
        Example {
            id: id.into(),
            document: "d".into(),
            text: "Text.".into(),
            labels: Vec::new(),
            article: None,
            paragraph: None,
            title: None,
            chapter: None,
            origin: String::new(),
        }
    }

    #[test]
    fn saved_figures_are_read_only_under_their_settings_and_when_they_fit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            probe: "headings-removed".into(),
            labels: vec!["a".into(), "b".into()],
            suite_sha256: None,
            hosts_per_sentence: None,
        };
        let examples = [example("x"), example("y")];
        assert!(read_saved(dir.path(), &settings, &examples).expect("nothing saved").is_none());
        let readings = Readings { normal: vec![vec![true, false]; 2], probed: vec![vec![false, false]; 2] };
        save(dir.path(), &settings, &examples, FoldFigures::Headings(readings)).expect("save");
        assert!(matches!(read_saved(dir.path(), &settings, &examples), Ok(Some(FoldFigures::Headings(_)))));
        let other = Settings { labels: vec!["a".into()], ..settings.clone() };
        let path = dir.path().join("probe-headings-removed.json");
        assert!(read_saved(dir.path(), &other, &examples).expect("other settings").is_none());
        let err = read_saved(dir.path(), &settings, &[example("x"), example("z")]).expect_err("other examples");
        assert!(err.to_string().contains("other held-out examples"), "{err}");
        let short = std::fs::read_to_string(&path).expect("read").replace("[[false,false],[false,false]]", "[[false]]");
        std::fs::write(&path, short).expect("write");
        let err = read_saved(dir.path(), &settings, &examples).expect_err("rows that do not fit");
        assert!(err.to_string().contains("one row of 2 decisions per held-out example (2)"), "{err}");
    }

    #[test]
    fn saved_figures_round_trip_through_json() {
        let settings = Settings {
            probe: "headings-removed".into(),
            labels: vec!["a".into(), "b".into()],
            suite_sha256: None,
            hosts_per_sentence: None,
        };
        let saved = SavedFold {
            settings: settings.clone(),
            examples: vec!["x".into()],
            figures: FoldFigures::Headings(Readings {
                normal: vec![vec![true, false]],
                probed: vec![vec![false, false]],
            }),
        };
        let back: SavedFold = serde_json::from_str(&serde_json::to_string(&saved).expect("json")).expect("parse");
        assert_eq!(back.settings, settings);
        match back.figures {
            FoldFigures::Headings(r) => assert_eq!(r.probed, [[false, false]]),
            FoldFigures::Buried(_) => panic!("read back as buried"),
        }
    }
}
