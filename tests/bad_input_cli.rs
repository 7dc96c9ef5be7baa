//! Bad input to every command but `dataset build` (see `bad_input`):
//! empty, binary and non-UTF-8 files, huge lines and deeply nested JSON,
//! tables with missing or mistyped columns, duplicate ids and unknown labels,
//! broken model directories, and output paths that cannot be written. Each
//! failure exits 1 with an `error:` line naming the file and the line, row,
//! column or field at fault, never panics, and leaves no file behind; a
//! byte-order mark and CRLF line endings are read as if they were not there.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::{Run, clause_in, clause_with_stdin, read, sha256, tree, write};

/// A draft in the tiny model's vocabulary.
const DRAFT: &str = "Article 1 – Search\n1. the party shall search the data\n2. the state may keep it secret\n\
                     Article 2\nthe data shall be confidential\nArticle 3\n1. the state may seize data\n\
                     2. the party may\n";

/// A project with a tiny model trained (one epoch) on the training tests'
/// table, made once per run of the test binary; the model is `<dir>/model`.
fn trained() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input_cli");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear the previous run");
        }
        crate::train::project(&dir);
        let args = ["train", "datasets/x", "--base", "base", "--out", "model", "--data-root", "data"];
        let mut args = args.to_vec();
        args.extend(["--epochs", "1", "--batch-size", "8", "--no-test"]);
        clause_in(&dir, &args).ok();
        dir
    })
}

/// The trained model directory, as an argument.
fn model() -> String {
    trained().join("model").display().to_string()
}

/// One case's scratch directory: inputs, outputs and broken models.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `relative`, as an argument.
    fn arg(&self, relative: &str) -> String {
        self.root().join(relative).display().to_string()
    }

    /// Write `relative` and return its path as an argument.
    fn file(&self, relative: &str, contents: impl AsRef<[u8]>) -> String {
        write(&self.root().join(relative), contents);
        self.arg(relative)
    }

    fn run(&self, args: &[&str]) -> Run {
        clause_in(self.root(), args)
    }

    fn run_with_stdin(&self, args: &[&str], input: impl Into<Vec<u8>>) -> Run {
        clause_with_stdin(self.root(), args, input.into())
    }

    /// Run `args`, expecting a clean failure whose message holds every
    /// needle, and that nothing was created or removed anywhere in the case
    /// directory: no output, half-written or whole, and no temporary file.
    #[track_caller]
    fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        let before = tree(self.root());
        let stderr = self.run(args).fails_with(needles).to_string();
        assert_eq!(tree(self.root()), before, "the failed run left files behind\n{stderr}");
        stderr
    }

    /// A copy of the trained model's files in `<case>/m`, to break.
    fn model_copy(&self) -> PathBuf {
        let copy = self.root().join("m");
        std::fs::create_dir_all(&copy).expect("mkdir");
        for file in ["config.json", "tokenizer.json", "model.safetensors", "clause.json"] {
            std::fs::copy(trained().join("model").join(file), copy.join(file)).expect("copy");
        }
        copy
    }
}

/// `text` with a byte-order mark and CRLF line endings.
fn bom_crlf(text: &str) -> String {
    format!("\u{feff}{}", text.replace('\n', "\r\n"))
}

/// Bytes that are neither text nor any format the commands read: a PNG
/// signature, NULs and a pseudo-random tail.
fn binary(len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    while bytes.len() < len {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        bytes.push((state >> 56) as u8);
    }
    bytes
}

/// JSON nested `depth` lists deep.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// What a classification record says, without where it was read from.
fn essence(record: &Value) -> Value {
    json!([record["id"], record["text"], record["labels"], record["scores"], record["article"], record["title"]])
}

/// Whether this process may write into a directory without write
/// permission (root, or CAP_DAC_OVERRIDE), found by trying.
fn permissions_are_ignored(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ignored = std::fs::write(&probe, "x").is_ok();
    let _ = std::fs::remove_file(&probe);
    ignored
}

// ---------------------------------------------------------------- segment

#[test]
fn segment_binary_file() {
    let case = Case::new();
    let path = case.file("scan.md", binary(4096));
    case.fails(&["segment", &path], &["scan.md:1", "not valid UTF-8", "byte 0"]);
}

#[test]
fn segment_non_utf8_names_the_line() {
    let case = Case::new();
    let path = case.file("latin1.md", b"Article 1\nThe Party shall act.\nCaf\xe9 cr\xe8me\n".as_slice());
    case.fails(&["segment", "--format", "jsonl", &path], &["latin1.md:3", "not valid UTF-8", "convert the file"]);
}

#[test]
fn segment_empty_file_warns_and_prints_nothing() {
    let case = Case::new();
    for (name, contents) in [("empty.md", ""), ("blank.md", "\n \r\n\t\n")] {
        let path = case.file(name, contents);
        let run = case.run(&["segment", "--format", "jsonl", &path]);
        assert_eq!(run.ok(), "", "{name}");
        assert!(run.stderr.contains("no provisions found") && run.stderr.contains(name), "{}", run.stderr);
    }
}

