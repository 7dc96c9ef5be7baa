//! `clause dataset build` and `stats` on the two real datasets.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::util::{clause_in, copy_recipe, data_root, listing, read, sha256, treaty_files};

fn manifest(recipe: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&read(&recipe.join("build/manifest.json"))).expect("manifest is JSON")
}

fn build(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let recipe = copy_recipe(dir, name);
    let root = data_root();
    let run = clause_in(
        dir,
        &["dataset", "build", &format!("datasets/{name}"), "--data-root", root.to_str().expect("utf-8")],
    );
    let out = run.ok().to_string();
    (recipe, out)
}

#[test]
fn tos_unfair_splits_by_company() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (recipe, out) = build(dir.path(), "tos-unfair");
    assert!(out.contains("label") && out.contains("validation") && out.contains("examples"), "{out}");
    let manifest = manifest(&recipe);
    let test_companies = ["Amazon", "Evernote", "Linkedin", "Snap", "Uber"];
    assert_eq!(manifest["documents"]["test"], serde_json::json!(test_companies));
    assert_eq!(manifest["outputs"]["test"]["rows"], 1294);
    let total: u64 =
        ["train", "validation", "test"].iter().map(|s| manifest["outputs"][s]["rows"].as_u64().expect("rows")).sum();
    assert_eq!(total, 17_383);
    for split in ["train", "validation"] {
        let documents = manifest["documents"][split].as_array().expect("documents");
        for company in test_companies {
            assert!(!documents.iter().any(|d| d == company), "{company} leaked into {split}");
        }
    }
    assert_eq!(manifest["documents"]["train"].as_array().expect("train").len(), 40);
    // Label totals as the corpus README counts them (levels 2 and 3).
    let expected =
        [("a", 64), ("ch", 224), ("cr", 105), ("j", 95), ("law", 82), ("ltd", 498), ("ter", 285), ("use", 119)];
    for (label, count) in expected {
        let sum: u64 = ["train", "validation", "test"]
            .iter()
            .map(|s| manifest["label_counts"][s][label].as_u64().expect("count"))
            .sum();
        assert_eq!(sum, count, "{label}");
        assert!(manifest["label_counts"]["train"][label].as_u64().expect("count") > 0, "{label}");
    }
    // The manifest's output hashes are the files' hashes.
    for split in ["train", "validation", "test"] {
        let file = recipe.join("build").join(format!("{split}.parquet"));
        assert_eq!(manifest["outputs"][split]["sha256"], sha256(&file), "{split}");
    }
    assert_eq!(
        listing(&recipe.join("build")),
        ["manifest.json", "test.parquet", "train.parquet", "validation.parquet"]
    );
}

