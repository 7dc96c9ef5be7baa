//! The reviewer's commands end to end (classify, eval, diff, report, dataset
//! annotate, and the retraining loop) on a tiny model that the tests train on
//! drafts they write, from the tiny base model's twelve words.

use std::path::{Path, PathBuf};

use crate::util::{Run, clause_in, listing, read, sha256, write};

/// Three drafts (train, validation, test documents) in the tiny vocabulary:
/// "search"/"seize" mean surveillance, "secret"/"confidential" secrecy.
const DRAFTS: [(&str, &str); 3] = [
    (
        "alpha",
        "Article 1\n\n1. the party shall search the data\n2. the state may seize data\n\
         3. the party shall keep it secret\n4. the state shall\n\n\
         Article 2\n\n1. the party may search and keep confidential\n2. the data shall\n\
         3. the state may seize the secret data\n4. the party may\n\n\
         Article 3\n\n1. the state shall search\n2. the party shall keep confidential\n\
         3. the party may seize\n4. the data may\n",
    ),
    (
        "beta",
        "Article 1\n\n1. the party may search data\n2. the state shall keep secret\n\
         3. the data may\n4. the state may seize and keep confidential\n",
    ),
    (
        "gamma",
        "Article 1\n\n1. the state may search\n2. the party may keep confidential\n\
         3. the party shall\n4. the state shall seize the secret data\n",
    ),
];

/// Labels of a tiny-vocabulary provision, by its words.
fn labels_of(text: &str) -> Vec<&'static str> {
    let mut labels = Vec::new();
    if text.contains("search") || text.contains("seize") {
        labels.push("surveillance");
    }
    if text.contains("secret") || text.contains("confidential") {
        labels.push("secrecy");
    }
    labels
}

/// Tokens the recipe's own `train.toml` sets the tiny model to read, short
/// of the default 128, so that tests see the recipe's settings taken.
const RECIPE_MAX_LENGTH: usize = 96;

/// A project with the tiny base model in `base/`, the drafts under
/// `data/`, and a recipe `datasets/x` whose annotation files label every
/// provision by [`labels_of`] and whose `train.toml` sets
/// [`RECIPE_MAX_LENGTH`].
fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("base")).expect("mkdir");
    clause_train::fixtures::tiny_base(&dir.join("base")).expect("tiny base");
    let mut sources = String::new();
    let mut annotation_files = Vec::new();
    for (name, text) in DRAFTS {
        let path = dir.join(format!("data/{name}.md"));
        write(&path, text);
        sources.push_str(&format!(
            "[[sources]]\nformat = \"draft\"\npath = \"{name}.md\"\nsha256 = \"{}\"\n",
            sha256(&path)
        ));
        let template = clause_in(dir, &["segment", "--format", "annotations", &path.display().to_string()]);
        let mut lines = String::new();
        for line in template.ok().lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let labels = labels_of(fields[3]);
            let labels = if labels.is_empty() { "-".to_string() } else { labels.join(",") };
            lines.push_str(&format!("{}\t{}\t{labels}\t{}\n", fields[0], fields[1], fields[3]));
        }
        write(&dir.join(format!("datasets/x/annotations/{name}.tsv")), lines);
        annotation_files.push(format!("\"annotations/{name}.tsv\""));
    }
    write(&dir.join("datasets/x/train.toml"), format!("max_length = {RECIPE_MAX_LENGTH}\n"));
    write(
        &dir.join("datasets/x/dataset.toml"),
        format!(
            "name = \"x\"\ndescription = \"tiny\"\nannotations = [{}]\n\
             [[labels]]\nname = \"surveillance\"\ndescription = \"search and seizure words\"\n\
             [[labels]]\nname = \"secrecy\"\ndescription = \"secrecy words\"\n{sources}\
             [split]\nmethod = \"documents\"\nvalidation = [\"beta\"]\ntest = [\"gamma\"]\n",
            annotation_files.join(", ")
        ),
    );
}

fn train(dir: &Path, out: &str) -> Run {
    let run = clause_in(
        dir,
        &[
            "train",
            "datasets/x",
            "--base",
            "base",
            "--out",
            out,
            "--data-root",
            "data",
            "--epochs",
            "30",
            "--batch-size",
            "4",
            "--learning-rate",
            "0.005",
        ],
    );
    run.ok();
    run
}

/// A trained project, made once per run of the test binary (in Cargo's
/// temporary directory for integration tests, so nothing outlives `target/`).
fn trained() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("review");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear the previous run");
        }
        project(&dir);
        train(&dir, "model");
        dir
    })
}

