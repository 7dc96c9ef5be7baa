//! Command-line definitions. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Find the risky provisions in legal drafts.
///
/// clause segments treaty and legislative drafts into provisions, builds
/// labelled clause datasets from raw documents and the project's own
/// annotations, fine-tunes a pretrained encoder on them, and classifies new
/// drafts, flagging surveillance powers, cross-border data sharing,
/// extradition, criminalisation, restrictions on expression, secrecy and
/// safeguards, or unfair terms in contracts.
#[derive(Debug, Parser)]
#[command(name = "clause", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Print progress and diagnostics to stderr (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Split drafts into provisions and print them, to check the segmentation
    /// of a new draft before classifying it.
    ///
    /// A provision is one numbered paragraph of an article with its lettered
    /// sub-paragraphs; an article without numbered paragraphs is one
    /// provision; the preamble and the closing testimonium are one provision
    /// each. Ids are `<document>:art<N>.<P>`, `<document>:art<N>`,
    /// `<document>:preamble` and `<document>:closing`.
    Segment(SegmentArgs),

    /// Build and inspect labelled datasets.
    #[command(subcommand)]
    Dataset(DatasetCommand),

    /// Fine-tune a pretrained encoder into a multi-label classifier for a
    /// dataset recipe.
    ///
    /// Builds the dataset first if it is missing or older than its recipe or
    /// annotation files.
    /// Validation decides the epoch kept (macro-F1, with early stopping) and
    /// the per-label thresholds; the test split is scored once, at the end.
    /// The output directory follows the Hugging Face layout (config.json,
    /// model.safetensors, tokenizer.json) plus clause.json. A checkpoint is
    /// written every epoch and on Ctrl-C; `--resume` continues from it.
    Train(TrainArgs),

    /// Classify the provisions of drafts, or the texts of a table, by risk
    /// category.
    ///
    /// Drafts (`.md`, `.txt`, `.docx`, `.html`, `.pdf`, a directory of
    /// them, or `-` for stdin) are segmented into provisions as `clause
    /// segment` does; tables (`.csv`,
    /// `.jsonl`, `.parquet`) give one text per row and their other columns are
    /// carried through. Each record has the predicted labels (at the model's
    /// tuned thresholds) and every label's probability, in input order.
    Classify(ClassifyArgs),

    /// Score a model on labelled data: per-label precision, recall, F1,
    /// ROC-AUC and average precision; micro, macro and LexGLUE macro-F1 with
    /// 95% bootstrap intervals; calibration error. With `--baseline`, the
    /// change from another model and every decision that flipped.
    Eval(EvalArgs),

    /// Compare two versions of a draft: provisions added, removed and
    /// changed, with their label changes and probability deltas, most
    /// risk-increasing first.
    ///
    /// Provisions are matched by text similarity first and article number
    /// second, so renumbered articles are recognised (`Art. 29 (was 27)`).
    Diff(DiffArgs),

    /// Write one self-contained page (HTML, or Markdown) of a classified
    /// draft: counts per label, and every provision marked with its labels,
    /// probabilities and, on demand, what drives them.
    Report(ReportArgs),

    /// Serve predictions: JSON lines on stdin/stdout, or HTTP.
    ///
    /// HTTP routes: `POST /v1/classify` with `{"texts": [...]}` or
    /// `{"document": "...", "name": "..."}`, `GET /v1/labels`, `GET /healthz`.
    /// Requests arriving together are classified in one batch.
    Serve(ServeArgs),
}

