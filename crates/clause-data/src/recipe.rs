//! Dataset recipes: `datasets/<name>/dataset.toml`.
//!
//! A recipe declares the label set, the sources (paths under a data root,
//! each pinned by sha256), the project's annotation files (paths relative to
//! the recipe), how to split, and what counts as leakage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clause_segment::input::Unit;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text::{describe_toml_error, read_utf8};

/// The file name of a recipe inside its directory.
pub const RECIPE_FILE: &str = "dataset.toml";

/// A parsed recipe.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The dataset's name.
    pub name: String,
    /// One paragraph on what the dataset is.
    pub description: String,
    /// The label set, in the order models will use.
    pub labels: Vec<LabelSpec>,
    /// Where the examples come from.
    pub sources: Vec<SourceSpec>,
    /// Annotation files, relative to the recipe directory, that label the
    /// provisions of `draft` sources.
    #[serde(default)]
    pub annotations: Vec<String>,
    /// Rationale files, relative to the recipe directory: for each label of
    /// an annotated provision, the words that carry it
    /// ([`crate::rationales`]).
    #[serde(default)]
    pub rationales: Vec<String>,
    /// Files of sentences written for training from the guidelines, each
    /// with the labels it carries alone ([`crate::written`]): added to the
    /// training split only, when training asks for them.
    #[serde(default)]
    pub sentences: Vec<String>,
    /// How examples are assigned to train / validation / test.
    pub split: SplitRule,
    /// What counts as a text shared between splits, and whether it fails the build.
    #[serde(default)]
    pub leakage: LeakagePolicy,
    /// Cross-validation folds the recipe names (`clause train
    /// --cross-validate`); without them, folds of whole instruments are
    /// formed by size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_validation: Option<CrossValidationSpec>,
    /// What one example is (`"provision"` or `"sentence"`), recorded in the
    /// models trained on the dataset; without it, see [`Recipe::unit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
}

/// Cross-validation folds named document by document, such as a corpus's
/// own folds. Documents in no fold (a benchmark's test documents) are left
/// out of cross-validation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrossValidationSpec {
    /// The documents of each fold.
    pub folds: Vec<Vec<String>>,
}

/// One label of the label set.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSpec {
    /// The label as it appears in data and model outputs.
    pub name: String,
    /// One line on what it means.
    pub description: String,
}

/// A source of examples.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// The CLAUDETTE layout: `sentences/X.txt` and line-aligned `tags/X.txt`.
    Claudette {
        /// Directory under the data root.
        path: String,
        /// Digest of the sentence and tag files (see [`crate::hash::tree_digest`]).
        sha256: String,
        /// Tag levels that make a sentence positive for a category (2 and 3
        /// mean "potentially" and "clearly unfair").
        levels: Vec<u8>,
        /// Tag categories that are not labels of this dataset and are skipped.
        #[serde(default)]
        ignore: Vec<String>,
    },
    /// A treaty or legislative text (Markdown or text, or a Word, PDF or
    /// HTML file read as `clause segment` reads it), segmented into
    /// provisions and labelled by the recipe's annotation files.
    Draft {
        /// File under the data root.
        path: String,
        /// sha256 of the file.
        sha256: String,
        /// Document name used in provision ids; defaults to the file stem
        /// before its first `.`.
        #[serde(default)]
        document: Option<String>,
    },
    /// A labelled table (CSV, JSONL or Parquet, by extension).
    Table {
        /// File under the data root.
        path: String,
        /// sha256 of the file.
        sha256: String,
        /// The column holding the text.
        #[serde(default = "default_text_column")]
        text_column: String,
        /// The column holding the labels: a list of strings, or a string of
        /// labels separated by `label_delimiter`.
        #[serde(default = "default_labels_column")]
        labels_column: String,
        /// Separator of a string labels column.
        #[serde(default = "default_label_delimiter")]
        label_delimiter: String,
        /// Column with example ids; row numbers are used without it.
        #[serde(default)]
        id_column: Option<String>,
        /// Column naming each row's document (used by document splits).
        #[serde(default)]
        document_column: Option<String>,
    },
}

fn default_text_column() -> String {
    "text".to_string()
}
fn default_labels_column() -> String {
    "labels".to_string()
}
fn default_label_delimiter() -> String {
    ",".to_string()
}