fn jsonl(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn path(dir: &Path, relative: &str) -> String {
    dir.join(relative).display().to_string()
}

#[test]
fn classify_a_draft_in_order_with_every_field() {
    let dir = trained();
    let run = clause_in(dir, &["classify", "--model", "model", "data/alpha.md", "--format", "jsonl"]);
    let records = jsonl(run.ok());
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 12);
    assert_eq!(ids[..5], ["alpha:art1.1", "alpha:art1.2", "alpha:art1.3", "alpha:art1.4", "alpha:art2.1"]);
    let source = read(&dir.join("data/alpha.md"));
    for record in &records {
        assert_eq!(record["document"], "alpha");
        let scores = record["scores"].as_object().expect("scores");
        assert_eq!(scores.keys().collect::<Vec<_>>(), ["secrecy", "surveillance"]);
        assert!(scores.values().all(|p| (0.0..=1.0).contains(&p.as_f64().expect("p"))));
        let (start, end) = (record["start"].as_u64().expect("start"), record["end"].as_u64().expect("end"));
        let span = &source[start as usize..end as usize];
        assert!(span.contains(record["text"].as_str().expect("text")), "{span:?} vs {record}");
        for label in record["labels"].as_array().expect("labels") {
            let label = label.as_str().expect("label");
            assert!(scores[label].as_f64().expect("p") >= 0.0);
        }
    }
    let table = clause_in(dir, &["classify", "--model", "model", "data/alpha.md", "--format", "table"]);
    assert!(table.ok().lines().all(|l| l.chars().count() <= 100), "{}", table.stdout);
    assert!(table.stdout.starts_with("ARTICLE") && table.stdout.contains("1.1 "), "{}", table.stdout);
}

#[test]
fn classify_a_table_keeps_order_and_carries_columns() {
    let dir = trained();
    let table = dir.join("rows.jsonl");
    write(
        &table,
        "{\"id\": \"r-b\", \"text\": \"the state may seize\", \"page\": 2}\n\
         {\"text\": \"the party shall keep secret\", \"page\": 1}\n\
         {\"id\": \"r-a\", \"text\": \"the data\", \"page\": null}\n",
    );
    let run = clause_in(dir, &["classify", "--model", "model", &path(dir, "rows.jsonl")]);
    let records = jsonl(run.ok());
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["r-b", "rows:2", "r-a"]);
    assert_eq!(records[0]["page"], 2);
    assert_eq!(records[2]["page"], serde_json::Value::Null);
    assert_eq!(records[1]["text"], "the party shall keep secret");
    assert!(records[0]["start"].is_null());
    // The same texts as a draft get the same scores: batching and padding
    // do not change the numbers.
    let alone = clause_in(dir, &["classify", "--model", "model", "--batch-size", "1", &path(dir, "rows.jsonl")]);
    for (a, b) in records.iter().zip(jsonl(alone.ok())) {
        for label in ["surveillance", "secrecy"] {
            let (x, y) = (a["scores"][label].as_f64().expect("x"), b["scores"][label].as_f64().expect("y"));
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
    // CSV and Parquet, written whole to --output.
    let csv = dir.join("out/rows.csv");
    std::fs::create_dir_all(csv.parent().expect("parent")).expect("mkdir");
    clause_in(dir, &["classify", "--model", "model", &path(dir, "rows.jsonl"), "-o", &csv.display().to_string()]).ok();
    let csv_text = read(&csv);
    assert!(csv_text.starts_with("id,document,article,paragraph,title,text,labels,score_surveillance,score_secrecy"));
    assert_eq!(csv_text.lines().count(), 4);
    let parquet = dir.join("out/rows.parquet");
    clause_in(dir, &["classify", "--model", "model", &path(dir, "rows.jsonl"), "-o", &parquet.display().to_string()])
        .ok();
    let back = clause_in(dir, &["classify", "--model", "model", &parquet.display().to_string()]);
    assert_eq!(jsonl(back.ok()).len(), 3);
    assert_eq!(listing(&dir.join("out")), ["rows.csv", "rows.parquet"]);
}

/// Array jobs: the shards' outputs, concatenated in order, are the
/// unsharded output, so every item is classified exactly once; a shard
/// with nothing to do writes an empty result, not an error.
#[test]
fn classify_shards_concatenate_to_the_unsharded_output() {
    let dir = trained();
    let inputs = ["data/alpha.md", "data/beta.md", "data/gamma.md"];
    let classify = |extra: &[&str]| {
        let mut args = vec!["classify", "--model", "model", "--format", "jsonl"];
        args.extend(extra);
        args.extend(inputs);
        clause_in(dir, &args)
    };
    let whole = classify(&[]).ok().to_string();
    let mut joined = String::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let run = classify(&["--shard", shard]);
        let part = run.ok();
        assert!(!part.is_empty(), "shard {shard} is empty");
        joined.push_str(part);
    }
    assert_eq!(joined, whole);
    let ids: Vec<String> = jsonl(&joined).iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id twice: {ids:?}");
    // More shards than items: some shards are empty (the first, here).
    let empty = format!("1/{}", ids.len() + 1);
    assert_eq!(classify(&["--shard", &empty]).ok(), "");
    // A usage error, from clap: exit 2.
    let bad = classify(&["--shard", "4/3"]);
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(bad.stderr.contains("'4/3' for '--shard <I/N>': expected I/N"), "{}", bad.stderr);
}