/// Arguments of `clause diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Trained model directory.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// The earlier draft (.md, .txt, .docx, .html, .pdf).
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The later draft.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// `table` for reading or `json` for tools.
    #[arg(long, value_enum, default_value_t = DiffFormat::Table)]
    pub format: DiffFormat,

    /// Also list provisions that did not change.
    #[arg(long)]
    pub all: bool,

    /// One decision threshold for every label, instead of the model's.
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,

    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Output formats of `clause diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Aligned lines for reading.
    Table,
    /// One JSON document.
    Json,
}

/// Arguments of `clause report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Trained model directory.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// The draft (.md, .txt, .docx, .html, .pdf).
    #[arg(value_name = "DRAFT")]
    pub draft: PathBuf,

    /// The page to write (atomically).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,

    /// `html` (one file, no network requests) or `markdown`.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,

    /// Skip the explanations (one forward pass per clause of each flagged
    /// provision).
    #[arg(long)]
    pub no_explain: bool,

    /// One decision threshold for every label, instead of the model's.
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,

    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Formats of `clause report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A self-contained HTML page.
    Html,
    /// Markdown.
    Markdown,
}

/// Arguments of `clause serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Trained model directory.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,

    /// Read one JSON request per line on stdin and write one response per
    /// line on stdout, in order, until stdin ends. A request may carry an
    /// `id`, echoed in its response.
    #[arg(long, conflicts_with = "http")]
    pub stdio: bool,

    /// Serve HTTP on ADDR [default: 127.0.0.1:8080]. An address other than
    /// loopback is served with a warning: there is no authentication or TLS.
    /// Port 0 lets the system pick one; the address bound is printed on
    /// stderr (`listening on http://...`).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080")]
    pub http: Option<String>,

    /// Bytes per request body (or stdio line) at most; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_name = "N")]
    pub max_body_bytes: usize,

    /// Texts (or provisions of a document) per request at most; more get 413.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_texts: usize,

    /// Characters per text of `texts` at most; longer texts get 413 (a
    /// document is bounded by --max-body-bytes).
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub max_text_chars: usize,

    /// Texts per batch at most (shared out across the CPU threads); texts of
    /// requests that arrive together share batches.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_batch: usize,

    /// Milliseconds to wait for more texts to fill a batch.
    #[arg(long, default_value_t = 5, value_name = "MS")]
    pub max_wait_ms: u64,

    /// Texts waiting for the model at most; HTTP requests beyond get 503 with
    /// Retry-After, stdio requests wait.
    #[arg(long, default_value_t = 4096, value_name = "N")]
    pub queue: usize,

    /// HTTP connections served at once; more get 503.
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_connections: usize,

    /// Seconds a client has to send a request, or to take its response,
    /// before it is disconnected (408); also how long an idle keep-alive
    /// connection stays open.
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub timeout_secs: u64,

    /// One decision threshold for every label, instead of the model's.
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,
}

/// Arguments of `clause eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Trained model directory; with --probe, also a cross-validation run
    /// (`clause train --cross-validate K --keep-fold-models`), each fold's
    /// model probed on the instruments it held out.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// A dataset recipe directory (`datasets/<name>`; built when needed), or
    /// a labelled table (.csv, .jsonl, .parquet) with text and labels
    /// columns.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,

    /// Which split of a recipe to score. The test split is for reporting,
    /// once; compare settings on validation.
    #[arg(long, value_enum, default_value_t = SplitArg::Validation)]
    pub split: SplitArg,

    /// A model to compare with (same labels): per-label F1 deltas and the
    /// examples whose decisions flipped.
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,

    /// Flipped decisions listed in the text report.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub flips: usize,

    /// One decision threshold for every label, instead of the model's.
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,

    /// The text column of a table.
    #[arg(long, default_value = "text", value_name = "NAME")]
    pub text_field: String,

    /// The labels column of a table: a list of strings, or one string of
    /// labels separated by `;`.
    #[arg(long, default_value = "labels", value_name = "NAME")]
    pub labels_field: String,

    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,

    /// Also draw the reliability diagram (mean score against the share
    /// that truly carry the label, per score bin) into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub reliability_svg: Option<PathBuf>,

    /// Instead of scoring, probe for shortcuts: the split with its headings
    /// removed or swapped between provisions, or with the probe suite's
    /// sentences buried in label-less provisions (recall of the inserted
    /// label, and labels a benign control sentence adds).
    #[arg(long, value_enum, value_name = "PROBE")]
    pub probe: Option<ProbeKind>,

    /// The buried-clause suite (`label<TAB>rule<TAB>sentence`, label `none`
    /// for a control); default `<recipe>/probes/buried-clauses.tsv`.
    #[arg(long, value_name = "FILE")]
    pub probe_sentences: Option<PathBuf>,

    /// Label-less provisions each probe sentence is buried in.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub probe_hosts: usize,

    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// What `clause eval --probe` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeKind {
    /// Every provision read without its headings.
    HeadingsRemoved,
    /// Every provision read under another provision's headings.
    HeadingsSwapped,
    /// Probe sentences inserted into label-less provisions.
    Buried,
}

