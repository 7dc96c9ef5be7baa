//! `clause classify`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::bail;
use clause_eval::decision::flagged;
use clause_infer::classifier::BatchPlan;
use clause_infer::input::Passage;

use crate::cli::{ClassifyArgs, OutputFormat};
use crate::commands::common::{load_model, predict_with_progress};
use crate::input::{Fields, Item, read_inputs};
use crate::output::{Classified, Results, write_file_atomically, write_results};

/// Spans listed per explained label.
pub const EXPLAINED_SPANS: usize = 3;

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
    let classifier = load_model(&args.model, &args.device)?;
    // A model trained on sentences reads a draft's sentences.
    let fields = Fields { text: &args.text_field, title: args.title_field.as_deref() };
    let mut inputs = read_inputs(&args.inputs, fields, classifier.unit())?;
    if let Some(shard) = args.shard {
        let range = shard.range(inputs.items.len());
        tracing::info!(
            "shard {}/{}: items {} to {} of {}",
            shard.index,
            shard.count,
            range.start + 1,
            range.end,
            inputs.items.len()
        );
        inputs.items = inputs.items.drain(range).collect();
    }
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