#[test]
fn segment_reads_bom_and_crlf_as_plain_text() {
    let case = Case::new();
    let plain = case.file("d.md", DRAFT);
    let windows = case.file("d.txt", bom_crlf(DRAFT));
    let records = |path: &str| jsonl(case.run(&["segment", "--format", "jsonl", path]).ok());
    let (plain, windows) = (records(&plain), records(&windows));
    assert_eq!(plain.len(), 5);
    assert_eq!(plain.len(), windows.len());
    for (a, b) in plain.iter().zip(&windows) {
        for field in ["id", "article", "paragraph", "title", "text", "line"] {
            assert_eq!(a[field], b[field], "{field}");
        }
        let text = b["text"].as_str().expect("text");
        assert!(!text.contains(['\r', '\u{feff}']), "{text:?}");
    }
    assert_eq!(windows[0]["title"], "Search");
}

#[test]
fn segment_a_50_mb_line() {
    let case = Case::new();
    let line = "the party shall search the data ".repeat(50 * 1024 * 1024 / 32);
    let path = case.file("long.txt", format!("{line}\n"));
    let run = case.run(&["segment", "--format", "annotations", &path]);
    let out = run.ok();
    assert_eq!(out.lines().count(), 1, "one provision");
    assert!(out.starts_with("long:preamble\t"), "{}", &out[..out.len().min(200)]);
}

// ---------------------------------------------------------------- classify

#[test]
fn classify_empty_inputs_write_nothing() {
    let case = Case::new();
    let model = model();
    let out = case.arg("out.jsonl");
    let classify = |input: &str| {
        let args = ["classify", "--model", model.as_str(), "-o", out.as_str(), input];
        args.map(str::to_string)
    };
    let draft = case.file("empty.md", "");
    let fails = |input: &str, needles: &[&str]| {
        let args = classify(input);
        case.fails(&args.each_ref().map(String::as_str), needles);
    };
    fails(&draft, &["empty.md", "no provisions found"]);
    let table = case.file("empty.jsonl", "");
    fails(&table, &["empty.jsonl", "the table has no rows"]);
    let table = case.file("empty.csv", "");
    fails(&table, &["empty.csv", "the table has no rows"]);
    let header = case.file("header.csv", "id,text\n");
    fails(&header, &["header.csv", "the table has no rows"]);
}

#[test]
fn classify_binary_files_write_nothing() {
    let case = Case::new();
    let model = model();
    let out = case.arg("out.csv");
    for (name, needles) in [
        ("scan.txt", ["scan.txt:1", "not valid UTF-8"]),
        ("scan.jsonl", ["scan.jsonl:1", "not valid UTF-8"]),
        ("scan.csv", ["scan.csv:1", "not valid UTF-8"]),
        ("scan.parquet", ["scan.parquet", "parquet"]),
    ] {
        let path = case.file(name, binary(8192));
        case.fails(&["classify", "--model", &model, &path, "-o", &out], &needles);
    }
}

#[test]
fn classify_non_utf8_tables_and_stdin_name_the_line() {
    let case = Case::new();
    let model = model();
    let table = case.file("t.jsonl", b"{\"text\": \"the data\"}\n{\"text\": \"caf\xe9\"}\n".as_slice());
    case.fails(&["classify", "--model", &model, &table, "-o", "out.jsonl"], &["t.jsonl:2", "not valid UTF-8"]);
    let table = case.file("t.csv", b"text\nthe data\nthe state\ncaf\xe9\n".as_slice());
    case.fails(&["classify", "--model", &model, &table], &["t.csv:4", "not valid UTF-8"]);
    let run = case.run_with_stdin(&["classify", "--model", &model, "-"], b"Article 1\nthe data\n\xff\xfe\n".as_slice());
    run.fails_with(&["stdin", "not UTF-8", "line 3"]);
}

#[test]
fn classify_reads_bom_and_crlf_drafts_as_plain_text() {
    let case = Case::new();
    let model = model();
    let plain = case.file("d.md", DRAFT);
    let windows = case.file("w/d.md", bom_crlf(DRAFT));
    let records = |run: Run| jsonl(run.ok()).iter().map(essence).collect::<Vec<_>>();
    let want = records(case.run(&["classify", "--model", &model, &plain, "--format", "jsonl"]));
    assert_eq!(want.len(), 5);
    assert_eq!(records(case.run(&["classify", "--model", &model, &windows, "--format", "jsonl"])), want);
    let stdin = case.run_with_stdin(&["classify", "--model", &model, "-", "--format", "jsonl"], bom_crlf(DRAFT));
    let stdin = records(stdin);
    assert_eq!(stdin.len(), want.len());
    for (got, want) in stdin.iter().zip(&want) {
        // The document is `stdin` there; everything else is the same.
        assert_eq!(got.as_array().expect("list")[1..], want.as_array().expect("list")[1..]);
    }
}