/// Dataset splits on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The validation split.
    Validation,
    /// The test split.
    Test,
}

/// Arguments of `clause classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Trained model directory (written by `clause train`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Drafts (.md, .txt, .docx, .html, .pdf), directories of drafts (searched
    /// recursively), tables (.csv, .jsonl, .parquet), or `-` for a draft on
    /// stdin.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Output format [default: `table` on a terminal, else `jsonl`, or the
    /// extension of --output].
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,

    /// Write to this file (atomically: complete or not at all) instead of
    /// stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The text column of table inputs.
    #[arg(long, default_value = "text", value_name = "NAME")]
    pub text_field: String,

    /// A title column of table inputs.
    #[arg(long, value_name = "NAME")]
    pub title_field: Option<String>,

    /// One decision threshold for every label, instead of the model's tuned
    /// per-label thresholds.
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,

    /// In the table, list every label's probability under each provision.
    #[arg(long)]
    pub all_scores: bool,

    /// Explain each predicted label: the spans of the provision whose
    /// removal lowers its probability most (one extra forward pass per
    /// clause of each flagged provision).
    #[arg(long)]
    pub explain: bool,

    /// Texts per batch, which is shared out across the CPU threads (one
    /// forward pass each).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,

    /// Batch texts in input order instead of by length: slower; for
    /// measuring what length bucketing gains (scripts/bench-classify).
    #[arg(long)]
    pub no_length_buckets: bool,

    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    pub device: String,

    /// Classify only shard I of N (1-based), for array jobs (a Slurm array,
    /// a Kubernetes Indexed Job): the items of all inputs, in input order,
    /// are cut into N runs of near-equal size and this run classifies the
    /// I-th. Every shard reads all inputs but encodes only its own items;
    /// the outputs of shards 1 to N, concatenated in that order, are the
    /// unsharded output.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

/// One shard of a classification job: `index` of `count`, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1 to `count`.
    pub index: usize,
    /// How many shards the job has.
    pub count: usize,
}

impl Shard {
    /// The items of `len` that this shard takes: a contiguous run, so that
    /// the shards' outputs concatenate to the unsharded output, and runs of
    /// sizes that differ by at most one.
    pub fn range(&self, len: usize) -> std::ops::Range<usize> {
        // u128 so that `len * count` cannot overflow.
        let bound = |i: usize| (len as u128 * i as u128 / self.count as u128) as usize;
        bound(self.index - 1)..bound(self.index)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        // clap prefixes the value and the option: "invalid value '4/3' for
        // '--shard <I/N>': expected ...".
        let expected = || "expected I/N with 1 <= I <= N, e.g. 2/8".to_string();
        let (index, count) = value.split_once('/').ok_or_else(expected)?;
        let index: usize = index.trim().parse().map_err(|_| expected())?;
        let count: usize = count.trim().parse().map_err(|_| expected())?;
        if index == 0 || index > count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

/// Output formats of `clause classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for reading at 100 columns.
    Table,
    /// One JSON object per record.
    Jsonl,
    /// Comma-separated values: labels joined with `;`, one `score_<label>`
    /// column per label.
    Csv,
    /// Apache Parquet, with the columns of the CSV (labels as a list).
    Parquet,
}

/// Arguments of `clause train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The dataset recipe directory (`datasets/<name>`).
    #[arg(value_name = "DATASET")]
    pub dataset: PathBuf,

