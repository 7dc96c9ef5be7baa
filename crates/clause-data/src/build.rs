//! `clause dataset build`: recipe + sources + annotations → Parquet splits and
//! a manifest, written atomically.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::annotations::{Annotation, read_annotations};
use crate::claudette::{TagRules, read_claudette};
use crate::error::{Error, Result};
use crate::example::Example;
use crate::hash::{sha256_file, sha256_hex, text_hash, tree_digest};
use crate::leakage::{LeakageReport, find_leakage};
use crate::rationales::{Coverage, Located, coverage};
use crate::recipe::{LoadedRecipe, SourceSpec, SplitRule};
use crate::segment::{document_name_from_path, segment};
use crate::split::{Split, articles_across_splits, group_examples, iterative_stratification, split_by_document};
use crate::stats::{DatasetStats, compute_stats};
use crate::table::{TableColumns, examples_from_frame, read_table};
use crate::text::read_utf8;

/// The manifest's file name in the build directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A file and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Path relative to the data root (sources), the recipe directory
    /// (annotations, recipe) or the build directory (outputs).
    pub path: String,
    /// Lower-case hex sha256.
    pub sha256: String,
}

/// A source as built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDigest {
    /// Path under the data root.
    pub path: String,
    /// `claudette`, `draft` or `table`.
    pub format: String,
    /// The digest the recipe pins.
    pub sha256: String,
    /// Every file read, for directory sources.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub files: Vec<FileDigest>,
    /// Examples it contributed.
    pub examples: usize,
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDigest {
    /// File name in the build directory.
    pub path: String,
    /// Lower-case hex sha256.
    pub sha256: String,
    /// Rows in it.
    pub rows: usize,
}

/// `manifest.json`: everything needed to tell whether two builds are the same.
/// It holds no time stamps or absolute paths, so identical inputs give an
/// identical manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The dataset's name.
    pub dataset: String,
    /// The tool that built it, with its version.
    pub tool: String,
    /// The recipe file.
    pub recipe: FileDigest,
    /// The label set, in order.
    pub labels: Vec<String>,
    /// The split rule as the recipe gives it.
    pub split: SplitRule,
    /// The stratification seed, when the rule has one.
    pub seed: Option<u64>,
    /// The sources.
    pub sources: Vec<SourceDigest>,
    /// The annotation files.
    pub annotations: Vec<FileDigest>,
    /// The rationale files (absent when the recipe has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rationales: Vec<FileDigest>,
    /// The files of written training sentences (absent when the recipe has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentences: Vec<FileDigest>,
    /// How many labels have a rationale span, and `rationales.parquet`
    /// (absent when the recipe has no rationale files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale_coverage: Option<RationaleOutput>,
    /// The Parquet files, by split.
    pub outputs: BTreeMap<Split, OutputDigest>,
    /// Documents in each split.
    pub documents: BTreeMap<Split, Vec<String>>,
    /// Examples per label per split (every label listed, zeros included).
    pub label_counts: BTreeMap<Split, BTreeMap<String, usize>>,
    /// Texts shared between splits.
    pub leakage: LeakageReport,
}

/// The rationales as built: `rationales.parquet` (columns [`RATIONALE_COLUMNS`])
/// and their coverage of the labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RationaleOutput {
    /// The file.
    pub output: OutputDigest,
    /// Labels with a span, per label.
    pub coverage: Coverage,
}

/// Columns of `rationales.parquet`: the provision, its split, the label, and
/// the span's byte range in the provision's `text` (as in the split files).
pub const RATIONALE_COLUMNS: [&str; 5] = ["id", "split", "label", "start", "end"];

/// The file of built rationale spans.
pub const RATIONALES_FILE: &str = "rationales.parquet";

/// Options for a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The directory sources are relative to; the recipe's default when `None`.
    pub data_root: Option<PathBuf>,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// Where the files are.
    pub build_dir: PathBuf,
    /// The manifest written there.
    pub manifest: Manifest,
    /// Statistics of the built splits.
    pub stats: DatasetStats,
}

/// Examples of every source, with what the manifest records of them.
struct Collected {
    examples: Vec<Example>,
    sources: Vec<SourceDigest>,
    annotations: Vec<FileDigest>,
}

