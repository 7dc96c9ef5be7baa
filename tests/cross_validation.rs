//! `clause train --cross-validate` and `clause eval --probe` end to end, on
//! the tiny project of `train.rs` and the previous release's model.

use std::collections::BTreeMap;

use crate::train::project;
use crate::util::{clause, clause_in, project_root, read, write};

#[test]
fn cross_validation_predicts_every_example_once_out_of_fold_and_resumes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    project(dir);
    let args = [
        "train",
        "datasets/x",
        "--base",
        "base",
        "--out",
        "cv",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--data-root",
        "data",
        "--cross-validate",
        "3",
    ];
    let mut finished_only = args.to_vec();
    finished_only.push("--finished-folds-only");
    clause_in(dir, &finished_only).fails_with(&["no fold is finished yet"]);
    let first = clause_in(dir, &args);
    let report = first.ok();
    for needle in ["micro-F1", "95% CI", "score band", "instrument", "ECE raw"] {
        assert!(report.contains(needle), "{needle} missing:\n{report}");
    }
    // Every example is held out by exactly one fold, whole documents at a time.
    let plan = read(&dir.join("cv/folds.tsv"));
    let mut held_out: BTreeMap<String, String> = BTreeMap::new();
    let mut validation: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in plan.lines().skip(1) {
        let fields: Vec<&str> = line.split('\t').collect();
        if fields[2] == "test" {
            assert!(held_out.insert(fields[1].to_string(), fields[0].to_string()).is_none(), "{line}");
        }
        if fields[2] == "validation" {
            validation.entry(fields[0].to_string()).or_default().push(fields[1].to_string());
        }
    }
    assert_eq!(held_out.len(), 48);
    let mut predicted = Vec::new();
    for k in 1..=3 {
        let fold = dir.join(format!("cv/fold-{k}"));
        for line in read(&fold.join("predictions.jsonl")).lines() {
            let row: serde_json::Value = serde_json::from_str(line).expect("json");
            assert_eq!(held_out[row["id"].as_str().expect("id")], k.to_string());
            assert_eq!(row["scores"].as_array().expect("scores").len(), 2);
            predicted.push(row["id"].as_str().expect("id").to_string());
        }
        // The fold model's scores on its own validation share, for a stage
        // stacked on it (scripts/lexical-stack-check).
        let mut scored: Vec<String> = read(&fold.join("validation-predictions.jsonl"))
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json")["id"].to_string())
            .map(|id| id.trim_matches('"').to_string())
            .collect();
        scored.sort();
        let mut expected = validation[&k.to_string()].clone();
        expected.sort();
        assert!(!expected.is_empty());
        assert_eq!(scored, expected);
        assert!(fold.join("clause.json").is_file() && !fold.join("model.safetensors").exists());
    }
    predicted.sort();
    assert_eq!(predicted, held_out.keys().cloned().collect::<Vec<_>>());
    let summary: serde_json::Value = serde_json::from_str(&read(&dir.join("cv/summary.json"))).expect("json");
    assert_eq!(summary["examples"], 48);
    assert!(read(&dir.join("cv/reliability.svg")).starts_with("<svg"));
    // A second run reads the written folds instead of training again.
    let again = clause_in(dir, &args);
    assert_eq!(again.ok(), report);
    assert_eq!(clause_in(dir, &finished_only).ok(), report);
    assert!(!again.stderr.contains("epoch 1"), "{}", again.stderr);
    // A prediction row edited short is named, not a panic.
    let fold_1 = dir.join("cv/fold-1/predictions.jsonl");
    let saved = read(&fold_1);
    let first: serde_json::Value = serde_json::from_str(saved.lines().next().expect("a row")).expect("json");
    let mut short = first.clone();
    short["raw_scores"] = serde_json::json!([0.5]);
    write(&fold_1, format!("{short}\n{}", saved.lines().skip(1).collect::<Vec<_>>().join("\n")));
    let id = first["id"].as_str().expect("id");
    clause_in(dir, &finished_only).fails_with(&["fold-1/predictions.jsonl", id, "1 `raw_scores`, expected 2"]);
    write(&fold_1, saved);
    // Refitting needs the folds' weights, which this run did not keep.
    let mut refit = args.to_vec();
    refit.push("--refit-calibration");
    clause_in(dir, &refit).fails_with(&["fold 1's weights were not kept", "--keep-fold-models"]);
    // Folds need instruments to fill them.
    let mut more = args.to_vec();
    more[13] = "4";
    clause_in(dir, &more).fails_with(&["3 instruments cannot fill 4 folds"]);
    more[13] = "1";
    clause_in(dir, &more).fails_with(&["--cross-validate 1", "at least 2"]);
}

