//! Writing classification results: a table for people, JSON lines, CSV and
//! Parquet for tools, always complete or not at all when written to a file.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clause_data::records::{OutColumn, OutValues, write_parquet};
use clause_infer::explain::Explanation;

use crate::cli::OutputFormat;
use crate::input::{Inputs, Item};

/// Fields every record has; carried table columns with one of these names
/// are written as `input_<name>`.
const FIXED_FIELDS: [&str; 12] = [
    "id",
    "document",
    "article",
    "paragraph",
    "title",
    "text",
    "labels",
    "scores",
    "start",
    "end",
    "line",
    "explanations",
];

/// Width of the table format.
pub const TABLE_WIDTH: usize = 100;

/// One classified item.
pub struct Classified<'a> {
    /// What was classified.
    pub item: &'a Item,
    /// Every label's probability.
    pub scores: &'a [f32],
    /// Indices of the predicted labels.
    pub labels: &'a [usize],
    /// Why each predicted label was predicted, when asked.
    pub explanations: Option<&'a [Explanation]>,
}

/// Everything a writer needs.
pub struct Results<'a> {
    /// Label names in output order.
    pub label_names: &'a [String],
    /// The inputs (for the carried column names).
    pub inputs: &'a Inputs,
    /// One per item, in input order.
    pub rows: Vec<Classified<'a>>,
}

/// Write `results` in `format`; `all_scores` adds every label's probability
/// under each row of the table format.
pub fn write_results(
    results: &Results<'_>,
    format: OutputFormat,
    all_scores: bool,
    out: &mut dyn Write,
    destination: &Path,
) -> anyhow::Result<()> {
    match format {
        OutputFormat::Table => write_table(results, all_scores, out),
        OutputFormat::Jsonl => write_jsonl(results, out),
        OutputFormat::Csv => write_csv(results, out),
        OutputFormat::Parquet => write_parquet(destination, parquet_columns(results), out).map_err(anyhow::Error::from),
    }
}

/// The carried columns' output names.
fn carried_names(inputs: &Inputs) -> Vec<String> {
    inputs
        .carried
        .iter()
        .map(|name| if FIXED_FIELDS.contains(&name.as_str()) { format!("input_{name}") } else { name.clone() })
        .collect()
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    serde_json::to_string(value).context("serialising a record")
}