#[test]
fn classify_reads_bom_and_crlf_tables_as_plain_text() {
    let case = Case::new();
    let model = model();
    let csv = "id,text,page\nr1,\"the party shall\r\nsearch the data\",3\nr2,the state may keep it secret,4\n";
    let jsonl_rows = "{\"id\": \"r1\", \"text\": \"the party shall search the data\", \"page\": 3}\n\
                      {\"id\": \"r2\", \"text\": \"the state may keep it secret\", \"page\": 4}\n";
    let mut seen = Vec::new();
    for (name, contents) in [
        ("plain.csv", csv.to_string()),
        ("bom.csv", bom_crlf(csv)),
        ("plain.jsonl", jsonl_rows.to_string()),
        ("bom.jsonl", bom_crlf(jsonl_rows)),
    ] {
        let path = case.file(name, contents);
        let records = jsonl(case.run(&["classify", "--model", &model, &path, "--format", "jsonl"]).ok());
        assert_eq!(records.len(), 2, "{name}");
        for record in &records {
            let fields: Vec<&String> = record.as_object().expect("object").keys().collect();
            assert!(fields.iter().any(|f| *f == "page"), "{name}: {fields:?}");
            assert!(!fields.iter().any(|f| f.contains('\u{feff}')), "{name}: {fields:?}");
            assert_eq!(record["page"], if record["id"] == "r1" { 3 } else { 4 }, "{name}");
        }
        seen.push(records.iter().map(essence).collect::<Vec<_>>());
    }
    assert!(seen.iter().all(|s| *s == seen[0]), "{seen:?}");
}

#[test]
fn classify_deeply_nested_jsonl_names_the_line() {
    let case = Case::new();
    let model = model();
    let rows = format!("{{\"text\": \"the data\"}}\n{{\"text\": \"the state\", \"extra\": {}}}\n", nested(100_000));
    let table = case.file("deep.jsonl", rows);
    case.fails(&["classify", "--model", &model, &table, "-o", "out.jsonl"], &["deep.jsonl:2", "recursion limit"]);
}

#[test]
fn classify_a_50_mb_line() {
    let case = Case::new();
    let model = model();
    let line = "the party shall search the data ".repeat(50 * 1024 * 1024 / 32);
    let path = case.file("long.txt", format!("{line}\n"));
    let out = case.arg("out.jsonl");
    case.run(&["classify", "--model", &model, &path, "-o", &out]).ok();
    let records = jsonl(&read(Path::new(&out)));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["id"], "long:preamble");
    assert_eq!(records[0]["end"], line.trim_end().len());
}

#[test]
fn classify_a_jsonl_row_of_50_mb() {
    let case = Case::new();
    let text = "the state may keep it secret ".repeat(50 * 1024 * 1024 / 29);
    let table = case.file(
        "big.jsonl",
        format!("{}\n{}\n", json!({ "id": "big", "text": text }), json!({ "id": "small", "text": "the data" })),
    );
    let out = case.arg("out.jsonl");
    case.run(&["classify", "--model", &model(), &table, "-o", &out]).ok();
    let records = jsonl(&read(Path::new(&out)));
    assert_eq!(records.iter().map(|r| r["id"].as_str().expect("id")).collect::<Vec<_>>(), ["big", "small"]);
    assert_eq!(records[0]["text"], text.trim_end());
}

#[test]
fn classify_parquet_text_column_of_integers() {
    let case = Case::new();
    let model = model();
    let draft = case.file("d.md", DRAFT);
    let parquet = case.arg("d.parquet");
    case.run(&["classify", "--model", &model, &draft, "--format", "parquet", "-o", &parquet]).ok();
    case.fails(
        &["classify", "--model", &model, &parquet, "--text-field", "line", "-o", "out.jsonl"],
        &["d.parquet", "column `line`", "expected strings, found i64"],
    );
}

#[test]
fn classify_parquet_with_a_corrupt_footer() {
    // polars-parquet panics on the first file and aborts the process on the
    // others, reserving over 100 GB (all found by the table fuzz target).
    let case = Case::new();
    let model = model();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/clause-data/src/fixtures");
    for (fixture, expected) in [
        ("corrupt-footer.parquet", "metadata is corrupt"),
        ("footer-length-bomb.parquet", "field 2 of FileMetaData has type 6"),
        ("footer-type-confusion.parquet", "field 6 of FileMetaData has type 9"),
    ] {
        let parquet = case.file("bad.parquet", std::fs::read(fixtures.join(fixture)).expect("fixture"));
        case.fails(
            &["classify", "--model", &model, &parquet, "-o", "out.jsonl"],
            &["bad.parquet", "not a readable Parquet file", expected],
        );
    }
}

#[test]
fn classify_missing_text_and_title_columns() {
    let case = Case::new();
    let model = model();
    let table = case.file("t.jsonl", "{\"id\": \"a\", \"text\": \"the data\"}\n");
    case.fails(
        &["classify", "--model", &model, &table, "--text-field", "body", "-o", "out.jsonl"],
        &["t.jsonl", "column `body`", "missing", "the table has columns: id, text"],
    );
    case.fails(
        &["classify", "--model", &model, &table, "--title-field", "heading", "-o", "out.jsonl"],
        &["t.jsonl", "column `heading`", "missing"],
    );
}

#[test]
fn classify_duplicate_ids_in_a_table() {
    let case = Case::new();
    let model = model();
    let table = case.file("t.csv", "id,text\na,the data\nb,the state\na,the party\n");
    case.fails(
        &["classify", "--model", &model, &table, "-o", "out.jsonl"],
        &["t.csv", "column `id`", "row 3", "duplicate id `a`", "row 1"],
    );
}

