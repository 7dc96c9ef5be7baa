//! The data crate's error type. Every variant names the file and, where there
//! is one, the line, row or field at fault.

use std::path::PathBuf;

/// Errors from reading sources, recipes and annotations and building datasets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Word, PDF or HTML draft could not be read (the reader's error
    /// names the file).
    #[error(transparent)]
    Document(#[from] clause_read::Error),
    /// A text file is not UTF-8.
    #[error("{path}:{line}: not valid UTF-8 (byte {byte} of the file); convert the file to UTF-8")]
    NotUtf8 {
        /// The file at fault.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 0-based byte offset of the first invalid byte.
        byte: usize,
    },
    /// A line, row or field does not have the expected shape.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file at fault.
        path: PathBuf,
        /// 1-based line (or `row N` for Parquet rows).
        line: String,
        /// What was expected.
        message: String,
    },
    /// The dataset recipe is invalid.
    #[error("{path}: {message}")]
    Recipe {
        /// The recipe file.
        path: PathBuf,
        /// What is wrong, with the field or line.
        message: String,
    },
    /// A label is not in the recipe's label set.
    #[error("{path}:{line}: unknown label `{label}`; the recipe declares: {known}")]
    UnknownLabel {
        /// The file that uses the label.
        path: PathBuf,
        /// Where in it.
        line: String,
        /// The label.
        label: String,
        /// The declared labels, comma-separated.
        known: String,
    },
    /// A source named by the recipe does not exist.
    #[error(
        "source `{source_path}` not found under the data root {root} (named in {recipe}); set --data-root or CLAUSE_DATA_ROOT to the directory that holds it"
    )]
    MissingSource {
        /// The recipe.
        recipe: PathBuf,
        /// The source path as the recipe gives it.
        source_path: String,
        /// The data root it was looked up in.
        root: PathBuf,
    },
    /// A source's sha256 differs from the one in the recipe.
    #[error(
        "source {path} has sha256 {actual}, but {recipe} expects {expected}: the source changed; check it and update the recipe's sha256"
    )]
    ChecksumMismatch {
        /// The recipe.
        recipe: PathBuf,
        /// The source.
        path: PathBuf,
        /// The recipe's value.
        expected: String,
        /// The file's value.
        actual: String,
    },
    /// An annotation names a provision that no source has.
    #[error("{path}:{line}: annotation for `{id}` matches no provision of the recipe's sources")]
    UnknownAnnotation {
        /// The annotation file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The provision id.
        id: String,
    },
    /// A provision's text changed after it was annotated.
    #[error(
        "{path}:{line}: the text of `{id}` changed since it was annotated (annotation hash {expected}, text now hashes to {actual}); re-read the provision, check its labels and update the hash"
    )]
    StaleAnnotation {
        /// The annotation file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The provision id.
        id: String,
        /// The hash in the annotation.
        expected: String,
        /// The hash of the current text.
        actual: String,
    },
    /// The same id is annotated twice.
    #[error("{path}:{line}: `{id}` is annotated again (first at {first})")]
    DuplicateAnnotation {
        /// The annotation file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The provision id.
        id: String,
        /// `file:line` of the first annotation.
        first: String,
    },
    /// A provision of a draft source has no annotation.
    #[error("{source_path}:{line}: provision `{id}` has no annotation in {annotations}; add a line for it")]
    Unannotated {
        /// The source file.
        source_path: PathBuf,
        /// The provision's first line in the source.
        line: usize,
        /// The provision id.
        id: String,
        /// The recipe's annotation files.
        annotations: String,
    },
    /// Two examples share an id.
    #[error("{path}: duplicate example id `{id}` (also in {first})")]
    DuplicateId {
        /// Where the second one comes from.
        path: PathBuf,
        /// The id.
        id: String,
        /// Where the first one comes from.
        first: String,
    },
    /// A CLAUDETTE sentence file and its tag file differ in length.
    #[error(
        "{sentences} has {sentence_lines} lines but {tags} has {tag_lines}; sentence and tag files must be line-aligned"
    )]
    LengthMismatch {
        /// The sentence file.
        sentences: PathBuf,
        /// Its line count.
        sentence_lines: usize,
        /// The tag file.
        tags: PathBuf,
        /// Its line count.
        tag_lines: usize,
    },
    /// The recipe's sources yield no examples.
    #[error("{recipe}: the dataset is empty: its sources yield no examples")]
    EmptyDataset {
        /// The recipe.
        recipe: PathBuf,
    },
    /// A label has no example in the training split.
    #[error(
        "{recipe}: label `{label}` has no example in the train split ({total} in the whole dataset); a model cannot learn it"
    )]
    NoTrainingExample {
        /// The recipe.
        recipe: PathBuf,
        /// The label.
        label: String,
        /// Its count over all splits.
        total: usize,
    },
    /// A document named in a fixed split is not in any source.
    #[error("{recipe}: [split] {field} names document `{document}`, which no source has")]
    UnknownDocument {
        /// The recipe.
        recipe: PathBuf,
        /// `validation` or `test`.
        field: String,
        /// The document.
        document: String,
    },
    /// Texts are shared between splits and the recipe forbids it.
    #[error(
        "{recipe}: {count} texts of at least {min_chars} characters occur in more than one split, e.g. {examples}; the recipe's [leakage] fail = true forbids this"
    )]
    Leakage {
        /// The recipe.
        recipe: PathBuf,
        /// How many.
        count: usize,
        /// The length threshold.
        min_chars: usize,
        /// A few of them.
        examples: String,
    },
    /// Polars could not read or write a table.
    #[error("{path}: {source}")]
    Polars {
        /// The table.
        path: PathBuf,
        /// The underlying error.
        source: polars::error::PolarsError,
    },
    /// A Parquet file's footer is corrupt in a way the Parquet reader does
    /// not report: polars 0.55 panics on some such footers, and aborts the
    /// process on lengths larger than the file.
    #[error("{path}: not a readable Parquet file (its metadata is corrupt: {message})")]
    CorruptParquet {
        /// The table.
        path: PathBuf,
        /// What the reader said when it failed.
        message: String,
    },
    /// A table's file extension names no format this crate reads.
    #[error("{path}: unknown table format `.{extension}`; expected .csv, .jsonl (or .ndjson) or .parquet")]
    UnknownFormat {
        /// The table.
        path: PathBuf,
        /// Its extension.
        extension: String,
    },
    /// A table lacks a column or has one of the wrong type.
    #[error("{path}: column `{column}`: {message}")]
    Column {
        /// The table.
        path: PathBuf,
        /// The column.
        column: String,
        /// What was expected.
        message: String,
    },
    /// A dataset has not been built yet.
    #[error("{path} not found: run `clause dataset build {recipe_dir}` first")]
    NotBuilt {
        /// The missing file.
        path: PathBuf,
        /// The recipe directory.
        recipe_dir: PathBuf,
    },
}

/// Result with the data crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