/// Build the dataset of `recipe` into `<recipe dir>/build/`.
pub fn build(recipe: &LoadedRecipe, options: &BuildOptions) -> Result<BuildOutcome> {
    let root = options.data_root.clone().unwrap_or_else(|| recipe.default_data_root());
    tracing::info!(dataset = %recipe.recipe.name, root = %root.display(), "building dataset");
    let collected = collect(recipe, &root)?;
    let examples = checked_examples(recipe, collected.examples)?;
    let splits = assign_splits(recipe, &examples)?;
    let label_names: Vec<String> = recipe.recipe.labels.iter().map(|l| l.name.clone()).collect();

    let mut by_split: BTreeMap<Split, Vec<&Example>> = Split::ALL.iter().map(|s| (*s, Vec::new())).collect();
    for (example, split) in examples.iter().zip(&splits) {
        by_split.entry(*split).or_default().push(example);
    }
    let label_counts = count_labels(recipe, &label_names, &by_split)?;
    let leakage = check_leakage(recipe, &by_split, &examples, &splits)?;
    let (rationale_digests, located) = locate_rationales(recipe, &examples)?;
    let sentence_digests = check_written_sentences(recipe)?;
    let split_of: HashMap<&str, Split> = examples.iter().zip(&splits).map(|(e, s)| (e.id.as_str(), *s)).collect();

    let build_dir = recipe.build_dir();
    let staging = recipe.dir.join(unique_name(".build.tmp"));
    let result = write_outputs(&staging, &by_split).and_then(|outputs| {
        let rationale_coverage = if recipe.recipe.rationales.is_empty() {
            None
        } else {
            Some(RationaleOutput {
                output: write_rationales(&staging, &located, &split_of)?,
                coverage: coverage(&label_names, &examples, &located),
            })
        };
        let documents = by_split
            .iter()
            .map(|(split, rows)| {
                (*split, rows.iter().map(|e| e.document.clone()).collect::<BTreeSet<_>>().into_iter().collect())
            })
            .collect();
        let manifest = Manifest {
            dataset: recipe.recipe.name.clone(),
            tool: format!("clause-data {}", env!("CARGO_PKG_VERSION")),
            recipe: FileDigest { path: crate::recipe::RECIPE_FILE.to_string(), sha256: recipe.sha256.clone() },
            labels: label_names.clone(),
            seed: match recipe.recipe.split {
                SplitRule::Stratified { seed, .. } | SplitRule::HeldOut { seed, .. } => Some(seed),
                SplitRule::Documents { .. } => None,
            },
            split: recipe.recipe.split.clone(),
            sources: collected.sources,
            annotations: collected.annotations,
            rationales: rationale_digests,
            sentences: sentence_digests,
            rationale_coverage,
            outputs,
            documents,
            label_counts,
            leakage,
        };
        let json = serde_json::to_string_pretty(&manifest)
            .map_err(|err| Error::Io { path: staging.join(MANIFEST_FILE), source: std::io::Error::other(err) })?;
        let manifest_path = staging.join(MANIFEST_FILE);
        std::fs::write(&manifest_path, format!("{json}\n")).map_err(Error::io(&manifest_path))?;
        replace_dir(&staging, &build_dir)?;
        Ok(manifest)
    });
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(err) => {
            // Nothing half-written is left behind.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(err);
        }
    };
    let mut stats = compute_stats(
        &label_names,
        by_split.iter().flat_map(|(s, rows)| rows.iter().map(move |e| (*s, *e))),
        manifest.leakage.clone(),
    );
    stats.rationales = manifest.rationale_coverage.as_ref().map(|r| r.coverage.clone());
    Ok(BuildOutcome { build_dir, manifest, stats })
}

/// The examples with their labels in the recipe's order, refused when there
/// are none or when two share an id.
fn checked_examples(recipe: &LoadedRecipe, mut examples: Vec<Example>) -> Result<Vec<Example>> {
    let label_order: HashMap<&str, usize> =
        recipe.recipe.labels.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect();
    for example in &mut examples {
        example.labels.sort_by_key(|l| label_order.get(l.as_str()).copied().unwrap_or(usize::MAX));
    }
    if examples.is_empty() {
        return Err(Error::EmptyDataset { recipe: recipe.path.clone() });
    }
    check_unique_ids(&examples)?;
    Ok(examples)
}

