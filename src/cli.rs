//! Command-line definitions. Doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Find the risky provisions in legal drafts.
///
/// clause segments treaty and legislative drafts into provisions, builds
/// labelled clause datasets from raw documents and the project's own
/// annotations, and (in later releases) trains and runs classifiers that flag
/// surveillance powers, cross-border data sharing, extradition,
/// criminalisation, restrictions on expression, secrecy and safeguards, or
/// unfair terms in contracts.
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
    /// Builds the dataset first if it is missing or older than its recipe.
    /// Validation decides the epoch kept (macro-F1, with early stopping) and
    /// the per-label thresholds; the test split is scored once, at the end.
    /// The output directory follows the Hugging Face layout (config.json,
    /// model.safetensors, tokenizer.json) plus clause.json. A checkpoint is
    /// written every epoch and on Ctrl-C; `--resume` continues from it.
    Train(TrainArgs),
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
    /// configuration; flags below override it).
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

    /// Share of the label-less training examples each epoch draws, in (0, 1].
    #[arg(long, value_name = "SHARE")]
    pub negative_share: Option<f64>,

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
