//! Every bad input the data crate knows of: a clear error naming the file and
//! line or field, exit code 1, no panic, and nothing half-written.

use std::path::{Path, PathBuf};

use crate::util::{Run, clause_in, listing, read, sha256, write};

const DRAFT_ONE: &str = "Article 1 – Search\n1. Each Party shall empower its authorities to search computer systems.\n2. Such powers shall be subject to judicial review.\nArticle 2\nRequests for assistance shall be kept confidential.\nArticle 3\nEach Party shall establish the interception of computer data as a criminal offence.\n";
const DRAFT_TWO: &str = "Article 1\nEach Party shall criminalise illegal access to computer systems.\nArticle 2\nThis Protocol enters into force on ratification.\n";

/// A project with one recipe, `datasets/x`, and a data root, `data/`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn recipe_dir(&self) -> PathBuf {
        self.root().join("datasets/x")
    }

    fn data(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join("data").join(relative);
        write(&path, contents);
        path
    }

    fn file(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.recipe_dir().join(relative);
        write(&path, contents);
        path
    }

    fn run(&self, args: &[&str]) -> Run {
        clause_in(self.root(), args)
    }

    fn build(&self) -> Run {
        self.run(&["dataset", "build", "datasets/x", "--data-root", "data"])
    }

    /// A failing build leaves no build directory and no staging directory.
    #[track_caller]
    fn fails_cleanly(&self, needles: &[&str]) {
        let existed = self.recipe_dir().join("build").exists();
        let before = existed.then(|| read(&self.recipe_dir().join("build/manifest.json")));
        self.build().fails_with(needles);
        let names = listing(&self.recipe_dir());
        assert!(names.iter().all(|n| !n.starts_with(".build")), "staging left behind: {names:?}");
        match before {
            Some(manifest) => {
                assert_eq!(manifest, read(&self.recipe_dir().join("build/manifest.json")), "previous build changed")
            }
            None => assert!(!self.recipe_dir().join("build").exists(), "a build directory was written"),
        }
    }

    /// Two drafts under `treaties/`, annotated, split by document: `t1` is
    /// train, `t2` test. Returns the recipe text so cases can alter it.
    fn drafts(&self) -> String {
        let one = self.data("treaties/t1.md", DRAFT_ONE);
        let two = self.data("treaties/t2.md", DRAFT_TWO);
        let labels = [
            ("t1:art1.1", "surveillance"),
            ("t1:art1.2", "safeguard"),
            ("t1:art2", "secrecy"),
            ("t1:art3", "criminalisation"),
            ("t2:art1", "criminalisation"),
            ("t2:art2", "-"),
        ];
        for (name, path) in [("t1", &one), ("t2", &two)] {
            let template = self.run(&["segment", "--format", "annotations", path.to_str().expect("utf-8")]);
            let mut annotated = String::from("# id\thash\tlabels\ttext\n");
            for line in template.ok().lines() {
                let mut fields: Vec<&str> = line.split('\t').collect();
                fields[2] = labels.iter().find(|(id, _)| *id == fields[0]).map(|(_, l)| *l).expect("known id");
                annotated.push_str(&fields.join("\t"));
                annotated.push('\n');
            }
            self.file(&format!("annotations/{name}.tsv"), annotated);
        }
        let recipe = format!(
            r#"name = "x"
description = "fixture"
annotations = ["annotations/t1.tsv", "annotations/t2.tsv"]

[[labels]]
name = "surveillance"
description = "s"
[[labels]]
name = "safeguard"
description = "g"
[[labels]]
name = "secrecy"
description = "c"

[[sources]]
format = "draft"
path = "treaties/t1.md"
sha256 = "{}"
[[sources]]
format = "draft"
path = "treaties/t2.md"
sha256 = "{}"

[split]
method = "documents"
validation = []
test = ["t2"]
"#,
            sha256(&one),
            sha256(&two)
        )
        .replace(
            "[[labels]]\nname = \"secrecy\"",
            "[[labels]]\nname = \"criminalisation\"\ndescription = \"k\"\n[[labels]]\nname = \"secrecy\"",
        );
        self.file("dataset.toml", &recipe);
        recipe
    }

    fn annotation_line(&self, file: &str, id: &str) -> usize {
        read(&self.recipe_dir().join("annotations").join(file))
            .lines()
            .position(|l| l.starts_with(&format!("{id}\t")))
            .expect("annotated")
            + 1
    }

    fn edit_annotation(&self, file: &str, id: &str, edit: impl Fn(&str) -> String) {
        let path = self.recipe_dir().join("annotations").join(file);
        let text = read(&path);
        let edited: Vec<String> =
            text.lines().map(|l| if l.starts_with(&format!("{id}\t")) { edit(l) } else { l.to_string() }).collect();
        write(&path, edited.join("\n") + "\n");
    }
}