/// Examples per label per split; every label must have a training example.
fn count_labels(
    recipe: &LoadedRecipe,
    label_names: &[String],
    by_split: &BTreeMap<Split, Vec<&Example>>,
) -> Result<BTreeMap<Split, BTreeMap<String, usize>>> {
    let mut label_counts: BTreeMap<Split, BTreeMap<String, usize>> = BTreeMap::new();
    for (split, rows) in by_split {
        let counts = label_counts.entry(*split).or_default();
        for label in label_names {
            counts.insert(label.clone(), rows.iter().filter(|e| e.labels.contains(label)).count());
        }
    }
    for label in label_names {
        if label_counts[&Split::Train][label] == 0 {
            let total = label_counts.values().map(|c| c[label]).sum();
            return Err(Error::NoTrainingExample { recipe: recipe.path.clone(), label: label.clone(), total });
        }
    }
    Ok(label_counts)
}

/// Texts shared between splits and articles across splits; an error when
/// the recipe's policy fails the build on shared texts.
fn check_leakage(
    recipe: &LoadedRecipe,
    by_split: &BTreeMap<Split, Vec<&Example>>,
    examples: &[Example],
    splits: &[Split],
) -> Result<LeakageReport> {
    let policy = &recipe.recipe.leakage;
    let rows =
        by_split.iter().flat_map(|(split, rows)| rows.iter().map(move |e| (*split, e.id.as_str(), e.text.as_str())));
    let mut leakage = find_leakage(rows, policy.min_chars, policy.examples);
    leakage.articles_across_splits = articles_across_splits(examples, splits);
    if policy.fail && leakage.leaked() > 0 {
        let examples = leakage.shared.iter().take(3).map(|s| format!("{:?}", s.text)).collect::<Vec<_>>().join("; ");
        return Err(Error::Leakage {
            recipe: recipe.path.clone(),
            count: leakage.leaked(),
            min_chars: policy.min_chars,
            examples,
        });
    }
    Ok(leakage)
}

/// The recipe's rationale files, each span found in its example's text,
/// with the files' digests for the manifest.
fn locate_rationales(recipe: &LoadedRecipe, examples: &[Example]) -> Result<(Vec<FileDigest>, Vec<Located>)> {
    let by_id: HashMap<&str, &Example> = examples.iter().map(|e| (e.id.as_str(), e)).collect();
    let known = recipe.recipe.label_names();
    let files = crate::rationales::read_all(&recipe.dir, &recipe.recipe.rationales, &known, &by_id)?;
    let digests = file_digests(&recipe.dir, &recipe.recipe.rationales)?;
    Ok((digests, files.into_iter().flat_map(|(_, located)| located).collect()))
}

/// The digest of each of `files` (relative to the recipe directory `dir`),
/// as the manifest records it.
fn file_digests(dir: &Path, files: &[String]) -> Result<Vec<FileDigest>> {
    files
        .iter()
        .map(|relative| Ok(FileDigest { path: relative.clone(), sha256: sha256_file(&dir.join(relative))? }))
        .collect()
}

/// The digests of the recipe's written-sentence files, each read and
/// checked, so that a bad line fails the build rather than training.
fn check_written_sentences(recipe: &LoadedRecipe) -> Result<Vec<FileDigest>> {
    crate::written::read_all(&recipe.dir, &recipe.recipe.sentences, &recipe.recipe.label_names())?;
    file_digests(&recipe.dir, &recipe.recipe.sentences)
}

/// The recipe's written training sentences, all files in order, read from
/// the files the build checked.
pub fn read_written_sentences(recipe: &LoadedRecipe) -> Result<Vec<crate::written::WrittenSentence>> {
    let files = crate::written::read_all(&recipe.dir, &recipe.recipe.sentences, &recipe.recipe.label_names())?;
    Ok(files.into_iter().flat_map(|(_, sentences)| sentences).collect())
}

