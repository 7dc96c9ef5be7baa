//! `clause segment` on the real treaty texts and on fixtures.

use crate::util::{clause, clause_in, read, treaty_files, write};

/// Provisions per treaty file, checked by reading each file's segmentation:
/// every article heading, every numbered paragraph, one preamble where the
/// instrument has one, one closing testimonium per instrument. The PNR
/// agreement has no articles: a preamble, nine paragraphs and the closing,
/// then the DHS letter (an opening and sections I to X), the EU's reply and
/// the declaration on provisional application.
const EXPECTED: [(&str, usize); 21] = [
    ("budapest-convention-ETS185", 144),
    ("budapest-protocol-ETS189", 34),
    ("coe-convention-108-ETS108", 63),
    ("coe-convention-108-protocol-ETS181", 15),
    ("coe-laundering-convention-CETS198", 180),
    ("coe-terrorism-prevention-CETS196", 106),
    ("echr-ETS005", 127),
    ("eu-us-pnr-agreement-2007", 24),
    ("european-extradition-convention-ETS024", 81),
    ("european-extradition-protocol-ETS086", 20),
    ("european-extradition-protocol2-ETS098", 24),
    ("european-extradition-protocol3-CETS209", 41),
    ("european-mla-convention-ETS030", 79),
    ("european-mla-protocol-ETS099", 26),
    ("european-mla-protocol2-ETS182", 106),
    ("iccpr", 165),
    ("transfer-sentenced-persons-ETS112", 68),
    ("un-drug-trafficking-convention-1988", 145),
    ("un-terrorist-financing-convention-1999", 77),
    ("untoc-trafficking-protocol-2000", 61),
    ("untoc", 182),
];

#[test]
fn every_treaty_file_segments_into_the_expected_provisions() {
    let files = treaty_files();
    assert_eq!(files.len(), EXPECTED.len());
    for (path, (document, expected)) in files.iter().zip(EXPECTED) {
        let source = read(path);
        let run = clause(&["segment", "--format", "jsonl", path.to_str().expect("utf-8 path")]);
        let records: Vec<serde_json::Value> =
            run.ok().lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
        assert_eq!(records.len(), expected, "{document}");
        let mut ids = std::collections::HashSet::new();
        for record in &records {
            for field in [
                "id",
                "document",
                "instrument",
                "chapter",
                "article",
                "paragraph",
                "title",
                "kind",
                "text",
                "line",
                "start",
                "end",
            ] {
                assert!(record.get(field).is_some(), "{document}: {field} missing in {record}");
            }
            let id = record["id"].as_str().expect("id");
            assert!(ids.insert(id.to_string()), "{document}: duplicate id {id}");
            assert!(id.starts_with(document), "{id}");
            let text = record["text"].as_str().expect("text");
            assert!(!text.is_empty(), "{id}");
            // The byte range holds the provision: its last word is there.
            let (start, end) =
                (record["start"].as_u64().expect("start") as usize, record["end"].as_u64().expect("end") as usize);
            let span = &source[start..end];
            let last_word = text.split_whitespace().last().expect("a word");
            assert!(
                span.trim_end().ends_with(last_word),
                "{id}: span ends {:?}, text ends {last_word:?}",
                &span[span.len().saturating_sub(40)..]
            );
            match record["kind"].as_str().expect("kind") {
                "paragraph" if id.contains(":par") => {
                    assert!(record["paragraph"].is_string() && record["article"].is_null(), "{id}")
                }
                "paragraph" => assert!(record["paragraph"].is_string() && record["article"].is_string(), "{id}"),
                "section" => assert!(record["paragraph"].is_string() && record["article"].is_null(), "{id}"),
                "article" | "article_intro" => {
                    assert!(record["article"].is_string() && record["paragraph"].is_null(), "{id}")
                }
                "preamble" | "closing" => assert!(record["article"].is_null(), "{id}"),
                other => panic!("{id}: unexpected kind {other}"),
            }
        }
    }
}

#[test]
fn known_provisions_have_their_fields() {
    let path = treaty_files().into_iter().find(|p| p.to_string_lossy().contains("budapest-convention")).expect("file");
    let run = clause(&["segment", "--format", "jsonl", path.to_str().expect("utf-8")]);
    let records: Vec<serde_json::Value> = run.ok().lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let find = |id: &str| records.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id}"));
    let art21 = find("budapest-convention-ETS185:art21.3");
    assert_eq!(art21["title"], "Interception of content data");
    assert_eq!(art21["article"], "21");
    assert_eq!(art21["paragraph"], "3");
    assert!(
        art21["chapter"]
            .as_str()
            .expect("chapter")
            .starts_with("Chapter II – MEASURES TO BE TAKEN AT THE NATIONAL LEVEL > Section 2")
    );
    assert!(art21["text"].as_str().expect("text").starts_with("Each Party shall adopt such legislative and other measures as may be necessary to oblige a service provider to keep confidential"));
    let preamble = find("budapest-convention-ETS185:preamble");
    assert!(preamble["text"].as_str().expect("text").starts_with("The member States of the Council of Europe"));
    assert_eq!(preamble["instrument"], "Convention on Cybercrime");
}