#[test]
fn the_fixture_builds() {
    let fixture = Fixture::new();
    fixture.drafts();
    let out = fixture.build().ok().to_string();
    assert!(out.contains("surveillance"), "{out}");
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&fixture.recipe_dir().join("build/manifest.json"))).expect("json");
    assert_eq!(manifest["outputs"]["train"]["rows"], 4);
    assert_eq!(manifest["outputs"]["test"]["rows"], 2);
    assert_eq!(manifest["outputs"]["validation"]["rows"], 0);
}

#[test]
fn unknown_label_in_an_annotation() {
    let fixture = Fixture::new();
    fixture.drafts();
    fixture.edit_annotation("t1.tsv", "t1:art2", |l| l.replace("\tsecrecy\t", "\tsecrecy,surveilance\t"));
    let line = fixture.annotation_line("t1.tsv", "t1:art2");
    fixture.fails_cleanly(&[&format!("t1.tsv:{line}"), "unknown label `surveilance`"]);
}

#[test]
fn missing_source() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    fixture.file("dataset.toml", recipe.replace("treaties/t2.md", "treaties/t3.md"));
    fixture.fails_cleanly(&["`treaties/t3.md` not found", "data root", "dataset.toml"]);
}

#[test]
fn source_whose_sha256_no_longer_matches() {
    let fixture = Fixture::new();
    fixture.drafts();
    fixture.data("treaties/t2.md", DRAFT_TWO.replace("ratification", "signature"));
    fixture.fails_cleanly(&["t2.md has sha256", "expects", "the source changed"]);
}

#[test]
fn annotation_whose_id_matches_no_provision() {
    let fixture = Fixture::new();
    fixture.drafts();
    let path = fixture.recipe_dir().join("annotations/t2.tsv");
    let mut text = read(&path);
    text.push_str("t2:art9\t0123456789abcdef\t-\tgone\n");
    write(&path, &text);
    let line = text.lines().count();
    fixture.fails_cleanly(&[&format!("t2.tsv:{line}"), "`t2:art9` matches no provision"]);
}

#[test]
fn provision_whose_text_changed_since_it_was_annotated() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    let old_sha = sha256(&fixture.root().join("data/treaties/t1.md"));
    let edited = fixture.data("treaties/t1.md", DRAFT_ONE.replace("judicial review", "administrative review"));
    fixture.file("dataset.toml", recipe.replace(&old_sha, &sha256(&edited)));
    let line = fixture.annotation_line("t1.tsv", "t1:art1.2");
    fixture.fails_cleanly(&[&format!("t1.tsv:{line}"), "`t1:art1.2` changed since it was annotated"]);
}

#[test]
fn provision_without_annotation_and_annotation_given_twice() {
    let fixture = Fixture::new();
    fixture.drafts();
    let path = fixture.recipe_dir().join("annotations/t2.tsv");
    let text = read(&path);
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("t2:art2\t")).collect();
    write(&path, kept.join("\n") + "\n");
    fixture.fails_cleanly(&["t2.md:4", "`t2:art2` has no annotation"]);

    write(&path, format!("{text}{}\n", text.lines().find(|l| l.starts_with("t2:art1\t")).expect("line")));
    let first = fixture.annotation_line("t2.tsv", "t2:art1");
    fixture.fails_cleanly(&[
        &format!("t2.tsv:{}", text.lines().count() + 1),
        "annotated again",
        &format!("t2.tsv:{first}"),
    ]);
}