#[test]
fn classify_output_in_a_missing_directory_or_under_a_file() {
    let case = Case::new();
    let model = model();
    let draft = case.file("d.md", DRAFT);
    let missing = case.arg("no/such/dir/out.jsonl");
    case.fails(&["classify", "--model", &model, &draft, "-o", &missing], &["no/such/dir", "does not exist"]);
    case.file("plain-file", "x");
    let under_file = case.arg("plain-file/out.jsonl");
    case.fails(&["classify", "--model", &model, &draft, "-o", &under_file], &["plain-file", "not a directory"]);
}

#[test]
fn classify_output_onto_a_directory() {
    let case = Case::new();
    let model = model();
    let draft = case.file("d.md", DRAFT);
    std::fs::create_dir(case.root().join("taken")).expect("mkdir");
    case.fails(
        &["classify", "--model", &model, &draft, "-o", &case.arg("taken")],
        &["taken", "cannot move the output into place"],
    );
}

// ---------------------------------------------------------------- model directories

#[test]
fn model_directory_missing_a_file() {
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let case = Case::new();
        let broken = case.model_copy();
        std::fs::remove_file(broken.join(file)).expect("remove");
        let draft = case.file("d.md", DRAFT);
        case.fails(
            &["classify", "--model", &broken.display().to_string(), &draft, "-o", "out.jsonl"],
            &[&format!("m/{file}"), "missing"],
        );
    }
}

#[test]
fn model_with_truncated_weights() {
    let case = Case::new();
    let broken = case.model_copy();
    let weights = broken.join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    write(&weights, &bytes[..bytes.len() / 2]);
    let table = case.file("t.jsonl", "{\"text\": \"the data\", \"labels\": []}\n");
    case.fails(
        &["eval", "--model", &broken.display().to_string(), &table],
        &["m/model.safetensors", "not a valid safetensors file", "incomplete metadata"],
    );
}

#[test]
fn model_with_random_bytes_for_weights() {
    let case = Case::new();
    let broken = case.model_copy();
    write(&broken.join("model.safetensors"), binary(1 << 16));
    let draft = case.file("d.md", DRAFT);
    case.fails(
        &["diff", "--model", &broken.display().to_string(), &draft, &draft],
        &["m/model.safetensors", "not a valid safetensors file"],
    );
}

/// Rewrite the JSON header of a safetensors file, keeping its data.
fn edit_safetensors_header(path: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let bytes = std::fs::read(path).expect("read");
    let length = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + length]).expect("header");
    edit(header.as_object_mut().expect("object"));
    let header = serde_json::to_vec(&header).expect("json");
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(&bytes[8 + length..]);
    write(path, out);
}

#[test]
fn model_weights_whose_header_disagrees_with_their_sizes() {
    let case = Case::new();
    let broken = case.model_copy();
    edit_safetensors_header(&broken.join("model.safetensors"), |header| {
        let tensor = header.iter_mut().find(|(name, _)| name.ends_with("word_embeddings.weight")).expect("tensor").1;
        tensor["shape"][0] = json!(tensor["shape"][0].as_u64().expect("dim") * 2);
    });
    let draft = case.file("d.md", DRAFT);
    case.fails(&["report", "--model", &broken.display().to_string(), &draft, "-o", "r.html"], &["m/model.safetensors"]);
}

#[test]
fn model_config_whose_shapes_disagree_with_the_weights() {
    let case = Case::new();
    let broken = case.model_copy();
    let mut config: Value = serde_json::from_str(&read(&broken.join("config.json"))).expect("config");
    config["hidden_size"] = json!(32);
    write(&broken.join("config.json"), config.to_string());
    let draft = case.file("d.md", DRAFT);
    let stderr = case.fails(
        &["classify", "--model", &broken.display().to_string(), &draft, "-o", "out.jsonl"],
        &["m/model.safetensors", "shape mismatch", "[16, 16]", "do not fit config.json (hidden_size 32"],
    );
    // Whatever RUST_BACKTRACE says, the user is not shown candle's stack.
    assert!(!stderr.contains("candle_core::"), "{stderr}");
}

#[test]
fn model_tokenizer_of_another_model() {
    let case = Case::new();
    let broken = case.model_copy();
    let mut tokenizer: Value = serde_json::from_str(&read(&broken.join("tokenizer.json"))).expect("tokenizer");
    let vocab = tokenizer["model"]["vocab"].as_object_mut().expect("vocab");
    for i in 0..100 {
        let id = vocab.len();
        vocab.insert(format!("extra{i}"), json!(id));
    }
    write(&broken.join("tokenizer.json"), tokenizer.to_string());
    let draft = case.file("d.md", DRAFT);
    let model = broken.display().to_string();
    case.fails(
        &["classify", "--model", &model, &draft, "-o", "out.jsonl"],
        &["m/tokenizer.json", "116 tokens", "vocab_size 16", "another model"],
    );
    // Not a tokenizer at all: a vocabulary list in its place.
    write(&broken.join("tokenizer.json"), "{\"vocab\": [\"[PAD]\", \"the\"]}");
    case.fails(&["classify", "--model", &model, &draft, "-o", "out.jsonl"], &["m/tokenizer.json"]);
}