#[test]
fn classify_reads_long_texts_in_windows_and_warns_only_past_the_last() {
    let dir = trained();
    // Several windows long: read whole, without a warning.
    let long = "the state may search the data ".repeat(40);
    // Longer than the windows a text is read in.
    let windows = clause_infer::reading::MAX_WINDOWS;
    let endless = "the state may search the data ".repeat(windows * RECIPE_MAX_LENGTH);
    write(&dir.join("long.jsonl"), format!("{{\"text\": \"the party may\"}}\n{{\"text\": \"{long}\"}}\n"));
    let run = clause_in(dir, &["classify", "--model", "model", &path(dir, "long.jsonl")]);
    assert_eq!(jsonl(run.ok()).len(), 2);
    assert!(!run.stderr.contains("longer than the model reads"), "{}", run.stderr);
    write(&dir.join("endless.jsonl"), format!("{{\"text\": \"the party may\"}}\n{{\"text\": \"{endless}\"}}\n"));
    let run = clause_in(dir, &["classify", "--model", "model", &path(dir, "endless.jsonl")]);
    assert_eq!(jsonl(run.ok()).len(), 2);
    let warning = format!("1 of 2 texts are longer than the model reads ({windows} windows)");
    assert!(run.stderr.contains(&warning) && run.stderr.contains("text 2"), "{}", run.stderr);
}

#[test]
fn classify_explains_with_spans_of_the_text() {
    let dir = trained();
    let run = clause_in(dir, &["classify", "--model", "model", "data/beta.md", "--explain", "--threshold", "0"]);
    for record in jsonl(run.ok()) {
        let explanations = record["explanations"].as_object().expect("explanations");
        assert_eq!(explanations.len(), 2, "{record}");
        let text = record["text"].as_str().expect("text");
        for spans in explanations.values() {
            for span in spans.as_array().expect("spans") {
                let (start, end) =
                    (span["start"].as_u64().expect("s") as usize, span["end"].as_u64().expect("e") as usize);
                assert_eq!(&text[start..end], span["text"].as_str().expect("text"));
                assert!(span["drop"].as_f64().expect("drop") > 0.0);
            }
        }
    }
}

/// Scores of the hand-written eval fixture, worked out by hand: with a
/// threshold of 0, every label is predicted for every example.
#[test]
fn eval_figures_match_a_hand_computed_fixture() {
    let dir = trained();
    let table = dir.join("eval.jsonl");
    write(
        &table,
        "{\"text\": \"the state may search\", \"labels\": [\"surveillance\"]}\n\
         {\"text\": \"the party shall\", \"labels\": []}\n\
         {\"text\": \"the state may seize the secret data\", \"labels\": [\"surveillance\", \"secrecy\"]}\n\
         {\"text\": \"the data may\", \"labels\": []}\n",
    );
    let run = clause_in(dir, &["eval", "--model", "model", &path(dir, "eval.jsonl"), "--threshold", "0", "--json"]);
    let report: serde_json::Value = serde_json::from_str(run.ok()).expect("json");
    // surveillance: support 2, predicted 4, tp 2 → P 0.5, R 1, F1 2/3.
    // secrecy: support 1, predicted 4, tp 1 → P 0.25, R 1, F1 0.4.
    // none: support 2, predicted 0 → F1 0. micro: tp 3, predicted 8, support 3
    // → F1 6/11. macro (2/3 + 0.4)/2 = 0.5333; LexGLUE (2/3 + 0.4 + 0)/3.
    let labels = &report["metrics"]["labels"];
    assert_eq!(report["examples"], 4);
    assert!((labels[0]["f1"].as_f64().expect("f1") - 2.0 / 3.0).abs() < 1e-9);
    assert!((labels[1]["precision"].as_f64().expect("p") - 0.25).abs() < 1e-9);
    assert!((labels[1]["f1"].as_f64().expect("f1") - 0.4).abs() < 1e-9);
    assert_eq!(report["metrics"]["none"]["f1"], 0.0);
    assert!((report["metrics"]["micro_f1"].as_f64().expect("micro") - 6.0 / 11.0).abs() < 1e-9);
    assert!((report["metrics"]["macro_f1"].as_f64().expect("macro") - (2.0 / 3.0 + 0.4) / 2.0).abs() < 1e-9);
    let lexglue = (2.0 / 3.0 + 0.4) / 3.0;
    assert!((report["metrics"]["lexglue_macro_f1"].as_f64().expect("lexglue") - lexglue).abs() < 1e-9);
    let interval = &report["intervals"]["macro_f1"];
    assert!(interval["low"].as_f64().expect("low") <= interval["high"].as_f64().expect("high"));
    assert!(report["calibration"]["expected_calibration_error"].is_number());
    assert!(report["ranking"][0]["roc_auc"].is_number());
    let text = clause_in(dir, &["eval", "--model", "model", "datasets/x", "--data-root", "data"]);
    assert!(text.ok().contains("validation split") && text.stdout.contains("LexGLUE macro-F1"), "{}", text.stdout);
}