#[test]
fn label_with_no_training_example() {
    let fixture = Fixture::new();
    fixture.drafts();
    // Without t1:art3, criminalisation occurs only in t2, the test document.
    fixture.edit_annotation("t1.tsv", "t1:art3", |l| l.replace("\tcriminalisation\t", "\t-\t"));
    fixture.fails_cleanly(&["label `criminalisation` has no example in the train split", "dataset.toml"]);
}

#[test]
fn a_previous_build_survives_a_failed_one() {
    let fixture = Fixture::new();
    fixture.drafts();
    fixture.build().ok();
    fixture.data("treaties/t2.md", DRAFT_TWO.replace("ratification", "signature"));
    fixture.fails_cleanly(&["the source changed"]);
}

#[test]
fn unknown_document_in_a_fixed_split() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    fixture.file("dataset.toml", recipe.replace("test = [\"t2\"]", "test = [\"t7\"]"));
    fixture.fails_cleanly(&["[split] test names document `t7`"]);
}

#[test]
fn malformed_recipes() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    let sha_one = sha256(&fixture.root().join("data/treaties/t1.md"));
    fixture.file("dataset.toml", recipe.replace(&sha_one, "abc"));
    fixture.fails_cleanly(&["dataset.toml", "sources[0].sha256 `abc`"]);
    fixture.file("dataset.toml", recipe.replacen("description = \"fixture\"", "description = fixture", 1));
    fixture.fails_cleanly(&["dataset.toml: line 2"]);
    fixture.file("dataset.toml", recipe.replacen("[split]", "colour = \"blue\"\n[split]", 1));
    fixture.fails_cleanly(&["dataset.toml: line", "colour"]);
}

#[test]
fn non_utf8_source() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    let sha_two = sha256(&fixture.root().join("data/treaties/t2.md"));
    let bad = fixture.data("treaties/t2.md", b"Article 1\nCaf\xe9.\n");
    fixture.file("dataset.toml", recipe.replace(&sha_two, &sha256(&bad)));
    fixture.fails_cleanly(&["t2.md:2", "not valid UTF-8"]);
}

/// A recipe around one table source.
fn table_recipe(fixture: &Fixture, file: &str, contents: &str) {
    let path = fixture.data(file, contents);
    fixture.file(
        "dataset.toml",
        format!(
            r#"name = "x"
description = "table fixture"
[[labels]]
name = "ltd"
description = "l"
[[sources]]
format = "table"
path = "{file}"
sha256 = "{}"
[split]
method = "documents"
validation = []
test = []
"#,
            sha256(&path)
        ),
    );
}

#[test]
fn malformed_csv_and_jsonl_lines() {
    let fixture = Fixture::new();
    table_recipe(&fixture, "t.csv", "text,labels\nWe are not liable.,ltd\nFine,\"ltd\",extra\n");
    fixture.fails_cleanly(&["t.csv:3", "expected 2 fields"]);
    table_recipe(
        &fixture,
        "t.jsonl",
        "{\"text\": \"We are not liable.\", \"labels\": [\"ltd\"]}\n{\"text\": \"x\", \"labels\": \n",
    );
    fixture.fails_cleanly(&["t.jsonl:2", "invalid JSON"]);
    table_recipe(&fixture, "u.jsonl", "{\"text\": \"We are not liable.\", \"labels\": [\"ltd\", \"arbitration\"]}\n");
    fixture.fails_cleanly(&["u.jsonl:row 1 column `labels`", "unknown label `arbitration`"]);
    table_recipe(&fixture, "v.jsonl", "{\"body\": \"We are not liable.\", \"labels\": []}\n");
    fixture.fails_cleanly(&["v.jsonl", "column `text`: missing"]);
}

#[test]
fn empty_dataset() {
    let fixture = Fixture::new();
    table_recipe(&fixture, "t.csv", "text,labels\n");
    fixture.fails_cleanly(&["dataset.toml", "the dataset is empty"]);
}