#[test]
fn model_config_that_is_not_json_or_nested_too_deep() {
    let case = Case::new();
    let broken = case.model_copy();
    let model = broken.display().to_string();
    let draft = case.file("d.md", DRAFT);
    let config = read(&broken.join("config.json"));
    write(&broken.join("config.json"), &config[..config.len() / 2]);
    case.fails(&["classify", "--model", &model, &draft, "-o", "out.jsonl"], &["m/config.json", "line 1"]);
    write(&broken.join("config.json"), format!("{{\"id2label\": {}}}", nested(100_000)));
    case.fails(&["classify", "--model", &model, &draft, "-o", "out.jsonl"], &["m/config.json", "recursion limit"]);
    write(&broken.join("config.json"), binary(512));
    case.fails(&["classify", "--model", &model, &draft, "-o", "out.jsonl"], &["m/config.json"]);
}

// ---------------------------------------------------------------- eval

#[test]
fn eval_ground_truth_with_a_label_the_model_lacks() {
    let case = Case::new();
    let table = case.file(
        "truth.jsonl",
        "{\"text\": \"the data\", \"labels\": []}\n{\"text\": \"x\", \"labels\": [\"espionage\"]}\n",
    );
    case.fails(
        &["eval", "--model", &model(), &table, "--json"],
        &["truth.jsonl:row 2 column `labels`", "unknown label `espionage`", "predicts: secrecy, surveillance"],
    );
}

#[test]
fn eval_missing_columns() {
    let case = Case::new();
    let model = model();
    let table = case.file("truth.csv", "text,labels\nthe data,surveillance\n");
    case.fails(
        &["eval", "--model", &model, &table, "--text-field", "body"],
        &["truth.csv", "column `body`", "missing", "the table has columns: text, labels"],
    );
    case.fails(
        &["eval", "--model", &model, &table, "--labels-field", "tags"],
        &["truth.csv", "column `tags`", "missing"],
    );
}

#[test]
fn eval_duplicate_ids() {
    let case = Case::new();
    let table = case.file(
        "truth.jsonl",
        "{\"id\": \"r1\", \"text\": \"the data\", \"labels\": []}\n\
         {\"id\": \"r2\", \"text\": \"the state\", \"labels\": []}\n\
         {\"id\": \"r1\", \"text\": \"the party\", \"labels\": [\"secrecy\"]}\n",
    );
    case.fails(&["eval", "--model", &model(), &table], &["truth.jsonl", "duplicate id `r1`", "row 3", "row 1"]);
}

#[test]
fn eval_parquet_columns_of_the_wrong_type() {
    let case = Case::new();
    let model = model();
    let draft = case.file("d.md", DRAFT);
    let parquet = case.arg("d.parquet");
    case.run(&["classify", "--model", &model, &draft, "--format", "parquet", "-o", &parquet]).ok();
    case.fails(
        &["eval", "--model", &model, &parquet, "--labels-field", "score_secrecy"],
        &["d.parquet", "column `score_secrecy`", "expected a list of strings or a delimited string, found f64"],
    );
    case.fails(
        &["eval", "--model", &model, &parquet, "--text-field", "start"],
        &["d.parquet", "column `start`", "expected strings, found i64"],
    );
    // The file classify wrote is itself valid ground truth.
    case.run(&["eval", "--model", &model, &parquet]).ok();
}

#[test]
fn eval_empty_and_binary_tables() {
    let case = Case::new();
    let model = model();
    let empty = case.file("empty.jsonl", "\n");
    case.fails(&["eval", "--model", &model, &empty], &["empty.jsonl", "no labelled examples"]);
    let scan = case.file("scan.parquet", binary(4096));
    case.fails(&["eval", "--model", &model, &scan], &["scan.parquet"]);
    let scan = case.file("scan.csv", binary(4096));
    case.fails(&["eval", "--model", &model, &scan], &["scan.csv:1", "not valid UTF-8"]);
}

#[test]
fn eval_reads_bom_and_crlf_tables() {
    let case = Case::new();
    let rows = "{\"text\": \"the party shall search\", \"labels\": [\"surveillance\"]}\n\
                {\"text\": \"the state keeps it secret\", \"labels\": [\"secrecy\"]}\n\
                {\"text\": \"the data\", \"labels\": []}\n";
    let table = case.file("truth.jsonl", bom_crlf(rows));
    let report: Value =
        serde_json::from_str(case.run(&["eval", "--model", &model(), &table, "--json"]).ok()).expect("json report");
    assert_eq!(report["examples"], 3);
    let csv = case.file("truth.csv", bom_crlf("text,labels\nthe party shall search,surveillance\nthe data,\n"));
    let report: Value =
        serde_json::from_str(case.run(&["eval", "--model", &model(), &csv, "--json"]).ok()).expect("json report");
    assert_eq!(report["examples"], 2);
}

// ---------------------------------------------------------------- diff

#[test]
fn diff_binary_and_non_utf8_drafts() {
    let case = Case::new();
    let model = model();
    let draft = case.file("d.md", DRAFT);
    let scan = case.file("v2.md", binary(2048));
    case.fails(&["diff", "--model", &model, &draft, &scan], &["v2.md:1", "not valid UTF-8"]);
    let latin1 = case.file("old.md", b"Article 1\nthe data\nArticle 2\ncaf\xe9\n".as_slice());
    case.fails(&["diff", "--model", &model, &latin1, &draft], &["old.md:4", "not valid UTF-8"]);
    let table = case.file("t.csv", "text\nthe data\n");
    case.fails(&["diff", "--model", &model, &draft, &table], &["t.csv", "diff compares drafts"]);
}