fn write_jsonl(results: &Results<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let carried = carried_names(results.inputs);
    for row in &results.rows {
        let item = row.item;
        let mut line = String::with_capacity(item.text.len() + 256);
        line.push('{');
        let mut field = |name: &str, value: String| {
            if line.len() > 1 {
                line.push(',');
            }
            let _ = write!(line, "{}:{value}", serde_json::Value::String(name.to_string()));
        };
        field("id", json(&item.id)?);
        field("document", json(&item.document)?);
        field("article", json(&item.article)?);
        field("paragraph", json(&item.paragraph)?);
        field("title", json(&item.title)?);
        field("text", json(&item.text)?);
        let names: Vec<&str> = row.labels.iter().map(|&i| results.label_names[i].as_str()).collect();
        field("labels", json(&names)?);
        let scores: Vec<String> = results
            .label_names
            .iter()
            .zip(row.scores)
            .map(|(name, p)| Ok(format!("{}:{}", json(name)?, json(p)?)))
            .collect::<anyhow::Result<_>>()?;
        field("scores", format!("{{{}}}", scores.join(",")));
        field("start", json(&item.range.map(|r| r.0))?);
        field("end", json(&item.range.map(|r| r.1))?);
        field("line", json(&item.line)?);
        if let Some(source) = &item.source {
            field("source", json(source)?);
        }
        if let Some(provision) = &item.provision {
            field("provision", json(provision)?);
        }
        for (name, value) in carried.iter().zip(&item.carried) {
            field(name, json(value)?);
        }
        if let Some(explanations) = row.explanations {
            let mut parts = Vec::new();
            for explanation in explanations {
                let spans: Vec<String> = explanation
                    .spans
                    .iter()
                    .map(|s| {
                        Ok(format!(
                            "{{\"text\":{},\"start\":{},\"end\":{},\"drop\":{}}}",
                            json(&s.text)?,
                            s.start,
                            s.end,
                            json(&s.drop)?
                        ))
                    })
                    .collect::<anyhow::Result<_>>()?;
                parts.push(format!("{}:[{}]", json(&results.label_names[explanation.label])?, spans.join(",")));
            }
            field("explanations", format!("{{{}}}", parts.join(",")));
        }
        line.push('}');
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Whether any item comes from a Word, HTML or PDF draft: only then do CSV and
/// Parquet get a `source` column (JSON lines carry the field where it is
/// set), so that the output of text drafts and tables keeps its columns.
fn has_sources(results: &Results<'_>) -> bool {
    results.rows.iter().any(|r| r.item.source.is_some())
}

/// Whether any item is a sentence cut from a provision: only then do CSV
/// and Parquet get a `provision` column, for the same reason.
fn has_provisions(results: &Results<'_>) -> bool {
    results.rows.iter().any(|r| r.item.provision.is_some())
}

/// A carried value as CSV text: strings bare, null empty, the rest as JSON.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_csv(results: &Results<'_>, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut header: Vec<String> =
        ["id", "document", "article", "paragraph", "title", "text", "labels"].iter().map(|s| s.to_string()).collect();
    header.extend(results.label_names.iter().map(|l| format!("score_{l}")));
    header.extend(["start", "end", "line"].iter().map(|s| s.to_string()));
    let (sourced, cut) = (has_sources(results), has_provisions(results));
    if sourced {
        header.push("source".into());
    }
    if cut {
        header.push("provision".into());
    }
    header.extend(carried_names(results.inputs));
    writeln!(out, "{}", header.iter().map(|h| csv_field(h)).collect::<Vec<_>>().join(","))?;
    for row in &results.rows {
        let item = row.item;
        let names: Vec<&str> = row.labels.iter().map(|&i| results.label_names[i].as_str()).collect();
        let mut fields = vec![
            item.id.clone(),
            item.document.clone(),
            item.article.clone().unwrap_or_default(),
            item.paragraph.clone().unwrap_or_default(),
            item.title.clone().unwrap_or_default(),
            item.text.clone(),
            names.join(";"),
        ];
        fields.extend(row.scores.iter().map(|p| p.to_string()));
        let optional = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_default();
        fields.push(optional(item.range.map(|r| r.0)));
        fields.push(optional(item.range.map(|r| r.1)));
        fields.push(optional(item.line));
        if sourced {
            fields.push(item.source.clone().unwrap_or_default());
        }
        if cut {
            fields.push(item.provision.clone().unwrap_or_default());
        }
        fields.extend(item.carried.iter().map(plain));
        writeln!(out, "{}", fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","))?;
    }
    Ok(())
}

fn parquet_columns(results: &Results<'_>) -> Vec<OutColumn> {
    let rows = &results.rows;
    let strings = |f: &dyn Fn(&Item) -> Option<String>| OutValues::Str(rows.iter().map(|r| f(r.item)).collect());
    let numbers = |f: &dyn Fn(&Item) -> Option<usize>| {
        OutValues::I64(rows.iter().map(|r| f(r.item).and_then(|v| i64::try_from(v).ok())).collect())
    };
    let mut columns = vec![
        OutColumn { name: "id".into(), values: strings(&|i| Some(i.id.clone())) },
        OutColumn { name: "document".into(), values: strings(&|i| Some(i.document.clone())) },
        OutColumn { name: "article".into(), values: strings(&|i| i.article.clone()) },
        OutColumn { name: "paragraph".into(), values: strings(&|i| i.paragraph.clone()) },
        OutColumn { name: "title".into(), values: strings(&|i| i.title.clone()) },
        OutColumn { name: "text".into(), values: strings(&|i| Some(i.text.clone())) },
        OutColumn {
            name: "labels".into(),
            values: OutValues::StrList(
                rows.iter().map(|r| r.labels.iter().map(|&i| results.label_names[i].clone()).collect()).collect(),
            ),
        },
    ];
    for (index, label) in results.label_names.iter().enumerate() {
        columns.push(OutColumn {
            name: format!("score_{label}"),
            values: OutValues::F64(rows.iter().map(|r| r.scores.get(index).map(|&p| f64::from(p))).collect()),
        });
    }
    columns.push(OutColumn { name: "start".into(), values: numbers(&|i| i.range.map(|r| r.0)) });
    columns.push(OutColumn { name: "end".into(), values: numbers(&|i| i.range.map(|r| r.1)) });
    columns.push(OutColumn { name: "line".into(), values: numbers(&|i| i.line) });
    if has_sources(results) {
        columns.push(OutColumn { name: "source".into(), values: strings(&|i| i.source.clone()) });
    }
    if has_provisions(results) {
        columns.push(OutColumn { name: "provision".into(), values: strings(&|i| i.provision.clone()) });
    }
    for (index, name) in carried_names(results.inputs).into_iter().enumerate() {
        let values: Vec<&serde_json::Value> =
            rows.iter().map(|r| r.item.carried.get(index).unwrap_or(&serde_json::Value::Null)).collect();
        columns.push(OutColumn { name, values: typed(&values) });
    }
    columns
}

