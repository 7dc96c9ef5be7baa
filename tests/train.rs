//! `clause train` end to end on a tiny random base model and a small table
//! dataset, both written by the test.

use std::path::Path;

use crate::util::{clause_command, clause_in, clause_with_env, read, sha256, write};

/// A project with a tiny base model in `base/` and a recipe `datasets/x`
/// over `data/t.jsonl`: documents A (train), B (validation), C (test).
pub fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("base")).expect("mkdir");
    clause_train::fixtures::tiny_base(&dir.join("base")).expect("tiny base");
    let words = clause_train::fixtures::WORDS;
    let mut rows = String::new();
    for i in 0..48 {
        let document = ["A", "A", "A", "A", "B", "C"][i % 6];
        let mut text = vec![words[6 + i % 6], words[6 + (i / 6) % 6]];
        let mut labels = Vec::new();
        if i % 2 == 0 {
            text.push(words[i % 4 / 2]);
            labels.push("\"surveillance\"");
        }
        if i % 3 == 0 {
            text.push(words[4 + i % 2]);
            labels.push("\"secrecy\"");
        }
        rows.push_str(&format!(
            "{{\"id\": \"r{i}\", \"text\": \"{}\", \"labels\": [{}], \"doc\": \"{document}\"}}\n",
            text.join(" "),
            labels.join(", ")
        ));
    }
    let table = dir.join("data/t.jsonl");
    write(&table, rows);
    write(
        &dir.join("datasets/x/dataset.toml"),
        format!(
            r#"name = "x"
description = "tiny"
[[labels]]
name = "surveillance"
description = "search and seizure words"
[[labels]]
name = "secrecy"
description = "secrecy words"
[[sources]]
format = "table"
path = "t.jsonl"
sha256 = "{}"
id_column = "id"
document_column = "doc"
[split]
method = "documents"
validation = ["B"]
test = ["C"]
"#,
            sha256(&table)
        ),
    );
}

#[test]
fn train_builds_the_dataset_and_writes_a_model_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    let run = clause_in(
        dir.path(),
        &[
            "train",
            "datasets/x",
            "--base",
            "base",
            "--out",
            "model",
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--data-root",
            "data",
        ],
    );
    let out = run.ok();
    assert!(
        out.contains("model written to model") && out.contains("surveillance") && out.contains("LexGLUE macro"),
        "{out}"
    );
    assert!(run.stderr.contains("building x") && run.stderr.contains("epoch 3:"), "{}", run.stderr);
    let card: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("model/clause.json"))).expect("clause.json");
    assert_eq!(card["labels"][0]["name"], "surveillance");
    assert_eq!(card["labels"][1]["description"], "secrecy words");
    assert_eq!(card["pooling"], "mean");
    assert_eq!(card["context"], "text");
    assert_eq!(card["history"].as_array().expect("history").len(), 3);
    assert!(card["test"]["micro_f1"].is_number());
    assert_eq!(card["dataset"]["manifest_sha256"], sha256(&dir.path().join("datasets/x/build/manifest.json")));
    assert_eq!(card["base_model"]["sha256"], sha256(&dir.path().join("base/model.safetensors")));
    let config: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("model/config.json"))).expect("config.json");
    assert_eq!(config["id2label"]["0"], "surveillance");
    assert_eq!(config["problem_type"], "multi_label_classification");
    assert_eq!(config["hidden_size"], 16);
    assert_eq!(config["clause_context"], "text", "a transformers user is told what the model reads");
    assert_eq!(read(&dir.path().join("model/tokenizer.json")), read(&dir.path().join("base/tokenizer.json")));
    // The lexical stage is on by default and travels with the model.
    for file in ["lexical.json", "lexical.safetensors"] {
        assert!(dir.path().join("model").join(file).is_file(), "{file}");
    }
    assert_eq!(card["training"]["lexical"], true);
}