#[test]
fn diff_of_a_draft_and_its_bom_crlf_copy_is_empty() {
    let case = Case::new();
    let plain = case.file("d.md", DRAFT);
    let windows = case.file("w/d.md", bom_crlf(DRAFT));
    let run = case.run(&["diff", "--model", &model(), &plain, &windows, "--format", "json"]);
    let diff: Value = serde_json::from_str(run.ok()).expect("json");
    let changes = diff["changes"].as_array().expect("changes");
    assert!(changes.iter().all(|c| c["kind"] == "unchanged"), "{diff:#}");
}

// ---------------------------------------------------------------- report

#[test]
fn report_output_in_a_read_only_directory() {
    let case = Case::new();
    let draft = case.file("d.md", DRAFT);
    let locked = case.root().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let mut permissions = std::fs::metadata(&locked).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o555);
    std::fs::set_permissions(&locked, permissions.clone()).expect("chmod");
    if permissions_are_ignored(&locked) {
        // Root writes through permissions: make the directory unwritable
        // the one way root cannot, by making its path go through a file.
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&locked, permissions).expect("chmod");
        std::fs::remove_dir(&locked).expect("rmdir");
        write(&locked, "a file, not a directory");
        let output = case.arg("locked/r.html");
        case.fails(&["report", "--model", &model(), &draft, "-o", &output], &["locked", "not a directory"]);
    } else {
        let output = case.arg("locked/r.html");
        case.fails(
            &["report", "--model", &model(), &draft, "-o", &output],
            &["locked/r.html", "cannot create the output file", "ermission denied"],
        );
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&locked, permissions).expect("chmod");
    }
}

#[test]
fn report_of_an_empty_or_binary_draft_writes_nothing() {
    let case = Case::new();
    let model = model();
    let empty = case.file("empty.md", "\u{feff}\r\n\r\n");
    case.fails(&["report", "--model", &model, &empty, "-o", "r.html"], &["empty.md", "no provisions found"]);
    let scan = case.file("scan.txt", binary(1024));
    case.fails(&["report", "--model", &model, &scan, "-o", "r.html"], &["scan.txt:1", "not valid UTF-8"]);
    let table = case.file("t.jsonl", "{\"text\": \"the data\"}\n");
    case.fails(&["report", "--model", &model, &table, "-o", "r.html"], &["t.jsonl", "not a table"]);
}

#[test]
fn report_of_a_bom_crlf_draft_equals_the_plain_one() {
    let case = Case::new();
    let model = model();
    let plain = case.file("d.md", DRAFT);
    let windows = case.file("w/d.md", bom_crlf(DRAFT));
    case.run(&["report", "--model", &model, &plain, "--format", "markdown", "-o", "a.md"]).ok();
    case.run(&["report", "--model", &model, &windows, "--format", "markdown", "-o", "b.md"]).ok();
    assert_eq!(read(&case.root().join("a.md")), read(&case.root().join("b.md")));
}

// ---------------------------------------------------------------- train

/// The training tests' project in a fresh case.
fn train_case() -> Case {
    let case = Case::new();
    crate::train::project(case.root());
    case
}

const TRAIN: [&str; 8] = ["train", "datasets/x", "--base", "base", "--data-root", "data", "--epochs", "1"];

fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = TRAIN.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn train_out_under_a_regular_file() {
    let case = train_case();
    case.file("models", "a file, not a directory");
    // The dataset is built first; what must not appear is any model output.
    case.run(&["dataset", "build", "datasets/x", "--data-root", "data"]).ok();
    case.fails(&train_args(&["--out", "models/m"]), &["models/m", "not a directory"]);
}

#[test]
fn train_base_model_with_broken_files() {
    let case = train_case();
    case.run(&["dataset", "build", "datasets/x", "--data-root", "data"]).ok();
    let base = case.root().join("base");
    let weights = std::fs::read(base.join("model.safetensors")).expect("read");
    write(&base.join("model.safetensors"), &weights[..weights.len() - 100]);
    case.fails(&train_args(&["--out", "model"]), &["base/model.safetensors"]);
    write(&base.join("model.safetensors"), &weights);

    let tokenizer = read(&base.join("tokenizer.json"));
    std::fs::remove_file(base.join("tokenizer.json")).expect("remove");
    case.fails(&train_args(&["--out", "model"]), &["base", "tokenizer.json"]);
    write(&base.join("tokenizer.json"), &tokenizer);

    let config = read(&base.join("config.json"));
    let mut wide: Value = serde_json::from_str(&config).expect("config");
    wide["hidden_size"] = json!(32);
    write(&base.join("config.json"), wide.to_string());
    case.fails(
        &train_args(&["--out", "model"]),
        &["base/model.safetensors", "has shape [16], the config implies [32]"],
    );
    write(&base.join("config.json"), &config);

    case.run(&train_args(&["--out", "model", "--no-test"])).ok();
}