fn collect(recipe: &LoadedRecipe, root: &Path) -> Result<Collected> {
    let known = recipe.recipe.label_names();
    // Examples per source, in recipe order; drafts are filled in once their
    // annotations are joined.
    let mut per_source: Vec<Vec<Example>> = Vec::new();
    let mut sources = Vec::new();
    let mut drafts = Vec::new();
    for (index, source) in recipe.recipe.sources.iter().enumerate() {
        let path = root.join(source.path());
        if !path.exists() {
            return Err(Error::MissingSource {
                recipe: recipe.path.clone(),
                source_path: source.path().to_string(),
                root: root.to_path_buf(),
            });
        }
        let mismatch = |actual: String| Error::ChecksumMismatch {
            recipe: recipe.path.clone(),
            path: path.clone(),
            expected: source.sha256().to_string(),
            actual,
        };
        let mut files = Vec::new();
        let (format, examples) = match source {
            SourceSpec::Claudette { levels, ignore, .. } => {
                let rules = TagRules { labels: &known, levels, ignore };
                let corpus = read_claudette(&path, &rules)?;
                let digest = tree_digest(&corpus.files);
                if digest != source.sha256() {
                    return Err(mismatch(digest));
                }
                files = corpus.files.into_iter().map(|(path, sha256)| FileDigest { path, sha256 }).collect();
                ("claudette", corpus.examples)
            }
            SourceSpec::Draft { document, .. } => {
                let bytes = std::fs::read(&path).map_err(Error::io(&path))?;
                let actual = sha256_hex(&bytes);
                if actual != source.sha256() {
                    return Err(mismatch(actual));
                }
                // A Word, PDF or HTML draft is read into the text `clause
                // segment` reads of it, so annotation ids match its output.
                let format = clause_read::Format::of_path(&path).unwrap_or(clause_read::Format::Text);
                let draft = clause_read::Draft::from_bytes(&bytes, format, &path.display().to_string())?;
                let document = document.clone().unwrap_or_else(|| document_name_from_path(&path));
                drafts.push((index, path.clone(), segment(&document, draft.text())));
                ("draft", Vec::new())
            }
            SourceSpec::Table { text_column, labels_column, label_delimiter, id_column, document_column, .. } => {
                let actual = sha256_file(&path)?;
                if actual != source.sha256() {
                    return Err(mismatch(actual));
                }
                let columns = TableColumns {
                    text: text_column,
                    labels: labels_column,
                    delimiter: label_delimiter,
                    id: id_column.as_deref(),
                    document: document_column.as_deref(),
                };
                ("table", read_table(&path, &columns, &known)?)
            }
        };
        sources.push(SourceDigest {
            path: source.path().to_string(),
            format: format.to_string(),
            sha256: source.sha256().to_string(),
            files,
            examples: examples.len(),
        });
        per_source.push(examples);
    }
    let (annotated, annotations) = annotate(recipe, &known, &drafts)?;
    for ((index, _, _), examples) in drafts.iter().zip(annotated) {
        sources[*index].examples = examples.len();
        per_source[*index] = examples;
    }
    Ok(Collected { examples: per_source.into_iter().flatten().collect(), sources, annotations })
}

/// Join segmented provisions with the recipe's annotation files; returns the
/// examples of each draft, in order, and the digests of the annotation files.
fn annotate(
    recipe: &LoadedRecipe,
    known: &BTreeSet<String>,
    drafts: &[(usize, PathBuf, Vec<crate::segment::Provision>)],
) -> Result<(Vec<Vec<Example>>, Vec<FileDigest>)> {
    let mut digests = Vec::new();
    let mut by_id: HashMap<String, (PathBuf, Annotation)> = HashMap::new();
    let mut in_order: Vec<(PathBuf, String)> = Vec::new();
    for relative in &recipe.recipe.annotations {
        let path = recipe.dir.join(relative);
        digests.push(FileDigest { path: relative.clone(), sha256: sha256_file(&path)? });
        for annotation in read_annotations(&path, known)? {
            if let Some((first_path, first)) = by_id.get(&annotation.id) {
                return Err(Error::DuplicateAnnotation {
                    path: path.clone(),
                    line: annotation.line,
                    id: annotation.id.clone(),
                    first: format!("{}:{}", first_path.display(), first.line),
                });
            }
            in_order.push((path.clone(), annotation.id.clone()));
            by_id.insert(annotation.id.clone(), (path.clone(), annotation));
        }
    }
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for (_, path, provisions) in drafts {
        let mut examples = Vec::with_capacity(provisions.len());
        for provision in provisions {
            let Some((annotation_path, annotation)) = by_id.get(&provision.id) else {
                return Err(Error::Unannotated {
                    source_path: path.clone(),
                    line: provision.line,
                    id: provision.id.clone(),
                    annotations: if recipe.recipe.annotations.is_empty() {
                        "(the recipe lists no annotation files)".to_string()
                    } else {
                        recipe.recipe.annotations.join(", ")
                    },
                });
            };
            let actual = text_hash(&provision.text);
            if actual != annotation.text_hash {
                return Err(Error::StaleAnnotation {
                    path: annotation_path.clone(),
                    line: annotation.line,
                    id: provision.id.clone(),
                    expected: annotation.text_hash.clone(),
                    actual,
                });
            }
            used.insert(provision.id.clone());
            examples.push(Example {
                id: provision.id.clone(),
                document: provision.document.clone(),
                text: provision.text.clone(),
                labels: annotation.labels.clone(),
                article: provision.article.clone(),
                paragraph: provision.paragraph.clone(),
                title: provision.title.clone(),
                chapter: provision.chapter.clone(),
                origin: format!("{}:{}", path.display(), provision.line),
            });
        }
        out.push(examples);
    }
    if let Some((path, id)) = in_order.iter().find(|(_, id)| !used.contains(id)) {
        let line = by_id.get(id).map_or(0, |(_, a)| a.line);
        return Err(Error::UnknownAnnotation { path: path.clone(), line, id: id.clone() });
    }
    Ok((out, digests))
}