#[test]
fn diff_reports_renumbered_and_changed_articles() {
    let dir = trained();
    write(
        &dir.join("v1.md"),
        "Article 1\n\n1. the party shall search the data\n2. the state may\n\n\
         Article 2\n\n1. the party shall keep it secret\n2. the data shall\n\n\
         Article 3\n\nthe state may seize\n",
    );
    // A new Article 1; old 1 becomes 2 unchanged; old 2 becomes 3 with its
    // first paragraph reworded; old 3 is removed.
    write(
        &dir.join("v2.md"),
        "Article 1\n\nthe party may\n\n\
         Article 2\n\n1. the party shall search the data\n2. the state may\n\n\
         Article 3\n\n1. the party shall keep it secret and confidential\n2. the data shall\n",
    );
    let run = clause_in(dir, &["diff", "--model", "model", "v1.md", "v2.md", "--format", "json"]);
    let diff: serde_json::Value = serde_json::from_str(run.ok()).expect("json");
    let changes = diff["changes"].as_array().expect("changes");
    let find = |kind: &str| -> Vec<(Option<&str>, Option<&str>)> {
        changes
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| (c["old"]["id"].as_str(), c["new"]["id"].as_str()))
            .collect()
    };
    assert_eq!(find("added"), [(None, Some("v2:art1"))]);
    assert_eq!(find("removed"), [(Some("v1:art3"), None)]);
    assert_eq!(find("changed"), [(Some("v1:art2.1"), Some("v2:art3.1"))]);
    let mut moved = find("moved");
    moved.sort();
    assert_eq!(
        moved,
        [
            (Some("v1:art1.1"), Some("v2:art2.1")),
            (Some("v1:art1.2"), Some("v2:art2.2")),
            (Some("v1:art2.2"), Some("v2:art3.2"))
        ]
    );
    let risks: Vec<f64> = changes.iter().map(|c| c["risk_delta"].as_f64().expect("risk")).collect();
    assert!(risks.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");
    let table = clause_in(dir, &["diff", "--model", "model", "v1.md", "v2.md"]);
    let text = table.ok();
    assert!(text.contains("Art. 3.1 (was 2.1): changed"), "{text}");
    assert!(text.contains("Art. 3 (old): removed"), "{text}");
    assert!(text.contains("renumbered, text and labels unchanged: ") && text.contains("Art. 2.1 (was 1.1)"), "{text}");
}

#[test]
fn report_holds_every_provision_and_its_labels() {
    let dir = trained();
    let out = dir.join("reports/alpha.html");
    std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    let classified = jsonl(clause_in(dir, &["classify", "--model", "model", "data/alpha.md"]).ok());
    clause_in(dir, &["report", "--model", "model", "data/alpha.md", "-o", &out.display().to_string()]).ok();
    let html = read(&out);
    assert!(!html.contains("http://") && !html.contains("https://"));
    for record in &classified {
        assert!(html.contains(record["text"].as_str().expect("text")), "{record}");
        for label in record["labels"].as_array().expect("labels") {
            let p = record["scores"][label.as_str().expect("label")].as_f64().expect("p");
            let badge = format!("{}<span class=\"p\">{p:.2}</span>", label.as_str().expect("label"));
            assert!(html.contains(&badge), "{badge}");
        }
    }
    let md = dir.join("reports/alpha.md");
    clause_in(
        dir,
        &["report", "--model", "model", "data/alpha.md", "--format", "markdown", "-o", &md.display().to_string()],
    )
    .ok();
    let markdown = read(&md);
    assert!(classified.iter().all(|r| markdown.contains(r["text"].as_str().expect("text"))));
}