#[test]
fn train_config_file_binary_or_empty() {
    let case = train_case();
    case.run(&["dataset", "build", "datasets/x", "--data-root", "data"]).ok();
    case.file("train.toml", binary(256));
    case.fails(&train_args(&["--out", "model", "--config", "train.toml"]), &["train.toml", "UTF-8"]);
    case.file("train.toml", bom_crlf("epochs = 1\nbatch_size = 8\n"));
    case.run(&train_args(&["--out", "model", "--config", "train.toml", "--no-test"])).ok();
}

// ---------------------------------------------------------------- dataset annotate

/// A recipe `datasets/x` whose one annotation file covers a draft, every
/// provision unlabelled; returns the provisions (id and text).
fn annotate_case() -> (Case, Vec<(String, String)>) {
    let case = Case::new();
    let draft = case.file("data/d.md", DRAFT);
    let template = case.run(&["segment", "--format", "annotations", &draft]);
    case.file("datasets/x/annotations/d.tsv", template.ok());
    case.file(
        "datasets/x/dataset.toml",
        format!(
            "name = \"x\"\ndescription = \"annotate\"\nannotations = [\"annotations/d.tsv\"]\n\
             [[labels]]\nname = \"surveillance\"\ndescription = \"s\"\n\
             [[labels]]\nname = \"secrecy\"\ndescription = \"c\"\n\
             [[sources]]\nformat = \"draft\"\npath = \"d.md\"\nsha256 = \"{}\"\n\
             [split]\nmethod = \"documents\"\nvalidation = []\ntest = []\n",
            sha256(Path::new(&draft))
        ),
    );
    let provisions = jsonl(case.run(&["segment", "--format", "jsonl", &draft]).ok())
        .iter()
        .map(|p| (p["id"].as_str().expect("id").to_string(), p["text"].as_str().expect("text").to_string()))
        .collect();
    (case, provisions)
}

fn correction(id: &str, text: &str, labels: &[&str]) -> String {
    format!("{}\n", json!({ "id": id, "text": text, "labels": labels }))
}

impl Case {
    /// `dataset annotate` fails cleanly and the annotation file is as it was.
    #[track_caller]
    fn annotate_fails(&self, corrections: &str, needles: &[&str]) {
        let annotations = self.root().join("datasets/x/annotations/d.tsv");
        let before = read(&annotations);
        self.fails(&["dataset", "annotate", "datasets/x", corrections], needles);
        assert_eq!(read(&annotations), before, "annotations changed");
    }
}

#[test]
fn annotate_label_not_in_the_recipe() {
    let (case, provisions) = annotate_case();
    let (id, text) = &provisions[1];
    let rows = correction(&provisions[0].0, &provisions[0].1, &["surveillance"]) + &correction(id, text, &["gag"]);
    case.file("reviewed.jsonl", rows);
    case.annotate_fails("reviewed.jsonl", &["reviewed.jsonl:row 2 column `labels`", "unknown label `gag`"]);
}

#[test]
fn annotate_contradicting_duplicate_ids() {
    let (case, provisions) = annotate_case();
    let (id, text) = &provisions[0];
    let rows = correction(id, text, &["surveillance"])
        + &correction(&provisions[1].0, &provisions[1].1, &["secrecy"])
        + &correction(id, text, &["secrecy"]);
    case.file("reviewed.jsonl", rows);
    case.annotate_fails("reviewed.jsonl", &["reviewed.jsonl:row 3", &format!("id `{id}`"), "contradicts", "row 1"]);
}

#[test]
fn annotate_empty_binary_and_columnless_corrections() {
    let (case, provisions) = annotate_case();
    case.file("empty.jsonl", "");
    case.annotate_fails("empty.jsonl", &["empty.jsonl", "no corrections"]);
    case.file("scan.jsonl", binary(1024));
    case.annotate_fails("scan.jsonl", &["scan.jsonl:1", "not valid UTF-8"]);
    case.file("untexted.jsonl", format!("{}\n", json!({ "id": provisions[0].0, "labels": ["secrecy"] })));
    case.annotate_fails("untexted.jsonl", &["untexted.jsonl", "column `text`", "missing"]);
    case.file("deep.jsonl", format!("{{\"id\": \"x\", \"text\": \"y\", \"labels\": {}}}\n", nested(100_000)));
    case.annotate_fails("deep.jsonl", &["deep.jsonl:1", "recursion limit"]);
}

#[test]
fn annotate_reads_bom_and_crlf_corrections() {
    let (case, provisions) = annotate_case();
    let (id, text) = &provisions[1];
    case.file("reviewed.jsonl", bom_crlf(&correction(id, text, &["secrecy"])));
    let out = case.run(&["dataset", "annotate", "datasets/x", "reviewed.jsonl"]).ok().to_string();
    assert!(out.contains(&format!("{id}  - -> secrecy")), "{out}");
    let annotations = read(&case.root().join("datasets/x/annotations/d.tsv"));
    let line = annotations.lines().find(|l| l.starts_with(&format!("{id}\t"))).expect("line");
    assert_eq!(line.split('\t').nth(2), Some("secrecy"));
}

// ---------------------------------------------------------------- serve --stdio