fn check_unique_ids(examples: &[Example]) -> Result<()> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for example in examples {
        if let Some(first) = seen.insert(&example.id, &example.origin) {
            return Err(Error::DuplicateId {
                path: PathBuf::from(&example.origin),
                id: example.id.clone(),
                first: first.to_string(),
            });
        }
    }
    Ok(())
}

fn assign_splits(recipe: &LoadedRecipe, examples: &[Example]) -> Result<Vec<Split>> {
    match &recipe.recipe.split {
        SplitRule::Documents { validation, test } => {
            let present: BTreeSet<&str> = examples.iter().map(|e| e.document.as_str()).collect();
            for (field, names) in [("validation", validation), ("test", test)] {
                if let Some(missing) = names.iter().find(|d| !present.contains(d.as_str())) {
                    return Err(Error::UnknownDocument {
                        recipe: recipe.path.clone(),
                        field: field.to_string(),
                        document: missing.clone(),
                    });
                }
            }
            let validation: BTreeSet<&str> = validation.iter().map(String::as_str).collect();
            let test: BTreeSet<&str> = test.iter().map(String::as_str).collect();
            let documents: Vec<&str> = examples.iter().map(|e| e.document.as_str()).collect();
            Ok(split_by_document(&documents, &validation, &test))
        }
        SplitRule::Stratified { seed, train, validation, test } => {
            // Texts identical after normalisation form one group, so they can
            // never end up in two splits.
            let all: Vec<usize> = (0..examples.len()).collect();
            let groups = group_examples(examples, &all, false);
            let (labels, label_count) = label_indices(recipe, examples);
            Ok(iterative_stratification(&groups, &labels, label_count, [*train, *validation, *test], *seed))
        }
        SplitRule::HeldOut { seed, validation, test } => {
            let present: BTreeSet<&str> = examples.iter().map(|e| e.document.as_str()).collect();
            if let Some(missing) = test.iter().find(|d| !present.contains(d.as_str())) {
                return Err(Error::UnknownDocument {
                    recipe: recipe.path.clone(),
                    field: "test".to_string(),
                    document: missing.clone(),
                });
            }
            let held_out: BTreeSet<&str> = test.iter().map(String::as_str).collect();
            let rest: Vec<usize> =
                (0..examples.len()).filter(|&i| !held_out.contains(examples[i].document.as_str())).collect();
            // Whole articles (and identical texts) go to one split.
            let groups = group_examples(examples, &rest, true);
            let (labels, label_count) = label_indices(recipe, examples);
            let mut splits =
                iterative_stratification(&groups, &labels, label_count, [1.0 - validation, *validation, 0.0], *seed);
            for (split, example) in splits.iter_mut().zip(examples) {
                if held_out.contains(example.document.as_str()) {
                    *split = Split::Test;
                }
            }
            Ok(splits)
        }
    }
}

/// Each example's labels as indices into the recipe's label set, and the
/// number of labels.
fn label_indices(recipe: &LoadedRecipe, examples: &[Example]) -> (Vec<Vec<usize>>, usize) {
    let label_index: HashMap<&str, usize> =
        recipe.recipe.labels.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect();
    let labels = examples
        .iter()
        .map(|e| e.labels.iter().filter_map(|l| label_index.get(l.as_str()).copied()).collect())
        .collect();
    (labels, label_index.len())
}