#[test]
fn refitting_calibration_keeps_the_encoder_and_fits_or_drops_the_lexical_stage() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    write(&dir.path().join("no-stage.toml"), "lexical = false\n");
    let args = ["train", "datasets/x", "--base", "base", "--out", "model", "--data-root", "data", "--epochs", "1"];
    let with = |extra: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(extra.iter().copied()).collect() };
    clause_in(dir.path(), &with(&["--config", "no-stage.toml"])).ok();
    let model = dir.path().join("model");
    assert!(!model.join("lexical.json").exists());
    let weights = sha256(&model.join("model.safetensors"));
    let refit = clause_in(dir.path(), &with(&["--refit-calibration"]));
    assert!(
        refit.ok().contains("calibration refitted in model") && refit.ok().contains("micro-F1"),
        "{}",
        refit.stdout
    );
    assert!(!refit.stderr.contains("epoch 1"), "no encoder is trained: {}", refit.stderr);
    assert!(model.join("lexical.json").is_file() && model.join("lexical.safetensors").is_file());
    assert_eq!(sha256(&model.join("model.safetensors")), weights);
    let card: serde_json::Value = serde_json::from_str(&read(&model.join("clause.json"))).expect("card");
    assert_eq!(card["training"]["lexical"], true);
    assert!(card["test"]["micro_f1"].is_number() && card["history"].as_array().is_some_and(|h| h.len() == 1));
    // The refitted model classifies, stage and all.
    write(&dir.path().join("draft.txt"), "Article 1\nThe party shall act.\n");
    clause_in(dir.path(), &["classify", "--model", "model", "draft.txt"]).ok();
    // Asked for no stage, the refit removes the one there.
    clause_in(dir.path(), &with(&["--refit-calibration", "--config", "no-stage.toml"])).ok();
    assert!(!model.join("lexical.json").exists() && !model.join("lexical.safetensors").exists());
    let both = clause_in(dir.path(), &with(&["--refit-calibration", "--resume"]));
    assert_eq!(both.code, Some(2), "a usage error");
    assert!(both.stderr.contains("'--refit-calibration' cannot be used with '--resume'"), "{}", both.stderr);
}

#[test]
fn no_test_leaves_the_test_split_unscored() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    let args = ["train", "datasets/x", "--base", "base", "--out", "model", "--data-root", "data", "--epochs", "1"];
    let mut with_flag = args.to_vec();
    with_flag.push("--no-test");
    let out = clause_in(dir.path(), &with_flag).ok().to_string();
    let card: serde_json::Value = serde_json::from_str(&read(&dir.path().join("model/clause.json"))).expect("card");
    assert!(card["test"].is_null(), "{}", card["test"]);
    assert!(card["validation"]["micro_f1"].is_number());
    assert!(out.contains("micro-F1") && out.contains(" -"), "{out}");
}

#[test]
fn base_model_by_hub_id_from_the_offline_cache() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    // The layout huggingface_hub writes: refs/main names the snapshot.
    let repo = dir.path().join("hf/hub/models--org--tiny-bert");
    let commit = "89abcdef0123456789abcdef0123456789abcdef";
    write(&repo.join("refs/main"), commit);
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).expect("mkdir");
    clause_train::fixtures::tiny_base(&snapshot).expect("tiny base");
    let offline = "1";
    let env = [("HF_HOME", dir.path().join("hf")), ("HF_HUB_OFFLINE", offline.into())];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    let args = ["train", "datasets/x", "--out", "model", "--data-root", "data", "--epochs", "1", "--base"];
    let with_base = |id: &str| {
        let mut all = args.to_vec();
        all.push(id);
        clause_with_env(dir.path(), &all, &env)
    };
    with_base("org/tiny-bert").ok();
    let card: serde_json::Value = serde_json::from_str(&read(&dir.path().join("model/clause.json"))).expect("card");
    assert_eq!(card["base_model"]["source"], "org/tiny-bert");
    assert_eq!(card["base_model"]["sha256"], sha256(&snapshot.join("model.safetensors")));
    with_base("org/absent").fails_with(&["model `org/absent`", "HF_HUB_OFFLINE", "model.safetensors"]);
}

#[test]
fn train_errors_name_the_file_or_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    let base = ["train", "datasets/x", "--base", "base", "--out", "model", "--data-root", "data"];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        clause_in(dir.path(), &args)
    };
    with(&["--resume"]).fails_with(&["checkpoint", "no checkpoint to resume from"]);
    write(&dir.path().join("train.toml"), "epochs = 2\nlearning_rate = \"fast\"\n");
    with(&["--config", "train.toml"]).fails_with(&["train.toml", "line 2", "learning_rate"]);
    with(&["--batch-size", "0"]).fails_with(&["`batch_size` must be at least 1"]);
    with(&["--device", "tpu"]).fails_with(&["--device", "expected cpu, cuda or cuda:N"]);
    std::fs::remove_file(dir.path().join("base/model.safetensors")).expect("remove");
    with(&[]).fails_with(&["base model base", "model.safetensors is missing"]);
}

/// Start `clause train` set to pause at `point`, wait until it says it has,
/// and kill it with SIGKILL there.
fn kill_at(dir: &Path, args: &[&str], point: &str) {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = clause_command(dir, args)
        .env("CLAUSE_PAUSE_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start clause train");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(&format!("paused at {point}")) {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "{point}: the run ended before pausing there:\n{seen}");
}