impl SourceSpec {
    /// The source's path under the data root.
    pub fn path(&self) -> &str {
        match self {
            Self::Claudette { path, .. } | Self::Draft { path, .. } | Self::Table { path, .. } => path,
        }
    }
    /// The sha256 the recipe pins.
    pub fn sha256(&self) -> &str {
        match self {
            Self::Claudette { sha256, .. } | Self::Draft { sha256, .. } | Self::Table { sha256, .. } => sha256,
        }
    }
}

/// How examples are split.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitRule {
    /// Whole documents go to fixed splits; every other document is train.
    Documents {
        /// Documents of the validation split.
        validation: Vec<String>,
        /// Documents of the test split.
        test: Vec<String>,
    },
    /// Seeded iterative stratification for multi-label data (Sechidis et al.
    /// 2011), over groups of examples whose normalised texts are identical, so
    /// that no such text is shared between splits.
    Stratified {
        /// Seed of the tie-breaking generator.
        seed: u64,
        /// Fraction of examples for train.
        train: f64,
        /// Fraction for validation.
        validation: f64,
        /// Fraction for test.
        test: f64,
    },
    /// Whole documents form the test split, as a user's unseen draft would;
    /// of the others, seeded iterative stratification puts a `validation`
    /// share in validation, whole articles at a time (and identical texts
    /// together), so no article has paragraphs in both training and
    /// validation.
    HeldOut {
        /// Seed of the tie-breaking generator.
        seed: u64,
        /// Fraction of the remaining examples for validation.
        validation: f64,
        /// Documents of the test split.
        test: Vec<String>,
    },
}

/// Leakage policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LeakagePolicy {
    /// Shared texts shorter than this (in characters, after normalisation)
    /// are boilerplate ("1.", "Privacy") and reported separately, not as leakage.
    #[serde(default = "default_min_chars")]
    pub min_chars: usize,
    /// Fail the build when any text at least `min_chars` long is shared.
    #[serde(default)]
    pub fail: bool,
    /// How many examples the manifest lists.
    #[serde(default = "default_examples")]
    pub examples: usize,
}

fn default_min_chars() -> usize {
    40
}
fn default_examples() -> usize {
    10
}

impl Default for LeakagePolicy {
    fn default() -> Self {
        Self { min_chars: default_min_chars(), fail: false, examples: default_examples() }
    }
}

/// A recipe with the paths needed to build it.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    /// The recipe.
    pub recipe: Recipe,
    /// Its directory (`datasets/<name>`).
    pub dir: PathBuf,
    /// Its file (`datasets/<name>/dataset.toml`).
    pub path: PathBuf,
    /// The sha256 of the recipe file.
    pub sha256: String,
}

impl LoadedRecipe {
    /// Read and validate the recipe in `dir` (or the recipe file `dir` itself).
    pub fn load(dir: &Path) -> Result<Self> {
        let (dir, path) = if dir.is_file() {
            (dir.parent().unwrap_or(Path::new(".")).to_path_buf(), dir.to_path_buf())
        } else {
            (dir.to_path_buf(), dir.join(RECIPE_FILE))
        };
        let text = read_utf8(&path)?;
        let recipe = Recipe::parse(&path, &text)?;
        Ok(Self { sha256: crate::hash::sha256_hex(text.as_bytes()), recipe, dir, path })
    }

    /// The build directory: `datasets/<name>/build`.
    pub fn build_dir(&self) -> PathBuf {
        self.dir.join("build")
    }

    /// The data root used when none is given: `../shared/data` beside the
    /// project, the project being the directory that holds `datasets/`.
    pub fn default_data_root(&self) -> PathBuf {
        let project = self.dir.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        project.join("..").join("shared").join("data")
    }
}

impl Recipe {
    /// What one example is: as the recipe says, else sentences when every
    /// source is a CLAUDETTE corpus (which labels sentence by sentence),
    /// else provisions (drafts are segmented into provisions; a table of
    /// sentences says `unit = "sentence"`).
    pub fn unit(&self) -> Unit {
        self.unit.unwrap_or_else(|| {
            let claudette = self.sources.iter().all(|s| matches!(s, SourceSpec::Claudette { .. }));
            if claudette && !self.sources.is_empty() { Unit::Sentence } else { Unit::Provision }
        })
    }