#[test]
fn the_iccpr_file_holds_two_instruments() {
    let path = treaty_files().into_iter().find(|p| p.to_string_lossy().contains("iccpr")).expect("file");
    let run = clause(&["segment", "--format", "jsonl", path.to_str().expect("utf-8")]);
    let protocol: Vec<serde_json::Value> = run
        .ok()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .filter(|r| r["document"] == "iccpr-2")
        .collect();
    assert_eq!(protocol[0]["id"], "iccpr-2:preamble");
    assert_eq!(
        protocol[0]["instrument"],
        "Optional Protocol to the International Covenant on Civil and Political Rights"
    );
    assert_eq!(protocol.last().expect("last")["id"], "iccpr-2:closing");
}

#[test]
fn table_output_is_readable_at_100_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let draft = dir.path().join("draft.v2.md");
    write(
        &draft,
        "Article 1 – Scope\n1. This Convention applies to the collection of electronic evidence.\n2. It applies to every offence.\n",
    );
    let run = clause_in(dir.path(), &["segment", "draft.v2.md"]);
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[1].starts_with("draft:art1.1") && lines[1].contains("Scope"), "{out}");
    assert!(lines.iter().all(|l| l.chars().count() <= 100), "{out}");

    let run = clause_in(dir.path(), &["segment", "--document", "cyber", "--format", "annotations", "draft.v2.md"]);
    let first = run.ok().lines().next().expect("a line").to_string();
    let fields: Vec<&str> = first.split('\t').collect();
    assert_eq!(fields[0], "cyber:art1.1");
    assert_eq!(fields[1].len(), 16);
    assert_eq!(fields[2], "-");
}

#[test]
fn segment_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(&dir.path().join("latin1.txt"), b"Article 1\nCaf\xe9 society.\n");
    clause_in(dir.path(), &["segment", "latin1.txt"]).fails_with(&["latin1.txt:2", "not valid UTF-8"]);
    clause_in(dir.path(), &["segment", "missing.md"]).fails_with(&["missing.md"]);
    write(&dir.path().join("a.md"), "Article 1\nA.\n");
    write(&dir.path().join("b.md"), "Article 1\nB.\n");
    clause_in(dir.path(), &["segment", "--document", "x", "a.md", "b.md"]).fails_with(&["--document"]);
}

#[test]
fn help_explains_every_command() {
    let top = clause(&["--help"]);
    for command in ["segment", "dataset"] {
        assert!(top.ok().contains(command), "{}", top.stdout);
    }
    let build = clause(&["dataset", "build", "--help"]);
    for option in ["--data-root", "CLAUSE_DATA_ROOT", "--json", "RECIPE"] {
        assert!(build.ok().contains(option), "{}", build.stdout);
    }
    let segment = clause(&["segment", "--help"]);
    for option in ["--format", "--document", "jsonl", "annotations"] {
        assert!(segment.ok().contains(option), "{}", segment.stdout);
    }
    assert!(clause(&["dataset", "stats", "--help"]).ok().contains("--json"));
}

#[test]
fn an_agreement_without_articles_and_its_letters_have_their_own_ids() {
    let path = treaty_files().into_iter().find(|p| p.to_string_lossy().contains("eu-us-pnr")).expect("file");
    let run = clause(&["segment", "--format", "jsonl", path.to_str().expect("utf-8")]);
    let records: Vec<serde_json::Value> = run.ok().lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().expect("id")).collect();
    let doc = "eu-us-pnr-agreement-2007";
    let mut expected = vec![format!("{doc}:preamble")];
    expected.extend((1..=9).map(|n| format!("{doc}:par{n}")));
    expected.push(format!("{doc}:closing"));
    expected.push(format!("{doc}-2:preamble"));
    expected.extend((1..=10).map(|n| format!("{doc}-2:sec{n}")));
    expected.extend([format!("{doc}-3:preamble"), format!("{doc}-4:preamble")]);
    assert_eq!(ids, expected);
    let find = |id: &str| records.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{id}"));
    // Section III keeps its list of nineteen data elements and what follows it.
    let types = find(&format!("{doc}-2:sec3"));
    assert_eq!((types["kind"].as_str(), types["paragraph"].as_str()), (Some("section"), Some("III")));
    let text = types["text"].as_str().expect("text");
    assert!(text.starts_with("Types of Information Collected:") && text.contains("18. Any collected APIS information"));
    assert!(find(&format!("{doc}-2:sec2"))["text"].as_str().expect("text").starts_with("Sharing of PNR:"));
    assert_eq!(find(&format!("{doc}:par6"))["kind"], "paragraph");
    assert_eq!(find(&format!("{doc}-4:preamble"))["instrument"], "Declaration");
}