#[test]
fn table_sources_build() {
    let fixture = Fixture::new();
    table_recipe(&fixture, "t.csv", "text,labels\nWe are not liable for anything.,ltd\nHello there.,\n");
    fixture.build().ok();
    let stats = fixture.run(&["dataset", "stats", "datasets/x", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(stats.ok()).expect("json");
    assert_eq!(stats["splits"][0]["rows"], 2);
    assert_eq!(stats["splits"][0]["label_counts"][0], serde_json::json!(["ltd", 1]));
}

/// A recipe around one CLAUDETTE-layout source.
fn claudette_recipe(fixture: &Fixture, sentences: &str, tags: &str) {
    fixture.data("tos/sentences/Acme.txt", sentences);
    fixture.data("tos/tags/Acme.txt", tags);
    fixture.file(
        "dataset.toml",
        r#"name = "x"
description = "claudette fixture"
[[labels]]
name = "ltd"
description = "l"
[[sources]]
format = "claudette"
path = "tos"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
levels = [2, 3]
ignore = ["countrym"]
[split]
method = "documents"
validation = []
test = []
"#,
    );
}

#[test]
fn sentence_and_tag_files_of_different_lengths() {
    let fixture = Fixture::new();
    claudette_recipe(&fixture, "We are not liable.\nHello.\nBye.\n", "ltd2\n\n");
    fixture.fails_cleanly(&["sentences/Acme.txt has 3 lines", "tags/Acme.txt has 2"]);
}

#[test]
fn unknown_tag_and_directory_checksum() {
    let fixture = Fixture::new();
    claudette_recipe(&fixture, "We are not liable.\nYou agree to arbitrate.\n", "ltd2\na3\n");
    fixture.fails_cleanly(&["tags/Acme.txt:2", "unknown label `a`"]);
    claudette_recipe(&fixture, "We are not liable.\nYou agree to arbitrate.\n", "ltd2 countrym\nltd1\n");
    fixture.fails_cleanly(&["tos has sha256", "expects 0000"]);
}

#[test]
fn leakage_can_fail_a_build() {
    let fixture = Fixture::new();
    let sentence = "We may terminate your account at any time without notice.";
    let path = fixture.data(
        "t.jsonl",
        format!(
            "{{\"text\": \"{sentence}\", \"labels\": [\"ltd\"], \"doc\": \"A\"}}\n{{\"text\": \"{}\", \"labels\": [], \"doc\": \"B\"}}\n",
            sentence.to_uppercase()
        ),
    );
    let recipe = format!(
        r#"name = "x"
description = "leak"
[[labels]]
name = "ltd"
description = "l"
[[sources]]
format = "table"
path = "t.jsonl"
sha256 = "{}"
document_column = "doc"
[split]
method = "documents"
validation = []
test = ["B"]
[leakage]
min_chars = 20
fail = true
"#,
        sha256(&path)
    );
    fixture.file("dataset.toml", &recipe);
    fixture.fails_cleanly(&["1 texts of at least 20 characters occur in more than one split", "We may terminate"]);
    fixture.file("dataset.toml", recipe.replace("fail = true", "fail = false"));
    let out = fixture.build().ok().to_string();
    assert!(out.contains("0 identical, 1 near-identical"), "{out}");
}

#[test]
fn stats_before_build_and_recipe_not_found() {
    let fixture = Fixture::new();
    fixture.drafts();
    fixture.run(&["dataset", "stats", "datasets/x"]).fails_with(&["manifest.json not found", "clause dataset build"]);
    fixture.run(&["dataset", "build", "datasets/nope"]).fails_with(&["datasets/nope/dataset.toml"]);
}

#[test]
fn rationales_are_built_with_the_splits_and_a_bad_span_names_its_line() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    let rationales = "# id\tlabel\tspan\nt1:art1.1\tsurveillance\tempower its authorities to search\n\
                      t1:art1.2\tsafeguard\tsubject to judicial   review\n";
    fixture.file("rationales/t1.tsv", rationales);
    let with_rationales = recipe.replace(
        "annotations = [\"annotations/t1.tsv\", \"annotations/t2.tsv\"]",
        "annotations = [\"annotations/t1.tsv\", \"annotations/t2.tsv\"]\nrationales = [\"rationales/t1.tsv\"]",
    );
    fixture.file("dataset.toml", &with_rationales);
    fixture.build().ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&fixture.recipe_dir().join("build/manifest.json"))).expect("manifest");
    let coverage = &manifest["rationale_coverage"]["coverage"];
    assert_eq!(coverage["spans"], 2, "{manifest}");
    // Five labels over the two drafts, two of them with a span.
    let per_label = coverage["per_label"].as_array().expect("per label");
    let (labels, with_span) = per_label
        .iter()
        .fold((0, 0), |(a, b), row| (a + row[1].as_u64().expect("n"), b + row[2].as_u64().expect("with span")));
    assert_eq!((labels, with_span), (5, 2));
    assert_eq!(manifest["rationale_coverage"]["output"]["rows"], 2);
    assert!(fixture.recipe_dir().join("build/rationales.parquet").is_file());
    let stats = fixture.run(&["dataset", "stats", "datasets/x"]);
    assert!(stats.ok().contains("labels with a rationale span: 2 of 5"), "{}", stats.ok());
    // An edited rationale file makes the build stale, so train and eval rebuild it.
    let recipe = clause_data::recipe::LoadedRecipe::load(&fixture.recipe_dir()).expect("recipe");
    let built = clause_data::build::read_manifest(&recipe).expect("manifest");
    assert!(!clause_data::build::is_stale(&recipe, &built));
    fixture.file("rationales/t1.tsv", format!("{rationales}# reviewed\n"));
    assert!(clause_data::build::is_stale(&recipe, &built));

    // A span that is not in its provision's text, or a label the provision
    // does not carry, fails the build naming the file and line.
    fixture.file("rationales/t1.tsv", format!("{rationales}t1:art2\tsecrecy\tkept secret\n"));
    fixture.fails_cleanly(&["rationales/t1.tsv:4", "does not occur in the text of `t1:art2`"]);
    fixture.file("rationales/t1.tsv", format!("{rationales}t1:art2\tsurveillance\tkept confidential\n"));
    fixture.fails_cleanly(&["rationales/t1.tsv:4", "does not carry `surveillance`"]);
}