/// A carried column keeps its type when every value has the same JSON type
/// (or is null); mixed columns become text.
fn typed(values: &[&serde_json::Value]) -> OutValues {
    use serde_json::Value;
    let present = || values.iter().filter(|v| !v.is_null());
    if present().all(|v| v.is_boolean()) {
        return OutValues::Bool(values.iter().map(|v| v.as_bool()).collect());
    }
    if present().all(|v| v.is_i64()) {
        return OutValues::I64(values.iter().map(|v| v.as_i64()).collect());
    }
    if present().all(|v| v.is_number()) {
        return OutValues::F64(values.iter().map(|v| v.as_f64()).collect());
    }
    OutValues::Str(
        values
            .iter()
            .map(|v| match v {
                Value::Null => None,
                other => Some(plain(other)),
            })
            .collect(),
    )
}

/// At most `max` characters, with `…` marking a cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Where a provision is, for people: `Art. 27.1`, `Art. 27`, or the last
/// part of its id (`preamble`, `closing`, a row id).
pub fn article_label(article: Option<&str>, paragraph: Option<&str>, id: &str) -> String {
    match (article, paragraph) {
        (Some(a), Some(p)) => format!("Art. {a}.{p}"),
        (Some(a), None) => format!("Art. {a}"),
        _ => id.rsplit(':').next().unwrap_or(id).to_string(),
    }
}

/// Where a provision is, short: `27.1`, `27`, `preamble`, or the row id.
pub fn place(item: &Item) -> String {
    match (&item.article, &item.paragraph) {
        (Some(a), Some(p)) => format!("{a}.{p}"),
        (Some(a), None) => a.clone(),
        _ => item.id.rsplit(':').next().unwrap_or(&item.id).to_string(),
    }
}

fn write_table(results: &Results<'_>, all_scores: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    const PLACE: usize = 8;
    const TITLE: usize = 16;
    const LABELS: usize = 34;
    let text_width = TABLE_WIDTH - PLACE - TITLE - LABELS - 3;
    let several = results.rows.windows(2).any(|w| w[0].item.document != w[1].item.document);
    let mut document: Option<&str> = None;
    writeln!(out, "{:<PLACE$} {:<TITLE$} {:<LABELS$} TEXT", "ARTICLE", "TITLE", "LABELS")?;
    for row in &results.rows {
        let item = row.item;
        if several && document != Some(item.document.as_str()) {
            writeln!(out, "== {}", item.document)?;
            document = Some(&item.document);
        }
        // Labels are what the table is for: they wrap onto further lines
        // rather than being cut.
        let mut label_lines: Vec<String> = vec![String::new()];
        for &i in row.labels {
            let entry = format!("{} {:.2}", results.label_names[i], row.scores[i]);
            let current = label_lines.last_mut().map_or(0, |l| l.chars().count());
            if current > 0 && current + 2 + entry.chars().count() > LABELS {
                label_lines.push(String::new());
            }
            if let Some(line) = label_lines.last_mut() {
                if !line.is_empty() {
                    line.push_str(", ");
                }
                line.push_str(&entry);
            }
        }
        if row.labels.is_empty() {
            label_lines[0].push('-');
        }
        writeln!(
            out,
            "{:<PLACE$} {:<TITLE$} {:<LABELS$} {}",
            truncate(&place(item), PLACE),
            truncate(item.title.as_deref().unwrap_or(""), TITLE),
            truncate(&label_lines[0], LABELS),
            truncate(&item.text, text_width)
        )?;
        for line in &label_lines[1..] {
            writeln!(out, "{:PLACE$} {:TITLE$} {}", "", "", truncate(line, LABELS))?;
        }
        if all_scores {
            let scores: Vec<String> =
                results.label_names.iter().zip(row.scores).map(|(l, p)| format!("{l} {p:.2}")).collect();
            writeln!(out, "{:PLACE$} {}", "", truncate(&scores.join("  "), TABLE_WIDTH - PLACE - 1))?;
        }
        for explanation in row.explanations.unwrap_or(&[]) {
            let spans: Vec<String> =
                explanation.spans.iter().map(|s| format!("\"{}\" (-{:.2})", s.text, s.drop)).collect();
            let why = if spans.is_empty() { "no single clause carries it".to_string() } else { spans.join("; ") };
            let line = format!("why {}: {why}", results.label_names[explanation.label]);
            writeln!(out, "{:PLACE$} {}", "", truncate(&line, TABLE_WIDTH - PLACE - 1))?;
        }
    }
    Ok(())
}

