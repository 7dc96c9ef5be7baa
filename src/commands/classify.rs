//! `clause classify`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, bail};
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::decision::flagged;
use clause_infer::input::Passage;

use crate::cli::{ClassifyArgs, OutputFormat};
use crate::commands::device;
use crate::input::{Fields, Item, read_inputs};
use crate::output::{Classified, Results, write_file_atomically, write_results};

/// Spans listed per explained label.
pub const EXPLAINED_SPANS: usize = 3;

/// Texts from which a progress bar is worth drawing.
const PROGRESS_FROM: usize = 256;

pub fn run(args: &ClassifyArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let format = output_format(args)?;
    if let Some(t) = args.threshold
        && !(0.0..=1.0).contains(&t)
    {
        bail!("--threshold {t}: expected a probability between 0 and 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let inputs = read_inputs(&args.inputs, Fields { text: &args.text_field, title: args.title_field.as_deref() })?;
    let classifier = load_model(&args.model, &args.device)?;
    let passages: Vec<Passage<'_>> = inputs.items.iter().map(Item::passage).collect();
    let plan = BatchPlan { batch_size: args.batch_size, by_length: !args.no_length_buckets };
    let scores = predict_with_progress(&classifier, &passages, plan)?;
    let thresholds = match args.threshold {
        Some(t) => vec![t; classifier.labels().len()],
        None => classifier.thresholds(),
    };
    let labels: Vec<Vec<usize>> = scores.iter().map(|s| flagged(s, &thresholds)).collect();
    let explanations =
        if args.explain { Some(classifier.explain(&passages, &scores, &labels, EXPLAINED_SPANS)?) } else { None };
    let label_names: Vec<String> = classifier.labels().iter().map(|l| l.name.clone()).collect();
    let results = Results {
        label_names: &label_names,
        inputs: &inputs,
        rows: inputs
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| Classified {
                item,
                scores: &scores[i],
                labels: &labels[i],
                explanations: explanations.as_ref().map(|e| e[i].as_slice()),
            })
            .collect(),
    };
    match &args.output {
        Some(path) => write_file_atomically(path, |file| write_results(&results, format, args.all_scores, file, path)),
        None => write_results(&results, format, args.all_scores, out, Path::new("stdout")),
    }
}

/// `--format`, else the extension of `--output`, else `table` on a terminal
/// and `jsonl` in a pipe.
fn output_format(args: &ClassifyArgs) -> anyhow::Result<OutputFormat> {
    if let Some(format) = args.format {
        if format == OutputFormat::Parquet && args.output.is_none() {
            bail!("--format parquet needs --output FILE: Parquet is not written to a terminal or pipe");
        }
        return Ok(format);
    }
    match &args.output {
        Some(path) => {
            let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
            Ok(match extension.as_str() {
                "csv" => OutputFormat::Csv,
                "parquet" => OutputFormat::Parquet,
                "txt" => OutputFormat::Table,
                _ => OutputFormat::Jsonl,
            })
        }
        None if std::io::stdout().is_terminal() => Ok(OutputFormat::Table),
        None => Ok(OutputFormat::Jsonl),
    }
}

/// Load a model directory, naming it in errors.
pub fn load_model(dir: &Path, device_spec: &str) -> anyhow::Result<Classifier> {
    let device = device(device_spec)?;
    let started = std::time::Instant::now();
    let classifier =
        Classifier::load(dir, &device).with_context(|| format!("loading the model in {}", dir.display()))?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), labels = classifier.labels().len(), "model loaded");
    Ok(classifier)
}

/// Probabilities of every passage, read as the model was trained to read
/// it (with its headings or without), with a progress bar on a terminal
/// when the job is long enough to want one.
pub fn predict_with_progress(
    classifier: &Classifier,
    passages: &[Passage<'_>],
    plan: BatchPlan,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let bar = (passages.len() >= PROGRESS_FROM && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(passages.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} provisions {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let started = std::time::Instant::now();
    let ids = classifier.passage_ids(passages)?;
    warn_of_truncation(&ids, classifier.max_length());
    let scores = classifier.predict_ids(&ids, plan, &mut |done| {
        if let Some(bar) = &bar {
            bar.inc(done as u64);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let texts = passages.len();
    tracing::info!(texts, seconds, per_second = texts as f64 / seconds.max(1e-9), "classified");
    Ok(scores)
}

/// Say how many texts filled the model's whole token window: the model reads
/// nothing past it, so a label that only their later words would raise is
/// missed. A reviewer of long provisions needs to know that.
fn warn_of_truncation(ids: &[Vec<u32>], max_length: usize) {
    let at_limit: Vec<usize> =
        ids.iter().enumerate().filter(|(_, ids)| ids.len() >= max_length).map(|(i, _)| i).collect();
    if let Some(&first) = at_limit.first() {
        tracing::warn!(
            "{} of {} texts reach the model's limit of {max_length} tokens and are read only up to it \
             (the first is text {}); a label raised only by their later words is missed",
            at_limit.len(),
            ids.len(),
            first + 1,
        );
    }
}