    /// Base model: a directory with config.json, tokenizer.json and
    /// model.safetensors (`bash scripts/fetch-base-model` puts
    /// all-MiniLM-L6-v2 at the default), or a Hugging Face Hub id such as
    /// `sentence-transformers/all-MiniLM-L6-v2`, read from the Hub cache
    /// ($HF_HOME) and downloaded when missing unless HF_HUB_OFFLINE=1.
    #[arg(long, value_name = "DIR|ID", default_value = "models/base/all-MiniLM-L6-v2")]
    pub base: String,

    /// Output model directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// TOML file of hyper-parameters (any field of the training
    /// configuration). It overrides the recipe's own `train.toml`, if it has
    /// one, key by key; flags below override both.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Passes over the training split at most.
    #[arg(long)]
    pub epochs: Option<usize>,

    /// Examples per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,

    /// Peak learning rate.
    #[arg(long)]
    pub learning_rate: Option<f64>,

    /// Tokens per text at most.
    #[arg(long)]
    pub max_length: Option<usize>,

    /// Label-less training examples per labelled one that each epoch draws
    /// at most (0 keeps them all).
    #[arg(long, value_name = "RATIO")]
    pub negative_ratio: Option<f64>,

    /// How token states become one vector: `mean` (default) or `cls`.
    #[arg(long, value_enum)]
    pub pooling: Option<PoolingArg>,

    /// Seed of data order, dropout and the head's initial weights.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Continue an interrupted run from `<OUT>/checkpoint` (same settings).
    #[arg(long)]
    pub resume: bool,

    /// Do not score the test split: for runs that compare settings on
    /// validation, since the test split is looked at once, to report.
    #[arg(long)]
    pub no_test: bool,

    /// Cross-validate instead: split all the recipe's examples (every
    /// split) into this many folds of whole instruments (documents), train
    /// one model per fold with the recipe's settings, and score each fold
    /// with the model that did not see it. Writes every example's
    /// out-of-fold prediction under `<OUT>/fold-<k>/`, and prints pooled,
    /// per-document and calibration figures with intervals that resample
    /// documents. Run again to continue an interrupted run.
    #[arg(long, value_name = "FOLDS")]
    pub cross_validate: Option<usize>,

    /// With --cross-validate: runs averaged per fold (the recipe's
    /// `ensemble` is for the model users get; one run per fold keeps
    /// cross-validation affordable).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub fold_members: usize,

    /// With --cross-validate: keep each fold's weights (about 90 MB each).
    #[arg(long)]
    pub keep_fold_models: bool,

    /// With --cross-validate: write the folds (`<OUT>/folds.tsv`: fold, id,
    /// split) and stop, to inspect them or score a baseline on them first.
    #[arg(long)]
    pub plan_only: bool,

    /// With --cross-validate: train nothing, and report on the folds that
    /// are finished (while a run is going, or after one was stopped).
    #[arg(long)]
    pub finished_folds_only: bool,

    /// Train no encoder: keep the one in --out and fit again only what
    /// follows it, on the recipe's splits: the lexical stage (unless the
    /// settings say `lexical = false`), each label's calibration and
    /// threshold. Seconds, where training takes an hour. With
    /// --cross-validate, every fold (run with --keep-fold-models) is
    /// refitted and predicts again, and the figures are written anew.
    #[arg(long, conflicts_with_all = ["resume", "finished_folds_only", "plan_only"])]
    pub refit_calibration: bool,

    /// `cpu`, `cuda` or `cuda:N` (GPU needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,

    #[command(flatten)]
    pub data_root: DataRootArgs,
}

/// Pooling choices on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PoolingArg {
    /// Mean of token states.
    Mean,
    /// BERT pooler on the [CLS] state.
    Cls,
}

/// Arguments of `clause segment`.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Draft files (UTF-8 plain text or markdown).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Output format: `table` for reading, `jsonl` for one JSON record per
    /// provision with every field and its byte range in the source,
    /// `annotations` for an annotation-file template.
    #[arg(long, value_enum, default_value_t = SegmentFormat::Table)]
    pub format: SegmentFormat,

    /// Document name used in provision ids, instead of the file name up to
    /// its first `.` (only with a single FILE).
    #[arg(long, value_name = "NAME")]
    pub document: Option<String>,
}