#[test]
fn treaty_risk_holds_every_provision_with_labels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (recipe, _) = build(dir.path(), "treaty-risk");
    let manifest = manifest(&recipe);
    let rows: u64 =
        ["train", "validation", "test"].iter().map(|s| manifest["outputs"][s]["rows"].as_u64().expect("rows")).sum();
    // Every provision that `clause segment` finds in the treaty texts the
    // recipe names (its `[[sources]]` paths).
    let recipe_text = read(&recipe.join("dataset.toml"));
    let sources: Vec<PathBuf> = treaty_files()
        .into_iter()
        .filter(|file| {
            let name = file.file_name().and_then(|n| n.to_str()).expect("utf-8 name");
            recipe_text.contains(&format!("path = \"treaties/{name}\""))
        })
        .collect();
    assert!(sources.len() >= 8, "the recipe names {} treaty files", sources.len());
    let mut provisions = 0;
    for file in sources {
        let run = clause_in(dir.path(), &["segment", "--format", "jsonl", file.to_str().expect("utf-8")]);
        provisions += run.ok().lines().count();
    }
    assert_eq!(rows, provisions as u64);
    let labels = manifest["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), 7);
    for label in labels {
        let label = label.as_str().expect("label");
        for split in ["train", "validation", "test"] {
            let n = manifest["label_counts"][split][label].as_u64().expect("count");
            assert!(n > 0 || split != "train", "{label} has no training example");
        }
    }
    // Every label of every provision has a rationale span.
    let coverage = &manifest["rationale_coverage"]["coverage"];
    for row in coverage["per_label"].as_array().expect("coverage per label") {
        assert_eq!(row[1], row[2], "labels without a rationale span: {row}");
    }
    assert_eq!(manifest["seed"], 20261206);
    // Test is the held-out instruments, whole; no article straddles splits,
    // and validation holds about 15 % of the rest.
    let held_out = ["coe-laundering-convention-CETS198", "european-extradition-protocol3-CETS209"];
    for document in held_out {
        let in_test = manifest["documents"]["test"].as_array().expect("test documents").iter().any(|d| d == document);
        let elsewhere = ["train", "validation"]
            .iter()
            .any(|s| manifest["documents"][s].as_array().expect("documents").iter().any(|d| d == document));
        assert!(in_test && !elsewhere, "{document}");
    }
    assert_eq!(manifest["leakage"]["articles_across_splits"], 0);
    let rows_of = |s: &str| manifest["outputs"][s]["rows"].as_f64().expect("rows");
    let validation_share = rows_of("validation") / (rows_of("train") + rows_of("validation"));
    assert!((validation_share - 0.15).abs() < 0.02, "{manifest}");

    let stats = clause_in(dir.path(), &["dataset", "stats", "datasets/treaty-risk", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(stats.ok()).expect("stats JSON");
    let train = &stats["splits"][0];
    assert_eq!(train["split"], "train");
    assert_eq!(train["rows"], manifest["outputs"]["train"]["rows"]);
    let counts: BTreeMap<String, u64> = train["label_counts"]
        .as_array()
        .expect("counts")
        .iter()
        .map(|pair| (pair[0].as_str().expect("label").to_string(), pair[1].as_u64().expect("n")))
        .collect();
    for (label, n) in counts {
        assert_eq!(manifest["label_counts"]["train"][&label], n, "{label}");
    }
    let table = clause_in(dir.path(), &["dataset", "stats", "datasets/treaty-risk"]);
    assert!(table.ok().contains("text length") && table.stdout.contains("shared between splits"), "{}", table.stdout);
}

/// Lower-cased word sequences of `n` words in `text`.
fn word_grams(text: &str, n: usize) -> std::collections::HashSet<Vec<String>> {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.windows(n).map(<[String]>::to_vec).collect()
}

#[test]
fn treaty_risk_written_sentences_paraphrase_neither_the_treaties_nor_the_probe_suite() {
    // The build records every written-sentence file the recipe lists.
    let dir = tempfile::tempdir().expect("tempdir");
    let (recipe, _) = build(dir.path(), "treaty-risk");
    let listed = manifest(&recipe)["sentences"].as_array().expect("sentences in the manifest").clone();
    assert!(listed.len() >= 3, "{listed:?}");
    let treaties: String = treaty_files().iter().map(|f| read(f)).collect::<Vec<_>>().join("\n");
    let (treaty5, treaty6) = (word_grams(&treaties, 5), word_grams(&treaties, 6));
    let probe = read(&recipe.join("probes/buried-clauses.tsv"));
    let probe5: std::collections::HashSet<Vec<String>> =
        probe.lines().skip(1).flat_map(|line| word_grams(line, 5)).filter(|g| !treaty5.contains(g)).collect();
    let mut sentences = 0;
    for file in &listed {
        let path = recipe.join(file["path"].as_str().expect("path"));
        assert_eq!(file["sha256"], sha256(&path), "{}", path.display());
        for (k, line) in read(&path).lines().enumerate().skip(1) {
            let sentence = line.rsplit('\t').next().expect("a sentence");
            sentences += 1;
            let copied: Vec<_> = word_grams(sentence, 6).into_iter().filter(|g| treaty6.contains(g)).collect();
            assert!(copied.is_empty(), "{}:{}: treaty wording {copied:?}", path.display(), k + 1);
            // Stock treaty wording aside, nothing of the probe suite.
            let probed: Vec<_> = word_grams(sentence, 5).into_iter().filter(|g| probe5.contains(g)).collect();
            assert!(probed.is_empty(), "{}:{}: probe wording {probed:?}", path.display(), k + 1);
        }
    }
    assert!(sentences >= 250, "{sentences} written sentences");
}

#[test]
fn builds_are_byte_identical() {
    for name in ["treaty-risk", "tos-unfair"] {
        let first = tempfile::tempdir().expect("tempdir");
        let second = tempfile::tempdir().expect("tempdir");
        let (a, _) = build(first.path(), name);
        let (b, _) = build(second.path(), name);
        for file in ["manifest.json", "train.parquet", "validation.parquet", "test.parquet"] {
            assert_eq!(sha256(&a.join("build").join(file)), sha256(&b.join("build").join(file)), "{name}/{file}");
        }
        // Rebuilding in place replaces the build and changes nothing.
        let before = read(&a.join("build/manifest.json"));
        let root = data_root();
        clause_in(
            first.path(),
            &["-q", "dataset", "build", &format!("datasets/{name}"), "--data-root", root.to_str().expect("utf-8")],
        )
        .ok();
        assert_eq!(before, read(&a.join("build/manifest.json")), "{name}");
        assert_eq!(listing(&a), listing(&b), "{name}: no staging directories left behind");
    }
}

#[test]
fn the_data_root_defaults_beside_the_project_and_follows_the_environment() {
    // A copy of the project layout: <tmp>/project/datasets/x, <tmp>/shared/data.
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("project");
    let recipe = copy_recipe(&project, "treaty-risk");
    let shared = dir.path().join("shared").join("data");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::os::unix::fs::symlink(data_root().join("treaties"), shared.join("treaties")).expect("symlink");
    clause_in(&project, &["-q", "dataset", "build", "datasets/treaty-risk"]).ok();
    assert!(recipe.join("build/manifest.json").exists());

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_clause"))
        .args(["-q", "dataset", "build", recipe.to_str().expect("utf-8")])
        .current_dir(elsewhere.path())
        .env("CLAUSE_DATA_ROOT", data_root())
        .output()
        .expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// A recipe's `draft` source may be a Word or HTML file: it is read as
/// `clause segment` reads it, so annotations written from `segment
/// --format annotations` of the file join, and its examples are the
/// provisions of the Markdown it was made from.
#[test]
fn draft_sources_may_be_word_and_html_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let fixtures = crate::util::project_root().join("crates/clause-read/tests/fixtures");
    let markdown = crate::util::project_root().join("datasets/examples/cybercrime-chapter.md");
    let expected: Vec<String> = clause_in(dir, &["segment", "--format", "jsonl", markdown.to_str().expect("utf-8")])
        .ok()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["id"].as_str().expect("id").to_string())
        .collect();
    for file in ["cybercrime-chapter.docx", "cybercrime-chapter.html"] {
        let root = dir.join(format!("data-{file}"));
        std::fs::create_dir_all(&root).expect("mkdir");
        let source = root.join(file);
        std::fs::copy(fixtures.join(file), &source).expect("copy");
        let recipe = dir.join(format!("recipe-{file}"));
        std::fs::create_dir_all(recipe.join("annotations")).expect("mkdir");
        let template = clause_in(dir, &["segment", "--format", "annotations", source.to_str().expect("utf-8")]);
        let annotations: String = template
            .ok()
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let label = if fields[0].ends_with(":art28.1") { "surveillance" } else { "-" };
                format!("{}\t{}\t{label}\t{}\n", fields[0], fields[1], fields[3])
            })
            .collect();
        crate::util::write(&recipe.join("annotations/a.tsv"), annotations);
        crate::util::write(
            &recipe.join("dataset.toml"),
            format!(
                "name = \"x\"\ndescription = \"d\"\nannotations = [\"annotations/a.tsv\"]\n\
                 [[labels]]\nname = \"surveillance\"\ndescription = \"d\"\n\
                 [[sources]]\nformat = \"draft\"\npath = \"{file}\"\nsha256 = \"{}\"\n\
                 [split]\nmethod = \"documents\"\nvalidation = []\ntest = []\n",
                sha256(&source)
            ),
        );
        let recipe_arg = recipe.to_str().expect("utf-8");
        clause_in(dir, &["dataset", "build", recipe_arg, "--data-root", root.to_str().expect("utf-8")]).ok();
        let stats: serde_json::Value =
            serde_json::from_str(clause_in(dir, &["dataset", "stats", recipe_arg, "--json"]).ok()).expect("json");
        let train = &stats["splits"][0];
        assert_eq!((&train["split"], &train["rows"]), (&"train".into(), &expected.len().into()), "{file}: {stats}");
        assert_eq!(train["label_counts"][0], serde_json::json!(["surveillance", 1]), "{file}: {stats}");
    }
}
