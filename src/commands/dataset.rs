//! `clause dataset build` and `clause dataset stats`.

use std::io::Write;

use clause_data::build::{BuildOptions, build as build_dataset, read_manifest, read_split};
use clause_data::recipe::LoadedRecipe;
use clause_data::split::Split;
use clause_data::stats::compute_stats;

use crate::cli::{BuildArgs, StatsArgs};

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
    let stats = compute_stats(&manifest.labels, rows.iter().map(|(s, e)| (*s, e)), manifest.leakage.clone());
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats)?)?;
    } else {
        write!(out, "{}", stats.render())?;
    }
    Ok(())
}