/// Output formats of `clause segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SegmentFormat {
    /// An aligned table: id, source lines, article title, first words.
    Table,
    /// One JSON object per line.
    Jsonl,
    /// Annotation-file lines (id, text hash, `-`, first words): a template
    /// to label the provisions of a new draft for a dataset recipe.
    Annotations,
}

/// `clause dataset` subcommands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Build a dataset recipe into train / validation / test Parquet files
    /// and a manifest under `<RECIPE>/build/`.
    ///
    /// Sources are checked against the sha256 in the recipe (for a directory
    /// source, the sha256 of the `sha256sum` listing of the files read,
    /// sorted by path). Outputs are written to a temporary directory and moved
    /// into place only when complete; the same inputs give byte-identical
    /// outputs.
    Build(BuildArgs),

    /// Print label counts per split, text-length percentiles, duplicates and
    /// texts shared between splits of a built dataset.
    Stats(StatsArgs),

    /// Merge reviewed labels into a recipe's annotation files.
    ///
    /// CORRECTIONS is a table (.jsonl, .csv, .parquet) with `id`, `text` and
    /// `labels` columns, for example the output of `clause classify` whose
    /// labels a reviewer edited. Each row replaces the labels of the
    /// annotation with that id, after checking that the text reviewed is the
    /// text annotated (by its hash). Unknown ids, stale texts and labels
    /// outside the recipe are refused, and then nothing is written. Rebuild
    /// and retrain afterwards; `clause eval --baseline` shows what changed.
    Annotate(AnnotateArgs),
}

/// Arguments of `clause dataset annotate`.
#[derive(Debug, Args)]
pub struct AnnotateArgs {
    /// The recipe directory (`datasets/<name>`).
    #[arg(value_name = "RECIPE")]
    pub recipe: PathBuf,

    /// The reviewed labels.
    #[arg(value_name = "CORRECTIONS")]
    pub corrections: PathBuf,

    /// Report what would change without writing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Where the source data is.
#[derive(Debug, Args)]
pub struct DataRootArgs {
    /// Directory that the recipe's source paths are relative to [default:
    /// `../shared/data` beside the project that holds the recipe].
    #[arg(long, env = "CLAUSE_DATA_ROOT", value_name = "DIR")]
    pub data_root: Option<PathBuf>,
}

/// Arguments of `clause dataset build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The recipe directory (`datasets/<name>`, holding `dataset.toml`).
    #[arg(value_name = "RECIPE")]
    pub recipe: PathBuf,

    #[command(flatten)]
    pub data_root: DataRootArgs,

    /// Print the statistics as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `clause dataset stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The recipe directory (`datasets/<name>`), built with `clause dataset build`.
    #[arg(value_name = "RECIPE")]
    pub recipe: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_cover_every_item_once_in_order() {
        for len in [0, 1, 2, 7, 10, 1000] {
            for count in 1..=9 {
                let mut next = 0;
                for index in 1..=count {
                    let range = Shard { index, count }.range(len);
                    assert_eq!(range.start, next, "{index}/{count} of {len}");
                    assert!(range.len() <= len / count + 1, "{index}/{count} of {len}: {range:?}");
                    next = range.end;
                }
                assert_eq!(next, len, "{count} shards of {len}");
            }
        }
        assert_eq!(Shard { index: 3, count: 3 }.range(usize::MAX).end, usize::MAX);
    }

    #[test]
    fn shard_parses_i_of_n_and_names_what_is_wrong() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        assert_eq!(" 1 / 1 ".parse::<Shard>(), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", "", "1/3/4", "-1/3"] {
            let error = bad.parse::<Shard>().expect_err(bad);
            assert!(error.contains("expected I/N"), "{bad}: {error}");
        }
    }
}