#[test]
fn written_sentences_are_checked_by_the_build_and_a_bad_line_names_it() {
    let fixture = Fixture::new();
    let recipe = fixture.drafts();
    let sentences = "labels\trule\tsentence\nsurveillance,secrecy\t20\tThe provider shall keep the order to itself.\n\
                     none\tnear-miss\tThe Parties shall meet once a year.\n";
    fixture.file("sentences/w.tsv", sentences);
    let with_sentences = recipe.replace(
        "annotations = [\"annotations/t1.tsv\", \"annotations/t2.tsv\"]",
        "annotations = [\"annotations/t1.tsv\", \"annotations/t2.tsv\"]\nsentences = [\"sentences/w.tsv\"]",
    );
    fixture.file("dataset.toml", &with_sentences);
    fixture.build().ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&read(&fixture.recipe_dir().join("build/manifest.json"))).expect("manifest");
    assert_eq!(manifest["sentences"][0]["path"], "sentences/w.tsv", "{manifest}");
    assert_eq!(manifest["sentences"][0]["sha256"], sha256(&fixture.recipe_dir().join("sentences/w.tsv")));
    // Training reads them back as the build checked them.
    let recipe = clause_data::recipe::LoadedRecipe::load(&fixture.recipe_dir()).expect("recipe");
    let written = clause_data::build::read_written_sentences(&recipe).expect("sentences");
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].labels, ["secrecy", "surveillance"]);
    // An edited file makes the build stale.
    let built = clause_data::build::read_manifest(&recipe).expect("manifest");
    assert!(!clause_data::build::is_stale(&recipe, &built));
    fixture.file("sentences/w.tsv", format!("{sentences}# reviewed\n"));
    assert!(clause_data::build::is_stale(&recipe, &built));
    // A label the recipe lacks, or a line without three fields, fails the
    // build naming the file and line; the earlier build stays.
    fixture.file("sentences/w.tsv", format!("{sentences}speech\t9\tNo one may publish it.\n"));
    fixture.fails_cleanly(&["sentences/w.tsv:4", "speech"]);
    fixture.file("sentences/w.tsv", format!("{sentences}secrecy\tNo rule given.\n"));
    fixture.fails_cleanly(&["sentences/w.tsv:4", "expected 3 tab-separated fields"]);
    fixture.file("dataset.toml", with_sentences.replace("sentences/w.tsv", "sentences/missing.tsv"));
    fixture.fails_cleanly(&["sentences/missing.tsv"]);
}