fn model_weights(path: &Path) -> std::collections::HashMap<String, candle_core::Tensor> {
    candle_core::safetensors::load(path, &candle_core::Device::Cpu).expect("model.safetensors")
}

/// SIGKILL inside an epoch, after a checkpoint is staged, and between the two
/// renames that put it in place: each `--resume` goes on from what was left,
/// and the model ends as that of a run never killed.
#[test]
fn training_killed_at_any_point_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    let args = |out: &'static str, resume: bool| {
        let mut args = vec!["train", "datasets/x", "--base", "base", "--data-root", "data", "--out", out];
        args.extend(["--epochs", "3", "--batch-size", "8"]);
        if resume {
            args.push("--resume");
        }
        args
    };
    clause_in(dir.path(), &args("straight", false)).ok();
    let killed = dir.path().join("killed");

    kill_at(dir.path(), &args("killed", false), "epoch 2 batch 1");
    kill_at(dir.path(), &args("killed", true), "checkpoint 2 staged");
    assert!(killed.join("checkpoint/state.json").exists());
    kill_at(dir.path(), &args("killed", true), "checkpoint 3 swapping");
    assert!(!killed.join("checkpoint").exists(), "the kill should have come between the renames");
    let run = clause_in(dir.path(), &args("killed", true));
    run.ok();
    assert!(run.stderr.contains("no checkpoint in place; resuming from"), "{}", run.stderr);
    // A finished run removes its checkpoint, and recovery left nothing beside it.
    let leftovers: Vec<String> = std::fs::read_dir(&killed)
        .expect("read_dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("checkpoint"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let expected = model_weights(&dir.path().join("straight/model.safetensors"));
    let actual = model_weights(&killed.join("model.safetensors"));
    assert_eq!(expected.len(), actual.len());
    for (name, tensor) in &expected {
        let difference = (tensor - &actual[name])
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("difference");
        assert!(difference <= 1e-6, "{name} differs by {difference}");
    }
}

#[test]
fn an_ensemble_averages_its_members_and_resumes_past_finished_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    project(dir.path());
    write(&dir.path().join("ensemble.toml"), "ensemble = 2\nepochs = 2\nbatch_size = 8\n");
    let args =
        ["train", "datasets/x", "--base", "base", "--out", "model", "--data-root", "data", "--config", "ensemble.toml"];
    let run = clause_in(dir.path(), &args);
    let out = run.ok().to_string();
    assert!(
        out.contains("member 1 (seed 20261128)")
            && out.contains("member 2 (seed 20261129)")
            && out.contains("an ensemble of 2"),
        "{out}"
    );
    assert!(run.stderr.contains("member 2 of 2"), "{}", run.stderr);
    let card_path = dir.path().join("model/clause.json");
    let card: serde_json::Value = serde_json::from_str(&read(&card_path)).expect("card");
    let members = card["ensemble"].as_array().expect("ensemble");
    assert_eq!(members.len(), 2);
    assert_eq!((members[0]["dir"].as_str(), members[1]["seed"].as_u64()), (Some("members/1"), Some(20261129)));
    assert!(card["test"]["micro_f1"].is_number(), "the ensemble scores the test split");
    for k in ["1", "2"] {
        let member: serde_json::Value =
            serde_json::from_str(&read(&dir.path().join("model/members").join(k).join("clause.json"))).expect("member");
        assert!(member["test"].is_null(), "a member never sees the test split");
        assert_eq!(member["history"].as_array().expect("history").len(), 2);
    }
    // transformers loads the first member from the top-level files.
    assert_eq!(
        std::fs::read(dir.path().join("model/model.safetensors")).expect("read"),
        std::fs::read(dir.path().join("model/members/1/model.safetensors")).expect("read")
    );
    // clause eval averages the members as training did.
    let eval = clause_in(
        dir.path(),
        &["eval", "--model", "model", "datasets/x", "--data-root", "data", "--split", "validation", "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(eval.ok()).expect("json");
    assert_eq!(report["metrics"], card["validation"]);

    // Interrupted after the first member: --resume keeps it and ends where an
    // uninterrupted run ends.
    std::fs::remove_dir_all(dir.path().join("model/members/2")).expect("remove");
    std::fs::remove_file(&card_path).expect("remove");
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    let run = clause_in(dir.path(), &resumed);
    run.ok();
    assert!(run.stderr.contains("member 1 of 2: trained before, kept"), "{}", run.stderr);
    let again: serde_json::Value = serde_json::from_str(&read(&card_path)).expect("card");
    for field in ["labels", "validation", "test", "ensemble"] {
        assert_eq!(again[field], card[field], "{field}");
    }
}