/// The Parquet schema of every split.
pub const COLUMNS: [&str; 8] = ["id", "document", "text", "labels", "article", "paragraph", "title", "chapter"];

fn write_outputs(staging: &Path, by_split: &BTreeMap<Split, Vec<&Example>>) -> Result<BTreeMap<Split, OutputDigest>> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(Error::io(staging))?;
    }
    std::fs::create_dir_all(staging).map_err(Error::io(staging))?;
    let mut outputs = BTreeMap::new();
    for (split, rows) in by_split {
        let file = format!("{}.parquet", split.name());
        let path = staging.join(&file);
        let mut frame = examples_frame(rows).map_err(|source| Error::Polars { path: path.clone(), source })?;
        let handle = std::fs::File::create(&path).map_err(Error::io(&path))?;
        ParquetWriter::new(handle)
            .with_compression(ParquetCompression::Zstd(None))
            .set_parallel(false)
            .finish(&mut frame)
            .map_err(|source| Error::Polars { path: path.clone(), source })?;
        outputs.insert(*split, OutputDigest { path: file, sha256: sha256_file(&path)?, rows: rows.len() });
    }
    Ok(outputs)
}

/// Write `rationales.parquet` into `staging`.
fn write_rationales(staging: &Path, located: &[Located], split_of: &HashMap<&str, Split>) -> Result<OutputDigest> {
    let file = RATIONALES_FILE;
    let path = staging.join(file);
    let polars_error = |source| Error::Polars { path: path.clone(), source };
    let strings = |name: &str, values: Vec<&str>| Column::new(name.into(), values);
    let offsets = |name: &str, values: Vec<u64>| Column::new(name.into(), values);
    let split_name = |id: &str| split_of.get(id).map_or("", |s| s.name());
    let mut frame = DataFrame::new(
        located.len(),
        vec![
            strings("id", located.iter().map(|l| l.id.as_str()).collect()),
            strings("split", located.iter().map(|l| split_name(&l.id)).collect()),
            strings("label", located.iter().map(|l| l.label.as_str()).collect()),
            offsets("start", located.iter().map(|l| l.start as u64).collect()),
            offsets("end", located.iter().map(|l| l.end as u64).collect()),
        ],
    )
    .map_err(polars_error)?;
    let handle = std::fs::File::create(&path).map_err(Error::io(&path))?;
    ParquetWriter::new(handle)
        .with_compression(ParquetCompression::Zstd(None))
        .set_parallel(false)
        .finish(&mut frame)
        .map_err(polars_error)?;
    Ok(OutputDigest { path: file.to_string(), sha256: sha256_file(&path)?, rows: located.len() })
}

/// A polars frame of examples with the columns of [`COLUMNS`].
pub fn examples_frame(rows: &[&Example]) -> PolarsResult<DataFrame> {
    let strings = |name: &str, f: &dyn Fn(&Example) -> &str| {
        Column::new(name.into(), rows.iter().map(|e| f(e)).collect::<Vec<_>>())
    };
    let optional = |name: &str, f: &dyn Fn(&Example) -> Option<&str>| {
        Column::new(name.into(), rows.iter().map(|e| f(e)).collect::<Vec<_>>())
    };
    let labels: Vec<Series> = rows.iter().map(|e| Series::new("".into(), e.labels.as_slice())).collect();
    // An empty split would otherwise get a list of nulls, not of strings.
    let labels = Series::new("labels".into(), labels).cast(&DataType::List(Box::new(DataType::String)))?;
    DataFrame::new(
        rows.len(),
        vec![
            strings("id", &|e| &e.id),
            strings("document", &|e| &e.document),
            strings("text", &|e| &e.text),
            labels.into_column(),
            optional("article", &|e| e.article.as_deref()),
            optional("paragraph", &|e| e.paragraph.as_deref()),
            optional("title", &|e| e.title.as_deref()),
            optional("chapter", &|e| e.chapter.as_deref()),
        ],
    )
}

/// Put `staging` where `target` is, so that readers see the old build or the
/// new one, never a mix.
fn replace_dir(staging: &Path, target: &Path) -> Result<()> {
    if target.exists() {
        let old = target.with_file_name(unique_name(".build.old"));
        std::fs::rename(target, &old).map_err(Error::io(target))?;
        std::fs::rename(staging, target).map_err(Error::io(target))?;
        std::fs::remove_dir_all(&old).map_err(Error::io(&old))?;
    } else {
        std::fs::rename(staging, target).map_err(Error::io(target))?;
    }
    Ok(())
}