/// Write a file through `write`, atomically: into a temporary file beside
/// it, synced, then renamed over `path`; on any error the temporary file is
/// removed and `path` is untouched.
pub fn write_file_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        if parent.exists() {
            bail!("{}: {} is not a directory", path.display(), parent.display());
        }
        bail!("{}: the directory {} does not exist", path.display(), parent.display());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let file = std::fs::File::create(&temporary)
            .with_context(|| format!("{}: cannot create the output file", path.display()))?;
        let mut buffered = std::io::BufWriter::new(file);
        write(&mut buffered)?;
        let file = buffered.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
            .with_context(|| format!("{}: cannot move the output into place", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, text: &str) -> Item {
        Item {
            id: id.to_string(),
            document: "d".into(),
            article: Some("27".into()),
            paragraph: Some("1".into()),
            title: Some("Preservation".into()),
            chapter: None,
            text: text.to_string(),
            range: Some((5, 9)),
            line: Some(3),
            source: None,
            provision: None,
            carried: vec![serde_json::json!(7)],
        }
    }

    fn render(format: OutputFormat, inputs: &Inputs) -> String {
        let names = vec!["surveillance".to_string(), "secrecy".to_string()];
        let results = Results {
            label_names: &names,
            inputs,
            rows: inputs
                .items
                .iter()
                .map(|item| Classified { item, scores: &[0.9, 0.1], labels: &[0], explanations: None })
                .collect(),
        };
        let mut out = Vec::new();
        write_results(&results, format, true, &mut out, Path::new("out")).expect("write");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn jsonl_fields_in_order_with_carried_columns() {
        let inputs = Inputs { carried: vec!["text".into()], items: vec![item("d:art27.1", "Say \"no\"")] };
        let line = render(OutputFormat::Jsonl, &inputs);
        assert!(line.starts_with("{\"id\":\"d:art27.1\",\"document\":\"d\",\"article\":\"27\""), "{line}");
        let value: serde_json::Value = serde_json::from_str(line.trim()).expect("json");
        assert_eq!(value["labels"], serde_json::json!(["surveillance"]));
        assert!((value["scores"]["secrecy"].as_f64().unwrap_or(0.0) - 0.1).abs() < 1e-6);
        assert_eq!(value["input_text"], serde_json::json!(7));
        assert_eq!(value["text"], "Say \"no\"");
        assert_eq!(value["start"], 5);
    }

    #[test]
    fn csv_quotes_and_table_fits_the_width() {
        let long = "word ".repeat(60);
        let inputs = Inputs { carried: vec!["page".into()], items: vec![item("a", "x, \"y\"\nz"), item("b", &long)] };
        let csv = render(OutputFormat::Csv, &inputs);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(
                "id,document,article,paragraph,title,text,labels,score_surveillance,score_secrecy,start,end,line,page"
            )
        );
        assert!(csv.contains("\"x, \"\"y\"\"\nz\",surveillance,0.9,0.1,5,9,3,7"), "{csv}");
        let table = render(OutputFormat::Table, &inputs);
        assert!(table.lines().all(|l| l.chars().count() <= TABLE_WIDTH), "{table}");
        assert!(table.contains("27.1     Preservation     surveillance 0.90"), "{table}");
        assert!(table.contains("surveillance 0.90  secrecy 0.10"), "{table}");
    }

    #[test]
    fn atomic_writes_leave_nothing_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old").expect("write");
        let err = write_file_atomically(&path, |out: &mut dyn Write| {
            out.write_all(b"partial")?;
            bail!("boom")
        })
        .expect_err("fails");
        assert!(format!("{err:#}").contains("boom"));
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        write_file_atomically(&path, |out: &mut dyn Write| Ok(out.write_all(b"new")?)).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        let err = write_file_atomically(&dir.path().join("no/such/out.csv"), |_: &mut dyn Write| Ok(()))
            .expect_err("missing dir")
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        let err = write_file_atomically(&path.join("out.csv"), |_: &mut dyn Write| Ok(()))
            .expect_err("parent is a file")
            .to_string();
        assert!(err.contains("out.jsonl is not a directory"), "{err}");
    }
}
