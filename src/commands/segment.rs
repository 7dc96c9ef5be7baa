//! `clause segment`.

use std::io::Write;

use anyhow::{Context, bail};
use clause_data::annotations::format_annotation;
use clause_data::hash::text_hash;
use clause_data::segment::{Provision, document_name_from_path, segment};

use crate::cli::{SegmentArgs, SegmentFormat};
use crate::input::Draft;

/// Characters of text shown per provision in the table.
const TABLE_TEXT_CHARS: usize = 48;

pub fn run(args: &SegmentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.document.is_some() && args.files.len() > 1 {
        bail!("--document names one document; it cannot be used with {} files", args.files.len());
    }
    for path in &args.files {
        let draft = Draft::read(path)?;
        let document = args.document.clone().unwrap_or_else(|| document_name_from_path(path));
        let provisions = segment(&document, draft.text());
        if provisions.is_empty() {
            tracing::warn!(file = %path.display(), "no provisions found");
        }
        match args.format {
            SegmentFormat::Jsonl => {
                for provision in &provisions {
                    let mut json = serde_json::to_value(provision).context("serialising a provision")?;
                    if let (Some(source), Some(fields)) = (draft.source_at(provision.start), json.as_object_mut()) {
                        fields.insert("source".into(), source.into());
                    }
                    writeln!(out, "{json}")?;
                }
            }
            SegmentFormat::Table => write_table(out, &provisions, &draft)?,
            SegmentFormat::Annotations => {
                for provision in &provisions {
                    let hash = text_hash(&provision.text);
                    writeln!(out, "{}", format_annotation(&provision.id, &hash, &[], &provision.text))?;
                }
            }
        }
    }
    Ok(())
}

/// One line per provision: its id, where it is (the line of a text draft;
/// for a Word, HTML or PDF file, where in the file, since the line of the
/// text read from it means nothing to a reader), title and text.
fn write_table(out: &mut dyn Write, provisions: &[Provision], draft: &Draft) -> anyhow::Result<()> {
    let id_width = provisions.iter().map(|p| p.id.chars().count()).max().unwrap_or(2).max(2);
    let (heading, places): (&str, Vec<String>) = match draft {
        Draft::Text(_) => ("LINE", provisions.iter().map(|p| p.line.to_string()).collect()),
        Draft::Read(_) => {
            ("WHERE", provisions.iter().map(|p| truncate(&draft.source_at(p.start).unwrap_or_default(), 16)).collect())
        }
    };
    // At least five wide, as the LINE column always was.
    let place_width = places.iter().map(|p| p.chars().count()).max().unwrap_or(0).max(5);
    writeln!(out, "{:<id_width$}  {heading:>place_width$}  {:<24}  TEXT", "ID", "TITLE")?;
    for (provision, place) in provisions.iter().zip(&places) {
        let title = truncate(provision.title.as_deref().unwrap_or(""), 24);
        let text = truncate(&provision.text, TABLE_TEXT_CHARS);
        writeln!(out, "{:<id_width$}  {place:>place_width$}  {:<24}  {}", provision.id, title, text)?;
    }
    Ok(())
}

/// At most `max` characters, with `…` marking a cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
