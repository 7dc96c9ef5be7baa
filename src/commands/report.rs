//! `clause report`: one page of a classified draft.

use std::io::Write;

use anyhow::bail;
use clause_eval::decision::flagged;
use clause_infer::classifier::BatchPlan;
use clause_infer::input::Passage;

use crate::cli::{ReportArgs, ReportFormat};
use crate::commands::classify::EXPLAINED_SPANS;
use crate::commands::common::{load_model, predict_with_progress};
use crate::input::{Fields, Item, read_inputs};
use crate::output::{article_label, write_file_atomically};
use clause_review::report::{Explanation, Report, ReportLabel, ReportProvision, render_html, render_markdown};

pub fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if let Some(t) = args.threshold
        && !(0.0..=1.0).contains(&t)
    {
        bail!("--threshold {t}: expected a probability between 0 and 1");
    }
    let model = load_model(&args.model, &args.device)?;
    // A model trained on sentences reads the draft's sentences, and the
    // report lists them.
    let inputs = read_inputs(std::slice::from_ref(&args.draft), Fields { text: "text", title: None }, model.unit())?;
    if inputs.items.iter().any(|i| i.range.is_none()) {
        bail!("{}: report reads a draft (.md, .txt, .docx, .html, .pdf), not a table", args.draft.display());
    }
    let passages: Vec<Passage<'_>> = inputs.items.iter().map(Item::passage).collect();
    let scores = predict_with_progress(&model, &passages, BatchPlan::default())?;
    let thresholds = match args.threshold {
        Some(t) => vec![t; model.labels().len()],
        None => model.thresholds(),
    };
    let labels: Vec<Vec<usize>> = scores.iter().map(|s| flagged(s, &thresholds)).collect();
    let explanations = if args.no_explain {
        vec![Vec::new(); passages.len()]
    } else {
        model.explain(&passages, &scores, &labels, EXPLAINED_SPANS)?
    };
    let report = Report {
        title: args.draft.file_name().map_or_else(|| args.draft.display().to_string(), |n| n.to_string_lossy().into()),
        model: args.model.display().to_string(),
        generated: format!("clause {}", env!("CARGO_PKG_VERSION")),
        labels: model
            .labels()
            .iter()
            .zip(&thresholds)
            .map(|(l, &threshold)| ReportLabel { name: l.name.clone(), description: l.description.clone(), threshold })
            .collect(),
        provisions: inputs
            .items
            .iter()
            .zip(scores)
            .zip(labels)
            .zip(explanations)
            .map(|(((item, scores), labels), explained)| ReportProvision {
                id: item.id.clone(),
                heading: heading(item),
                text: item.text.clone(),
                scores,
                labels,
                explanations: explained
                    .into_iter()
                    .map(|e| Explanation {
                        label: e.label,
                        spans: e.spans.into_iter().map(|s| (s.text, s.drop)).collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    let page = match args.format {
        ReportFormat::Html => render_html(&report),
        ReportFormat::Markdown => render_markdown(&report),
    };
    write_file_atomically(&args.output, |file| Ok(file.write_all(page.as_bytes())?))?;
    let flagged = report.provisions.iter().filter(|p| !p.labels.is_empty()).count();
    writeln!(
        out,
        "wrote {}: {} provisions, {flagged} with at least one label",
        args.output.display(),
        report.provisions.len()
    )?;
    Ok(())
}

/// `Art. 27.1 – Preservation of stored data`, `Art. 24`, `Preamble`; for a
/// Word, HTML or PDF draft, then where it is in the original (`(¶ 12)`, `(p. 3)`).
fn heading(item: &crate::input::Item) -> String {
    let place = article_label(item.article.as_deref(), item.paragraph.as_deref(), &item.id);
    let mut chars = place.chars();
    let place: String = chars.next().map_or(String::new(), |c| c.to_uppercase().chain(chars).collect());
    let heading = match &item.title {
        Some(title) => format!("{place} – {title}"),
        None => place,
    };
    // Where to find it in a Word, HTML or PDF original.
    match &item.source {
        Some(source) => format!("{heading} ({source})"),
        None => heading,
    }
}