/// A name no other build, in this process or another, is using.
fn unique_name(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// Read the manifest of a built dataset.
pub fn read_manifest(recipe: &LoadedRecipe) -> Result<Manifest> {
    let path = recipe.build_dir().join(MANIFEST_FILE);
    if !path.exists() {
        return Err(Error::NotBuilt { path, recipe_dir: recipe.dir.clone() });
    }
    let text = read_utf8(&path)?;
    serde_json::from_str(&text).map_err(|err| Error::Malformed {
        path: path.clone(),
        line: err.line().to_string(),
        message: format!("not a manifest: {err}"),
    })
}

/// Whether a build is older than the recipe or its annotation files (edited
/// by hand or by `clause dataset annotate`), so that it must be rebuilt
/// before use. Sources are not re-hashed: the recipe pins their sha256.
pub fn is_stale(recipe: &LoadedRecipe, manifest: &Manifest) -> bool {
    if manifest.recipe.sha256 != recipe.sha256 {
        return true;
    }
    // Annotation, rationale and written-sentence files: the same list, each
    // file unchanged.
    [
        (&manifest.annotations, &recipe.recipe.annotations),
        (&manifest.rationales, &recipe.recipe.rationales),
        (&manifest.sentences, &recipe.recipe.sentences),
    ]
    .iter()
    .any(|(built, listed)| {
        built.iter().map(|d| d.path.as_str()).ne(listed.iter().map(String::as_str))
            || built.iter().any(|digest| {
                sha256_file(&recipe.dir.join(&digest.path)).map_or(true, |sha256| sha256 != digest.sha256)
            })
    })
}

/// Read the built rationale spans back (`rationales.parquet`): each span's
/// provision, label and byte range in its text. A recipe without rationales
/// has none.
pub fn read_rationale_spans(recipe: &LoadedRecipe) -> Result<Vec<crate::rationales::Located>> {
    let path = recipe.build_dir().join(RATIONALES_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let frame = crate::table::read_frame(&path)?;
    let polars = |source| Error::Polars { path: path.clone(), source };
    let strings = |name: &str| -> Result<Vec<String>> {
        let column = frame.column(name).map_err(polars)?;
        Ok(column.str().map_err(polars)?.iter().map(|s| s.unwrap_or_default().to_string()).collect())
    };
    let offsets = |name: &str| -> Result<Vec<usize>> {
        let column = frame.column(name).map_err(polars)?;
        Ok(column.u64().map_err(polars)?.iter().map(|v| v.unwrap_or_default() as usize).collect())
    };
    let (ids, labels, starts, ends) = (strings("id")?, strings("label")?, offsets("start")?, offsets("end")?);
    Ok(ids
        .into_iter()
        .zip(labels)
        .zip(starts.into_iter().zip(ends))
        .map(|((id, label), (start, end))| crate::rationales::Located { id, label, start, end })
        .collect())
}

/// Read one built split back into examples.
pub fn read_split(recipe: &LoadedRecipe, split: Split) -> Result<Vec<Example>> {
    let path = recipe.build_dir().join(format!("{}.parquet", split.name()));
    if !path.exists() {
        return Err(Error::NotBuilt { path, recipe_dir: recipe.dir.clone() });
    }
    let frame = crate::table::read_frame(&path)?;
    let known = recipe.recipe.label_names();
    let columns =
        TableColumns { text: "text", labels: "labels", delimiter: ",", id: Some("id"), document: Some("document") };
    let mut examples = examples_from_frame(&frame, &path, &columns, &known)?;
    let optional = |name: &str| -> Result<Vec<Option<String>>> {
        let column = frame.column(name).map_err(|source| Error::Polars { path: path.clone(), source })?;
        let strings = column.str().map_err(|source| Error::Polars { path: path.clone(), source })?;
        Ok(strings.iter().map(|s| s.map(str::to_string)).collect())
    };
    let (articles, paragraphs, titles, chapters) =
        (optional("article")?, optional("paragraph")?, optional("title")?, optional("chapter")?);
    for (index, example) in examples.iter_mut().enumerate() {
        example.article = articles[index].clone();
        example.paragraph = paragraphs[index].clone();
        example.title = titles[index].clone();
        example.chapter = chapters[index].clone();
    }
    Ok(examples)
}