#[test]
fn kept_folds_are_refitted_with_a_lexical_stage_without_training() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    project(dir);
    write(&dir.join("no-stage.toml"), "lexical = false\n");
    let args = [
        "train",
        "datasets/x",
        "--base",
        "base",
        "--out",
        "cv",
        "--epochs",
        "1",
        "--data-root",
        "data",
        "--cross-validate",
        "3",
        "--keep-fold-models",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(extra.iter().copied()).collect() };
    clause_in(dir, &with(&["--config", "no-stage.toml"])).ok();
    let margins_of = |k: usize| -> Vec<bool> {
        read(&dir.join(format!("cv/fold-{k}/predictions.jsonl")))
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("json")["lexical_margins"].is_array())
            .collect()
    };
    assert!(margins_of(1).iter().all(|&m| !m), "no stage, no margins");
    let weights = crate::util::sha256(&dir.join("cv/fold-2/model.safetensors"));
    let refit = clause_in(dir, &with(&["--refit-calibration"]));
    assert!(refit.ok().contains("micro-F1"), "{}", refit.stdout);
    assert!(!refit.stderr.contains("epoch 1"), "{}", refit.stderr);
    for k in 1..=3 {
        assert!(margins_of(k).iter().all(|&m| m), "fold {k} predicts again with its stage");
        assert!(dir.join(format!("cv/fold-{k}/lexical.json")).is_file());
    }
    assert_eq!(crate::util::sha256(&dir.join("cv/fold-2/model.safetensors")), weights);
    let summary: serde_json::Value = serde_json::from_str(&read(&dir.join("cv/summary.json"))).expect("json");
    assert_eq!(summary["examples"], 48);
    probes_read_each_fold_with_the_model_that_held_it_out(dir);
}