/// A model trained on sentences (`"unit": "sentence"` in its card, as
/// tos-unfair's is) is given a page's sentences, each scored as it would be
/// alone and naming the provision it was cut from; the report lists them.
#[test]
fn a_sentence_model_classifies_a_page_sentence_by_sentence() {
    let dir = trained();
    sentence_model(dir);
    let sentences = [
        "the state may search and seize the data.",
        "the party shall keep the data secret and confidential.",
        "the party may keep the data and the state shall search.",
    ];
    let page = format!("# Terms\n\n{} {}\n\n## 2. More\n\n{}\n", sentences[0], sentences[1], sentences[2]);
    write(&dir.join("terms.md"), &page);
    let whole = jsonl(clause_in(dir, &["classify", "--model", "model", "terms.md", "--format", "jsonl"]).ok());
    assert_eq!(whole.len(), 1, "one provision: {whole:?}");
    let cut = jsonl(clause_in(dir, &["classify", "--model", "model-sentences", "terms.md", "--format", "jsonl"]).ok());
    let ids: Vec<&str> = cut.iter().map(|r| r["id"].as_str().expect("id")).collect();
    assert_eq!(ids, ["terms:preamble.s1", "terms:preamble.s2", "terms:preamble.s3"]);
    let rows: String = sentences.iter().map(|s| format!("{{\"text\": \"{s}\"}}\n")).collect();
    write(&dir.join("sentences.jsonl"), rows);
    let alone = jsonl(clause_in(dir, &["classify", "--model", "model-sentences", "sentences.jsonl"]).ok());
    for ((record, alone), sentence) in cut.iter().zip(&alone).zip(sentences) {
        assert_eq!(record["text"], sentence);
        assert_eq!(record["provision"], "terms:preamble");
        assert!(alone.get("provision").is_none(), "table rows are not cut: {alone}");
        for label in ["surveillance", "secrecy"] {
            let (x, y) = (record["scores"][label].as_f64().expect("x"), alone["scores"][label].as_f64().expect("y"));
            assert!((x - y).abs() < 1e-5, "{sentence}: {x} vs {y}");
        }
    }
    let report = dir.join("terms-report.md");
    let out = report.display().to_string();
    clause_in(dir, &["report", "--model", "model-sentences", "terms.md", "--format", "markdown", "-o", &out]).ok();
    let markdown = read(&report);
    assert!(sentences.iter().all(|s| markdown.contains(s)), "{markdown}");
}

/// The tiny model, with its card saying it was trained on sentences, as
/// `model-sentences` (made once; the tests that use it may run together).
fn sentence_model(dir: &Path) -> PathBuf {
    static MADE: std::sync::Once = std::sync::Once::new();
    let model = dir.join("model-sentences");
    MADE.call_once(|| {
        copy_dir(&dir.join("model"), &model);
        let card_path = model.join("clause.json");
        let mut card: serde_json::Value = serde_json::from_str(&read(&card_path)).expect("card");
        assert_eq!(card["unit"], "provision", "a draft-trained model reads provisions");
        card["unit"] = "sentence".into();
        write(&card_path, serde_json::to_string_pretty(&card).expect("json"));
    });
    model
}