    /// Parse and validate a recipe's text, read from `path` (named in errors);
    /// [`LoadedRecipe::load`] reads the file and calls this.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let recipe: Recipe = toml::from_str(text)
            .map_err(|err| Error::Recipe { path: path.to_path_buf(), message: describe_toml_error(text, &err) })?;
        recipe.validate(path)?;
        Ok(recipe)
    }

    /// The label names as a set.
    pub fn label_names(&self) -> BTreeSet<String> {
        self.labels.iter().map(|l| l.name.clone()).collect()
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let fail = |message: String| Err(Error::Recipe { path: path.to_path_buf(), message });
        if self.labels.is_empty() {
            return fail("`labels` is empty: declare at least one [[labels]] entry".to_string());
        }
        let mut seen = BTreeSet::new();
        for (index, label) in self.labels.iter().enumerate() {
            let valid =
                !label.name.is_empty() && label.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return fail(format!("labels[{index}].name `{}`: use letters, digits, `_` or `-`", label.name));
            }
            if !seen.insert(&label.name) {
                return fail(format!("labels[{index}].name `{}` is declared twice", label.name));
            }
        }
        if self.sources.is_empty() {
            return fail("`sources` is empty: declare at least one [[sources]] entry".to_string());
        }
        for (index, source) in self.sources.iter().enumerate() {
            let sha = source.sha256();
            if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
                return fail(format!("sources[{index}].sha256 `{sha}` is not a 64-digit hex sha256"));
            }
            if Path::new(source.path()).is_absolute() || source.path().split('/').any(|part| part == "..") {
                return fail(format!(
                    "sources[{index}].path `{}` must be relative to the data root, without `..`",
                    source.path()
                ));
            }
        }
        if let SplitRule::Stratified { train, validation, test, .. } = self.split {
            let parts = [train, validation, test];
            if parts.iter().any(|p| !p.is_finite() || *p < 0.0) || (parts.iter().sum::<f64>() - 1.0).abs() > 1e-6 {
                return fail(format!(
                    "[split] fractions train = {train}, validation = {validation}, test = {test} must be non-negative and sum to 1"
                ));
            }
        }
        if let Some(spec) = &self.cross_validation {
            if spec.folds.len() < 2 || spec.folds.iter().any(Vec::is_empty) {
                return fail("[cross_validation] folds must list at least 2 folds, each naming documents".to_string());
            }
            let mut named = BTreeSet::new();
            if let Some(twice) = spec.folds.iter().flatten().find(|d| !named.insert(d.as_str())) {
                return fail(format!("[cross_validation] document `{twice}` is in two folds"));
            }
            let test = match &self.split {
                SplitRule::Documents { test, .. } | SplitRule::HeldOut { test, .. } => test.as_slice(),
                SplitRule::Stratified { .. } => &[],
            };
            if let Some(held) = test.iter().find(|d| named.contains(d.as_str())) {
                return fail(format!(
                    "[cross_validation] document `{held}` is in the test split, which cross-validation must leave out"
                ));
            }
        }
        if let SplitRule::HeldOut { validation, test, .. } = &self.split {
            if !validation.is_finite() || *validation <= 0.0 || *validation >= 1.0 {
                return fail(format!("[split] validation = {validation} must be a fraction between 0 and 1"));
            }
            if test.is_empty() {
                return fail("[split] test must name at least one document to hold out".to_string());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_validation_folds_name_each_document_once_and_not_the_test_ones() {
        let base = format!(
            "name = \"x\"\ndescription = \"d\"\n[[labels]]\nname = \"a\"\ndescription = \"d\"\n[[sources]]\nformat = \"table\"\npath = \"t.csv\"\nsha256 = \"{SHA}\"\n[split]\nmethod = \"documents\"\nvalidation = [\"V\"]\ntest = [\"T\"]\n"
        );
        let parse = |extra: &str| Recipe::parse(Path::new("dataset.toml"), &format!("{base}{extra}"));
        let recipe = parse("[cross_validation]\nfolds = [[\"A\", \"B\"], [\"C\"]]\n").expect("valid");
        assert_eq!(recipe.cross_validation.map(|c| c.folds.len()), Some(2));
        assert!(parse("").expect("none").cross_validation.is_none());
        for (extra, needle) in [
            ("[cross_validation]\nfolds = [[\"A\"]]\n", "at least 2 folds"),
            ("[cross_validation]\nfolds = [[\"A\"], []]\n", "at least 2 folds"),
            ("[cross_validation]\nfolds = [[\"A\"], [\"A\"]]\n", "`A` is in two folds"),
            ("[cross_validation]\nfolds = [[\"A\"], [\"T\"]]\n", "`T` is in the test split"),
            ("[cross_validation]\nfold = [[\"A\"]]\n", "fold"),
        ] {
            let err = parse(extra).expect_err(needle).to_string();
            assert!(err.contains(needle) && err.contains("dataset.toml"), "{err}");
        }
    }

    fn write(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join(RECIPE_FILE);
        std::fs::write(&path, body).expect("write");
        path
    }

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn a_claudette_corpus_is_of_sentences_unless_the_recipe_says_otherwise() {
        let recipe = |sources: &str, extra: &str| {
            let text = format!(
                "name = \"x\"\ndescription = \"d\"\n{extra}[[labels]]\nname = \"a\"\ndescription = \"d\"\n{sources}\
                 [split]\nmethod = \"documents\"\nvalidation = [\"V\"]\ntest = [\"T\"]\n"
            );
            Recipe::parse(Path::new("dataset.toml"), &text).expect("valid")
        };
        let claudette =
            format!("[[sources]]\nformat = \"claudette\"\npath = \"ToS\"\nsha256 = \"{SHA}\"\nlevels = [2, 3]\n");
        let draft = format!("[[sources]]\nformat = \"draft\"\npath = \"a.md\"\nsha256 = \"{SHA}\"\n");
        let table = format!("[[sources]]\nformat = \"table\"\npath = \"t.csv\"\nsha256 = \"{SHA}\"\n");
        assert_eq!(recipe(&claudette, "").unit(), Unit::Sentence);
        assert_eq!(recipe(&draft, "").unit(), Unit::Provision);
        assert_eq!(recipe(&format!("{claudette}{draft}"), "").unit(), Unit::Provision);
        assert_eq!(recipe(&table, "").unit(), Unit::Provision);
        assert_eq!(recipe(&table, "unit = \"sentence\"\n").unit(), Unit::Sentence);
        let bad = format!(
            "name = \"x\"\ndescription = \"d\"\nunit = \"page\"\n[[labels]]\nname = \"a\"\ndescription = \"d\"\n{table}\
             [split]\nmethod = \"documents\"\nvalidation = []\ntest = []\n"
        );
        let error = Recipe::parse(Path::new("dataset.toml"), &bad).expect_err("unknown unit").to_string();
        assert!(error.contains("line 3") && error.contains("page"), "{error}");
    }

    #[test]
    fn parses_a_stratified_recipe() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &format!(
                r#"name = "x"
description = "d"
annotations = ["a.tsv"]
[[labels]]
name = "secrecy"
description = "keeps things hidden"
[[sources]]
format = "draft"
path = "treaties/x.md"
sha256 = "{SHA}"
[split]
method = "stratified"
seed = 7
train = 0.7
validation = 0.15
test = 0.15
"#
            ),
        );
        let loaded = LoadedRecipe::load(dir.path()).expect("load");
        assert_eq!(loaded.recipe.labels[0].name, "secrecy");
        assert!(matches!(loaded.recipe.split, SplitRule::Stratified { seed: 7, .. }));
        assert_eq!(loaded.recipe.leakage.min_chars, 40);
    }

    #[test]
    fn errors_name_the_line_or_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("name = \"x\"\ndescription = 3\n", "line 2"),
            (
                &format!(
                    "name = \"x\"\ndescription = \"d\"\nlabels = []\n[[sources]]\nformat = \"draft\"\npath = \"a\"\nsha256 = \"{SHA}\"\n[split]\nmethod = \"documents\"\nvalidation = []\ntest = []\n"
                ),
                "`labels` is empty",
            ),
            (
                "name = \"x\"\ndescription = \"d\"\n[[labels]]\nname = \"a\"\ndescription = \"\"\n[[sources]]\nformat = \"draft\"\npath = \"a\"\nsha256 = \"abc\"\n[split]\nmethod = \"documents\"\nvalidation = []\ntest = []\n",
                "sources[0].sha256",
            ),
            (
                &format!(
                    "name = \"x\"\ndescription = \"d\"\n[[labels]]\nname = \"a\"\ndescription = \"\"\n[[sources]]\nformat = \"draft\"\npath = \"a\"\nsha256 = \"{SHA}\"\n[split]\nmethod = \"stratified\"\nseed = 1\ntrain = 0.5\nvalidation = 0.1\ntest = 0.1\n"
                ),
                "sum to 1",
            ),
        ];
        for (body, needle) in cases {
            let path = write(dir.path(), body);
            let err = LoadedRecipe::load(dir.path()).expect_err("must fail").to_string();
            assert!(err.contains(&path.display().to_string()) && err.contains(needle), "{err}");
        }
    }
}
