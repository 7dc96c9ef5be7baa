//! A model directory written by an earlier release (tests/fixtures/previous-release)
//! loads and classifies exactly as it did then.

use crate::util::{clause, project_root, read};

#[test]
fn a_model_written_before_loads_and_classifies_identically() {
    let fixture = project_root().join("tests/fixtures/previous-release");
    let model = fixture.join("model");
    let draft = fixture.join("draft.md");
    let run = clause(&[
        "classify",
        "--model",
        model.to_str().expect("utf-8"),
        draft.to_str().expect("utf-8"),
        "--format",
        "jsonl",
        "--explain",
    ]);
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
    };
    let now = parse(run.ok());
    let then = parse(&read(&fixture.join("expected.jsonl")));
    assert_eq!(now.len(), then.len());
    for (now, then) in now.iter().zip(&then) {
        assert_eq!(now, then, "the record of {} changed", then["id"]);
    }
}
