//! `clause dataset build` and `clause dataset stats`.

use std::io::Write;

use clause_data::annotations::{Correction, apply_corrections};
use clause_data::build::{BuildOptions, build as build_dataset, read_manifest, read_split};
use clause_data::hash::text_hash;
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_data::stats::compute_stats;
use clause_data::table::{TableColumns, read_table};

use crate::cli::{AnnotateArgs, BuildArgs, StatsArgs};
use crate::output::write_file_atomically;

pub fn build(args: &BuildArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let recipe = LoadedRecipe::load(&args.recipe)?;
    let options = BuildOptions { data_root: args.data_root.data_root.clone() };
    let outcome = build_dataset(&recipe, &options)?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&outcome.stats)?)?;
        return Ok(());
    }
    writeln!(out, "built {} into {}", outcome.manifest.dataset, outcome.build_dir.display())?;
    for (split, output) in &outcome.manifest.outputs {
        writeln!(out, "  {:<16} {:>6} rows  sha256 {}", output.path, output.rows, output.sha256)?;
        let documents = &outcome.manifest.documents[split];
        if documents.len() <= 10 {
            writeln!(out, "  {:<16} documents: {}", "", documents.join(", "))?;
        }
    }
    writeln!(out)?;
    write!(out, "{}", outcome.stats.render())?;
    Ok(())
}

pub fn stats(args: &StatsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let recipe = LoadedRecipe::load(&args.recipe)?;
    let manifest = read_manifest(&recipe)?;
    let mut rows = Vec::new();
    for split in Split::ALL {
        for example in read_split(&recipe, split)? {
            rows.push((split, example));
        }
    }
    let mut stats = compute_stats(&manifest.labels, rows.iter().map(|(s, e)| (*s, e)), manifest.leakage.clone());
    stats.rationales = manifest.rationale_coverage.map(|r| r.coverage);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        write!(out, "{}", stats.render())?;
    }
    Ok(())
}

pub fn annotate(args: &AnnotateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let recipe = LoadedRecipe::load(&args.recipe)?;
    if recipe.recipe.annotations.is_empty() {
        anyhow::bail!(
            "{}: the recipe has no annotation files (its labels come from its sources); nothing to merge into",
            args.recipe.display()
        );
    }
    let known = recipe.recipe.label_names();
    let columns = TableColumns { text: "text", labels: "labels", delimiter: ";", id: Some("id"), document: None };
    let rows = read_table(&args.corrections, &columns, &known)?;
    if rows.is_empty() {
        anyhow::bail!("{}: no corrections in this file", args.corrections.display());
    }
    let corrections: Vec<Correction> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| Correction {
            id: row.id.clone(),
            text_hash: text_hash(&row.text),
            labels: row.labels.clone(),
            source: args.corrections.clone(),
            line: format!("row {}", index + 1),
        })
        .collect();
    let mut files = Vec::new();
    for name in &recipe.recipe.annotations {
        let path = recipe.dir.join(name);
        files.push((path.clone(), clause_data::text::read_utf8(&path)?));
    }
    let applied = apply_corrections(&files, &corrections, &known)?;
    for change in &applied.changes {
        let show = |labels: &[String]| if labels.is_empty() { "-".to_string() } else { labels.join(",") };
        writeln!(
            out,
            "{}  {} -> {}  ({}:{})",
            change.id,
            show(&change.old),
            show(&change.new),
            change.file.display(),
            change.line
        )?;
    }
    let verb = if args.dry_run { "would change" } else { "changed" };
    writeln!(
        out,
        "{verb} {} annotations in {} files; {} corrections matched the labels already there",
        applied.changes.len(),
        applied.files.len(),
        applied.unchanged
    )?;
    if !args.dry_run {
        for (path, text) in &applied.files {
            write_file_atomically(path, |file| Ok(file.write_all(text.as_bytes())?))?;
        }
        if !applied.changes.is_empty() {
            writeln!(out, "rebuild with `clause dataset build {}` (training does it itself)", args.recipe.display())?;
        }
    }
    Ok(())
}