/// `clause eval --probe` on the kept folds of `dir/cv`: every example is
/// read by its fold's model, and the figures are pooled.
fn probes_read_each_fold_with_the_model_that_held_it_out(dir: &std::path::Path) {
    let eval = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["eval", "--model", "cv", "datasets/x", "--data-root", "data"].iter().map(|s| s.to_string()).collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let run = |extra: &[&str]| {
        let args = eval(extra);
        clause_in(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let removed = run(&["--probe", "headings-removed"]);
    let text = removed.ok();
    assert!(text.contains("probe headings-removed: 48 examples, out of fold (3 folds"), "{text}");
    assert!(text.contains("change in micro-F1, 95% CI"), "{text}");
    // 16 label-less rows, in documents A and C: the fold that held out B
    // has none to bury a sentence in.
    write(
        &dir.join("suite.tsv"),
        "label\trule\tsentence\nsecrecy\t1\tThe party shall keep it secret.\nnone\tcontrol\tThe party may act.\n",
    );
    let buried = run(&["--probe", "buried", "--probe-sentences", "suite.tsv", "--probe-hosts", "2", "--json"]);
    let report: serde_json::Value = serde_json::from_str(buried.ok()).expect("json");
    assert_eq!(report["hosts"], 16);
    assert_eq!(report["per_fold"].as_array().expect("per_fold").len(), 2, "{report}");
    assert_eq!(report["folds"]["planned"], 3);
    assert_eq!(report["labels"][0]["insertions"], 4);
    assert_eq!(report["control_insertions"], 4);
    // A fold whose weights are gone is pooled from the figures saved when
    // its model was probed, and named; the figures are the same.
    let weights = |k: usize| dir.join(format!("cv/fold-{k}/model.safetensors"));
    let aside = |k: usize| dir.join(format!("fold-{k}.safetensors"));
    let saved = |k: usize, probe: &str| dir.join(format!("cv/fold-{k}/probe-{probe}.json"));
    assert!((1..=3).all(|k| saved(k, "headings-removed").is_file()));
    std::fs::rename(weights(2), aside(2)).expect("move fold 2's weights aside");
    let from_saved = run(&["--probe", "headings-removed"]);
    let figures = |text: &str| text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert!(from_saved.ok().contains("(3 folds, of which 2 from figures saved"), "{}", from_saved.stdout);
    assert_eq!(figures(&from_saved.stdout), figures(text));
    // Saved under other settings (hosts per sentence), or not saved at all
    // (a run still going), the fold is left out, and the report names the
    // folds it pools.
    let other_hosts = run(&["--probe", "buried", "--probe-sentences", "suite.tsv", "--probe-hosts", "1", "--json"]);
    let report: serde_json::Value = serde_json::from_str(other_hosts.ok()).expect("json");
    assert_eq!(report["folds"]["probed"], serde_json::json!([1, 3]), "{report}");
    std::fs::remove_file(saved(2, "headings-removed")).expect("remove fold 2's saved figures");
    let partial = run(&["--probe", "headings-removed"]);
    assert!(partial.ok().contains("out of fold (folds 1, 3 of 3"), "{}", partial.stdout);
    // A saved file that is not one is named.
    write(&saved(2, "headings-swapped"), "{\"probe\": 3}");
    run(&["--probe", "headings-swapped"]).fails_with(&["fold-2/probe-headings-swapped.json", "not a fold's saved"]);
    for k in [1, 3] {
        std::fs::rename(weights(k), aside(k)).expect("move weights aside");
        std::fs::remove_file(saved(k, "headings-removed")).expect("remove saved figures");
    }
    run(&["--probe", "headings-removed"]).fails_with(&["no fold has a model or saved figures", "--keep-fold-models"]);
    for k in 1..=3 {
        std::fs::rename(aside(k), weights(k)).expect("restore weights");
    }
    // Without --probe, the run's figures are its summary; a bad plan names its line.
    run(&[]).fails_with(&["cross-validation run", "summary.json"]);
    run(&["--probe", "buried", "--threshold", "0.5"]).fails_with(&["cross-validation run", "--threshold"]);
    let plan = dir.join("cv/folds.tsv");
    let kept = read(&plan);
    write(&plan, kept.replacen("\ttest\n", "\theld\n", 1));
    run(&["--probe", "headings-removed"]).fails_with(&["folds.tsv:", "split `held`"]);
    write(&plan, kept);
}

#[test]
fn probes_bury_sentences_in_label_less_provisions_and_remove_headings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = project_root().join("tests/fixtures/previous-release/model");
    let data = tmp.path().join("data.jsonl");
    let mut rows = String::new();
    for i in 0..6 {
        let labels = if i < 4 { "[]" } else { "[\"secrecy\"]" };
        rows.push_str(&format!(
            "{{\"id\": \"p{i}\", \"text\": \"The party shall act. It may act.\", \"labels\": {labels}}}\n"
        ));
    }
    write(&data, rows);
    let suite = tmp.path().join("suite.tsv");
    write(
        &suite,
        "label\trule\tsentence\nsurveillance\t1\tThe party shall search the data.\nnone\tcontrol\tThe party may act.\n",
    );
    let (model, data_arg, suite_arg) =
        (model.to_str().expect("utf-8"), data.to_str().expect("utf-8"), suite.to_str().expect("utf-8"));
    let run = clause(&[
        "eval",
        "--model",
        model,
        data_arg,
        "--probe",
        "buried",
        "--probe-sentences",
        suite_arg,
        "--probe-hosts",
        "3",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(run.ok()).expect("json");
    assert_eq!(report["hosts"], 4);
    assert_eq!(report["labels"][0]["label"], "surveillance");
    assert_eq!(report["labels"][0]["insertions"], 3);
    assert_eq!(report["control_insertions"], 3);
    let removed = clause(&["eval", "--model", model, data_arg, "--probe", "headings-removed"]);
    assert!(removed.ok().contains("probe headings-removed: 6 examples"), "{}", removed.stdout);
    // A table has no suite of its own; a bad suite names its line.
    clause(&["eval", "--model", model, data_arg, "--probe", "buried"]).fails_with(&["--probe-sentences"]);
    write(&suite, "label\trule\tsentence\nsurveillance\t1\n");
    clause(&["eval", "--model", model, data_arg, "--probe", "buried", "--probe-sentences", suite_arg])
        .fails_with(&["suite.tsv:2:", "3 tab-separated fields"]);
}