/// One company's real terms (Uber's, from the shared CLAUDETTE corpus)
/// written out as a web page by `scripts/tos_pages.py` and classified with
/// a sentence model: every word of the terms reaches a record, most corpus
/// sentences come back whole, and the LexGLUE macro-F1 of the page is
/// within 0.02 of classifying the corpus sentences directly. The tiny
/// model reads few of these words, so this pins the reading, not the
/// quality; the script's figures with the trained tos-unfair model on all
/// five test companies are in the README.
#[test]
fn a_company_terms_page_is_read_as_well_as_its_sentences() {
    let dir = trained();
    let model = sentence_model(dir);
    let script = crate::util::project_root().join("scripts/tos_pages.py");
    let data = crate::util::data_root();
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(["--model", &model.display().to_string(), "--clause", env!("CARGO_BIN_EXE_clause")])
        .args(["--data", &data.display().to_string(), "--companies", "Uber", "--json"])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let rows = jsonl(&stdout);
    let uber = &rows[0];
    let number = |field: &str| uber[field].as_f64().unwrap_or_else(|| panic!("{field} in {uber}"));
    let sentences = number("sentences");
    assert!(sentences > 100.0, "{uber}");
    assert_eq!(number("characters_lost"), 0.0, "words of the page reached no record: {uber}");
    assert!(number("read_whole") >= 0.75 * sentences, "{uber}");
    assert!(number("records") >= 0.9 * sentences, "{uber}");
    assert!(number("sentences_labelled_directly") > 0.0, "the model flags some sentences: {uber}");
    assert!((number("page_f1") - number("direct_f1")).abs() <= 0.02, "{uber}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn reviewed_labels_are_merged_retrained_and_compared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    project(dir);
    train(dir, "model-1");
    // A reviewer reads the classify output of the training draft and decides
    // that "the state shall" (art1.4) is a secrecy provision after all.
    let classified = clause_in(dir, &["classify", "--model", "model-1", "data/alpha.md"]);
    let mut corrections = String::new();
    for mut record in jsonl(classified.ok()) {
        if record["id"] == "alpha:art1.4" {
            record["labels"] = serde_json::json!(["secrecy"]);
        } else {
            record["labels"] = serde_json::json!(labels_of(record["text"].as_str().expect("text")));
        }
        corrections.push_str(&format!("{record}\n"));
    }
    write(&dir.join("reviewed.jsonl"), corrections);
    let before = read(&dir.join("datasets/x/annotations/alpha.tsv"));
    let merged = clause_in(dir, &["dataset", "annotate", "datasets/x", "reviewed.jsonl"]);
    let out = merged.ok();
    assert!(out.contains("alpha:art1.4  - -> secrecy"), "{out}");
    assert!(out.contains("changed 1 annotations in 1 files; 11 corrections matched"), "{out}");
    let after = read(&dir.join("datasets/x/annotations/alpha.tsv"));
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1.starts_with("alpha:art1.4\t") && changed[0].1.contains("\tsecrecy\t"), "{changed:?}");
    // Retraining rebuilds the dataset, because an annotation file changed.
    let retrained = train(dir, "model-2");
    assert!(retrained.stderr.contains("building x"), "{}", retrained.stderr);
    let compared = clause_in(
        dir,
        &["eval", "--model", "model-2", "--baseline", "model-1", "datasets/x", "--split", "train", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(compared.ok()).expect("json");
    let comparison = &report["comparison"];
    assert_eq!(comparison["deltas"].as_array().expect("deltas").len(), 2);
    let flipped = comparison["flipped"].as_array().expect("flipped");
    assert!(!flipped.is_empty(), "retraining on changed labels changed no decision: {report}");
    for flip in flipped {
        assert_ne!(flip["baseline"], flip["model"], "{flip}");
        assert!(flip["id"].as_str().expect("id").starts_with("alpha:"), "{flip}");
    }
    let text =
        clause_in(dir, &["eval", "--model", "model-2", "--baseline", "model-1", "datasets/x", "--split", "train"]);
    assert!(text.ok().contains(&format!("{} decisions flipped", flipped.len())), "{}", text.stdout);
    // Stale and unknown corrections are refused, and nothing is written.
    write(
        &dir.join("stale.jsonl"),
        "{\"id\": \"alpha:art1.1\", \"text\": \"the party shall seize\", \"labels\": []}\n",
    );
    clause_in(dir, &["dataset", "annotate", "datasets/x", "stale.jsonl"]).fails_with(&[
        "stale.jsonl:row 1",
        "alpha:art1.1",
        "stale",
    ]);
    write(&dir.join("unknown.jsonl"), "{\"id\": \"alpha:art9\", \"text\": \"the data\", \"labels\": []}\n");
    clause_in(dir, &["dataset", "annotate", "datasets/x", "unknown.jsonl"]).fails_with(&[
        "unknown.jsonl:row 1",
        "alpha:art9",
        "no annotation file",
    ]);
    assert_eq!(read(&dir.join("datasets/x/annotations/alpha.tsv")), after);
}

#[test]
fn bad_inputs_of_the_reviewer_commands() {
    let dir = trained();
    let model = ["--model", "model"];
    let with = |command: &str, extra: &[&str]| {
        let mut args = vec![command];
        args.extend_from_slice(&model);
        args.extend_from_slice(extra);
        clause_in(dir, &args)
    };
    clause_in(dir, &["classify", "--model", "no-such-model", "data/alpha.md"]).fails_with(&["no-such-model"]);
    let copy = dir.join("broken-model");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in ["config.json", "tokenizer.json", "clause.json"] {
        std::fs::copy(dir.join("model").join(file), copy.join(file)).expect("copy");
    }
    clause_in(dir, &["classify", "--model", "broken-model", "data/alpha.md"])
        .fails_with(&["broken-model", "model.safetensors"]);
    write(&dir.join("draft.rtf"), "x");
    with("classify", &["draft.rtf"]).fails_with(&["draft.rtf", "unknown input format `.rtf`"]);
    write(&dir.join("empty.md"), "\n  \n");
    with("classify", &["empty.md"]).fails_with(&["empty.md", "no provisions"]);
    write(&dir.join("latin1.txt"), b"Article 1\nCaf\xe9 shall\n");
    with("classify", &["latin1.txt"]).fails_with(&["latin1.txt:2", "UTF-8"]);
    write(&dir.join("bad.jsonl"), "{\"text\": \"the data\"}\n{\"text\": \n");
    with("classify", &["bad.jsonl"]).fails_with(&["bad.jsonl:2", "JSON"]);
    with("classify", &["data/alpha.md", "--format", "parquet"]).fails_with(&["--format parquet needs --output"]);
    let missing_dir: PathBuf = dir.join("no/such/dir/out.jsonl");
    with("classify", &["data/alpha.md", "-o", &missing_dir.display().to_string()]).fails_with(&["does not exist"]);
    with("eval", &["bad.jsonl"]).fails_with(&["bad.jsonl:2"]);
    write(&dir.join("odd.jsonl"), "{\"text\": \"the data\", \"labels\": [\"espionage\"]}\n");
    with("eval", &["odd.jsonl"]).fails_with(&["odd.jsonl", "espionage"]);
    with("diff", &["empty.md", "data/alpha.md"]).fails_with(&["empty.md", "no provisions"]);
    with("report", &["latin1.txt", "-o", "r.html"]).fails_with(&["latin1.txt:2"]);
    assert!(!dir.join("r.html").exists());
}

/// The example drafts differ as their README says: one article inserted
/// (renumbering eight), one removed, three provisions reworded, one moved.
#[test]
fn example_drafts_differ_as_documented() {
    let dir = trained();
    let examples = crate::util::project_root().join("datasets/examples");
    let (old, new) = (examples.join("cybercrime-chapter.md"), examples.join("cybercrime-chapter-v2.md"));
    let run = clause_in(
        dir,
        &[
            "diff",
            "--model",
            "model",
            &old.display().to_string(),
            &new.display().to_string(),
            "--all",
            "--format",
            "json",
        ],
    );
    let diff: serde_json::Value = serde_json::from_str(run.ok()).expect("json");
    assert_eq!(diff["provisions"], serde_json::json!({"old": 37, "new": 37}));
    let short =
        |side: &serde_json::Value| side["id"].as_str().map(|id| id.rsplit(':').next().unwrap_or(id).to_string());
    let of_kind = |kind: &str| -> Vec<(Option<String>, Option<String>)> {
        let mut pairs: Vec<_> = diff["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .filter(|c| c["kind"] == kind)
            .map(|c| (short(&c["old"]), short(&c["new"])))
            .collect();
        pairs.sort();
        pairs
    };
    let pair = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
    assert_eq!(of_kind("added"), [(None, Some("art24".to_string()))]);
    assert_eq!(of_kind("removed"), [(Some("art32".to_string()), None)]);
    assert_eq!(of_kind("changed"), [pair("art25.2", "art26.2"), pair("art29.1", "art30.1"), pair("art37", "art37")]);
    let moved = of_kind("moved");
    assert_eq!(moved.len(), 15, "{moved:?}");
    for (a, b) in [("art24", "art25"), ("art25.1", "art26.1"), ("art31.2", "art32.2"), ("art26.3", "art38.3")] {
        assert!(moved.contains(&pair(a, b)), "{a} -> {b} in {moved:?}");
    }
    assert_eq!(of_kind("unchanged").len(), 18);
}

/// A copy of the trained model whose `clause.json` says it reads `context`.
fn model_reading(dir: &Path, context: &str) -> String {
    let name = format!("model-{context}");
    let copy = dir.join(&name);
    std::fs::create_dir_all(&copy).expect("mkdir");
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(dir.join("model").join(file), copy.join(file)).expect("copy");
    }
    let mut card: serde_json::Value = serde_json::from_str(&read(&dir.join("model/clause.json"))).expect("card");
    card["context"] = context.into();
    write(&copy.join("clause.json"), card.to_string());
    name
}

#[test]
fn classify_feeds_a_model_the_headings_it_was_trained_with() {
    let dir = trained();
    let card: serde_json::Value = serde_json::from_str(&read(&dir.join("model/clause.json"))).expect("card");
    assert_eq!(card["context"], "text", "the default reads the text alone");
    let draft = dir.join("headed.md");
    write(
        &draft,
        "## Chapter I – the state\n\n### Article 1 – the data\n\n1. the party shall search\n2. the party may\n\n\
         ### Article 2\n\n1. the state shall keep secret\n",
    );
    let headed = model_reading(dir, "headings");
    let scores = |model: &str, input: &str| -> Vec<(String, [f64; 2])> {
        let run = clause_in(dir, &["classify", "--model", model, input, "--format", "jsonl"]);
        jsonl(run.ok())
            .iter()
            .map(|r| {
                let p = |label: &str| r["scores"][label].as_f64().expect("score");
                (r["text"].as_str().expect("text").to_string(), [p("surveillance"), p("secrecy")])
            })
            .collect()
    };
    let with_headings = scores(&headed, &path(dir, "headed.md"));
    // What the headings model reads, written out, given to the model that
    // reads text alone: the innermost division, the article title, the text.
    let composed = [
        "Chapter I – the state. the data. the party shall search",
        "Chapter I – the state. the data. the party may",
        "Chapter I – the state. the state shall keep secret",
    ];
    let rows: String = composed.iter().map(|t| format!("{{\"text\": \"{t}\"}}\n")).collect();
    write(&dir.join("composed.jsonl"), rows);
    let written_out = scores("model", &path(dir, "composed.jsonl"));
    assert_eq!(with_headings.len(), 3);
    for ((text, headed), (_, plain)) in with_headings.iter().zip(&written_out) {
        assert!(!text.contains("Chapter"), "records keep the provision's own text: {text}");
        assert_eq!(headed, plain, "{text}");
    }
    let text_alone = scores("model", &path(dir, "headed.md"));
    assert_ne!(text_alone[0].1, with_headings[0].1, "the headings change what the model sees");
    // Explanations cut the text only, with the headings still read.
    let run =
        clause_in(dir, &["classify", "--model", &headed, &path(dir, "headed.md"), "--explain", "--threshold", "0"]);
    for record in jsonl(run.ok()) {
        let text = record["text"].as_str().expect("text");
        for spans in record["explanations"].as_object().expect("explanations").values() {
            for span in spans.as_array().expect("spans") {
                assert!(text.contains(span["text"].as_str().expect("span")), "{span} in {text}");
            }
        }
    }
}

/// Word, HTML and PDF renderings of the example drafts (crates/clause-read's
/// fixtures, made by pandoc and LibreOffice) are classified, reported and
/// compared like their Markdown originals, and each record says where it is
/// in the file.
#[test]
fn word_html_and_pdf_drafts_are_read_like_their_markdown() {
    let dir = trained();
    let root = crate::util::project_root();
    let fixtures = root.join("crates/clause-read/tests/fixtures");
    let path = |p: std::path::PathBuf| p.display().to_string();
    let markdown = path(root.join("datasets/examples/cybercrime-chapter.md"));
    // Ids without the document name, which is each file's own.
    let local =
        |id: &serde_json::Value| id.as_str().and_then(|id| id.split_once(':')).map(|(_, rest)| rest.to_string());
    let ids = |records: &[serde_json::Value]| -> Vec<String> {
        records.iter().map(|r| local(&r["id"]).expect("id")).collect()
    };
    let original = jsonl(clause_in(dir, &["classify", "--model", "model", &markdown, "--format", "jsonl"]).ok());
    assert!(original.iter().all(|r| r.get("source").is_none()), "text drafts have no source field");
    for (file, prefix) in [
        ("cybercrime-chapter.docx", "¶ "),
        ("cybercrime-chapter.html", "body"),
        ("cybercrime-chapter.pdf", "p. "),
        ("cybercrime-chapter-running.pdf", "p. "),
    ] {
        let draft = path(fixtures.join(file));
        let records = jsonl(clause_in(dir, &["classify", "--model", "model", &draft, "--format", "jsonl"]).ok());
        assert_eq!(ids(&records), ids(&original), "{file}");
        for record in &records {
            let source = record["source"].as_str().expect("source");
            assert!(source.starts_with(prefix), "{file}: {record}");
        }
        let segmented = jsonl(clause_in(dir, &["segment", &draft, "--format", "jsonl"]).ok());
        assert_eq!(ids(&segmented), ids(&original), "{file}");
        assert!(segmented.iter().all(|r| r["source"].is_string()), "{file}");
        // The table says where each provision is in the file, not the line
        // of the text read from it.
        let table = clause_in(dir, &["segment", &draft, "--format", "table"]);
        let lines: Vec<&str> = table.ok().lines().collect();
        assert!(lines[0].contains("WHERE") && !lines[0].contains("LINE"), "{file}: {}", lines[0]);
        assert!(lines[1..].iter().all(|l| l.contains(prefix)), "{file}: {}", table.stdout);
    }
    let out = dir.join("docx-report.html");
    let docx = path(fixtures.join("cybercrime-chapter.docx"));
    clause_in(dir, &["report", "--model", "model", &docx, "-o", &path(out.clone())]).ok();
    assert!(read(&out).contains("(¶ "), "the report says where each provision is in the Word file");
    let pdf = path(fixtures.join("cybercrime-chapter-running.pdf"));
    let out = dir.join("pdf-report.html");
    clause_in(dir, &["report", "--model", "model", &pdf, "-o", &path(out.clone())]).ok();
    let report = read(&out);
    assert!(report.contains("(p. 1)") && report.contains("(p. 2)"), "the report gives each provision's page");
    let changes = |old: &str, new: &str| -> Vec<String> {
        let run = clause_in(dir, &["diff", "--model", "model", old, new, "--all", "--format", "json"]);
        let diff: serde_json::Value = serde_json::from_str(run.ok()).expect("json");
        let mut kinds: Vec<String> = diff["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| format!("{} {:?} {:?}", c["kind"], local(&c["old"]["id"]), local(&c["new"]["id"])))
            .collect();
        kinds.sort();
        kinds
    };
    let html_v2 = path(fixtures.join("cybercrime-chapter-v2.html"));
    let markdown_v2 = path(root.join("datasets/examples/cybercrime-chapter-v2.md"));
    assert_eq!(changes(&docx, &html_v2), changes(&markdown, &markdown_v2));
    let pdf_v2 = path(fixtures.join("cybercrime-chapter-two-column.pdf"));
    assert_eq!(changes(&pdf, &pdf_v2), changes(&markdown, &markdown_v2), "the two-column PDF is v2");
    let broken = dir.join("broken.docx");
    crate::util::write(&broken, "Article 1\nA text file named as a Word file.\n");
    clause_in(dir, &["classify", "--model", "model", &path(broken)]).fails_with(&["broken.docx", "zip"]);
}
