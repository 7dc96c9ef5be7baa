//! `clause segment`.

use std::io::Write;

use anyhow::{Context, bail};
use clause_data::annotations::format_annotation;
use clause_data::hash::text_hash;
use clause_data::segment::{Provision, document_name_from_path, segment};

use crate::cli::{SegmentArgs, SegmentFormat};

/// Characters of text shown per provision in the table.
const TABLE_TEXT_CHARS: usize = 48;

pub fn run(args: &SegmentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.document.is_some() && args.files.len() > 1 {
        bail!("--document names one document; it cannot be used with {} files", args.files.len());
    }
    for path in &args.files {
        let draft = crate::input::read_draft_file(path)?;
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
            SegmentFormat::Table => write_table(out, &provisions)?,
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

fn write_table(out: &mut dyn Write, provisions: &[Provision]) -> anyhow::Result<()> {
    let id_width = provisions.iter().map(|p| p.id.chars().count()).max().unwrap_or(2).max(2);
    writeln!(out, "{:<id_width$}  {:>5}  {:<24}  TEXT", "ID", "LINE", "TITLE")?;
    for provision in provisions {
        let title = truncate(provision.title.as_deref().unwrap_or(""), 24);
        let text = truncate(&provision.text, TABLE_TEXT_CHARS);
        writeln!(out, "{:<id_width$}  {:>5}  {:<24}  {}", provision.id, provision.line, title, text)?;
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