fn serve_stdio(case: &Case, model: &str, input: impl Into<Vec<u8>>) -> Run {
    case.run_with_stdin(&["serve", "--model", model, "--stdio"], input)
}

/// A request line that must be answered with results.
fn good_request(id: &str) -> String {
    json!({ "id": id, "texts": ["the party shall search the data"] }).to_string()
}

#[track_caller]
fn answers(run: &Run) -> Vec<Value> {
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    jsonl(&run.stdout)
}

#[test]
fn serve_stdio_deeply_nested_and_50_mb_lines() {
    let case = Case::new();
    let mut input = Vec::new();
    input.extend(format!("{{\"texts\": {}}}\n", nested(100_000)).bytes());
    input.extend(b"{\"texts\": [\"");
    input.extend(std::iter::repeat_n(b'a', 50 * 1024 * 1024));
    input.extend(b"\"]}\n");
    input.extend(format!("{}\n", good_request("after")).bytes());
    let answers = answers(&serve_stdio(&case, &model(), input));
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["error"]["code"], "invalid_json");
    assert!(answers[0]["error"]["message"].as_str().expect("message").contains("recursion limit"), "{answers:?}");
    assert_eq!(answers[1]["error"]["code"], "body_too_large");
    assert_eq!(answers[2]["id"], "after");
    assert_eq!(answers[2]["results"].as_array().expect("results").len(), 1);
}

#[test]
fn serve_stdio_binary_and_non_utf8_lines() {
    let case = Case::new();
    let mut input = binary(4096).into_iter().filter(|&b| b != b'\n').collect::<Vec<u8>>();
    input.push(b'\n');
    input.extend(b"{\"texts\": [\"caf\xe9\"]}\n");
    input.extend(format!("{}\n", good_request("after")).bytes());
    let answers = answers(&serve_stdio(&case, &model(), input));
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0]["error"]["code"], "invalid_json");
    assert_eq!(answers[1]["error"]["code"], "invalid_json");
    assert_eq!(answers[2]["id"], "after");
}

#[test]
fn serve_stdio_reads_bom_and_crlf() {
    let case = Case::new();
    let input = bom_crlf(&format!("{}\n{}\n", good_request("first"), good_request("second")));
    let answers = answers(&serve_stdio(&case, &model(), input));
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert_eq!(answers[0]["id"], "first", "{answers:?}");
    assert_eq!(answers[1]["id"], "second", "{answers:?}");
    assert!(answers.iter().all(|a| a["results"].is_array()), "{answers:?}");
}

#[test]
fn serve_stdio_empty_input_answers_nothing() {
    let case = Case::new();
    assert!(answers(&serve_stdio(&case, &model(), "")).is_empty());
    assert!(answers(&serve_stdio(&case, &model(), "\n\r\n  \n")).is_empty());
}

#[test]
fn serve_stdio_with_a_broken_model() {
    let case = Case::new();
    let broken = case.model_copy();
    let weights = broken.join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");
    write(&weights, &bytes[..bytes.len() / 3]);
    let before = tree(case.root());
    serve_stdio(&case, &broken.display().to_string(), format!("{}\n", good_request("x")))
        .fails_with(&["m/model.safetensors"]);
    assert_eq!(tree(case.root()), before);
}

/// Documents that cannot be read: each a clear error naming the file, exit
/// 1, and nothing written.
#[test]
fn classify_unreadable_documents_write_nothing() {
    let case = Case::new();
    let model = model();
    let fixtures = crate::util::project_root().join("crates/clause-read/tests/fixtures");
    let fixture = |name: &str| std::fs::read(fixtures.join(name)).expect("fixture");
    let pdf = fixture("cybercrime-chapter.pdf");
    let docx = fixture("cybercrime-chapter.docx");
    let page = format!("<html><body>{}</body></html>", "<p>Article 1. The Party shall act.</p>".repeat(1_400_000));
    assert!(page.len() > 50_000_000);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        ("scan.pdf", fixture("scanned.pdf"), vec!["scan.pdf", "no text layer", "OCR"]),
        ("locked.pdf", fixture("encrypted.pdf"), vec!["locked.pdf", "encrypted"]),
        ("truncated.pdf", pdf[..pdf.len() / 3].to_vec(), vec!["truncated.pdf", "not a readable PDF"]),
        ("corrupt.docx", docx[..docx.len() / 2].to_vec(), vec!["corrupt.docx", "not a Word .docx file"]),
        ("bomb.docx", fixture("zip-bomb.docx"), vec!["bomb.docx", "word/document.xml unpacks to more than"]),
        ("huge.html", page.into_bytes(), vec!["huge.html", "the page is", "expected one web page"]),
        ("pdf.html", pdf.clone(), vec!["pdf.html", "named as an HTML page, but the file is a PDF"]),
        ("word.txt", docx.clone(), vec!["word.txt", "named as text, but the file is a Word .docx"]),
        ("word.pdf", docx, vec!["word.pdf", "named as a PDF, but the file is a Word .docx"]),
    ];
    for (name, bytes, needles) in cases {
        let input = case.file(name, bytes);
        case.fails(&["classify", "--model", &model, &input, "-o", &case.arg("out.jsonl")], &needles);
        std::fs::remove_file(&input).expect("remove");
    }
}
