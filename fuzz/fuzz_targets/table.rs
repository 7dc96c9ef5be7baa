//! The table readers (CSV, JSONL, Parquet through polars) on any bytes: the
//! first byte picks the format and the columns asked for, the rest is the
//! file's contents. The frame is then read both as a labelled dataset table
//! (`examples_from_frame`) and as a table of texts to classify
//! (`records_from_frame`). Errors are fine; panics are not.
#![no_main]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{LazyLock, Once};

use clause_data::records::{RecordColumns, records_from_frame};
use clause_data::table::{TableColumns, TableFormat, examples_from_frame, frame_from_bytes, is_parquet_reader_panic};
use libfuzzer_sys::fuzz_target;

static LABELS: LazyLock<BTreeSet<String>> =
    LazyLock::new(|| ["ltd", "ter", "a", "ch"].iter().map(|s| s.to_string()).collect());

/// polars-parquet 0.55 panics on some corrupt footers; `frame_from_bytes`
/// catches that panic and returns an error (a unit test in clause-data pins
/// it). libfuzzer-sys's panic hook would abort on the caught panic as well,
/// so a panic raised inside polars-parquet is left to that catch, and any
/// other panic still aborts the run as a crash.
fn leave_parquet_panics_to_the_reader() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !is_parquet_reader_panic(info) {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    leave_parquet_panics_to_the_reader();
    let Some((&selector, contents)) = data.split_first() else { return };
    let (format, path) = match selector % 3 {
        0 => (TableFormat::Csv, Path::new("fuzz.csv")),
        1 => (TableFormat::Jsonl, Path::new("fuzz.jsonl")),
        _ => (TableFormat::Parquet, Path::new("fuzz.parquet")),
    };
    let Ok(frame) = frame_from_bytes(path, format, contents.to_vec()) else { return };
    let with_ids = selector & 4 != 0;
    let columns = TableColumns {
        text: "text",
        labels: "labels",
        delimiter: if selector & 8 != 0 { "," } else { ";" },
        id: with_ids.then_some("id"),
        document: (selector & 16 != 0).then_some("document"),
    };
    if let Ok(examples) = examples_from_frame(&frame, path, &columns, &LABELS) {
        assert!(examples.len() <= frame.height());
        for example in &examples {
            assert!(!example.text.is_empty());
            assert!(example.labels.iter().all(|l| LABELS.contains(l)), "{:?}", example.labels);
        }
    }
    let title = (selector & 32 != 0).then_some("title");
    if let Ok(table) = records_from_frame(&frame, path, RecordColumns { text: "text", title, id: "id" }) {
        assert!(table.rows.len() <= frame.height());
        for record in &table.rows {
            assert_eq!(record.carried.len(), table.carried.len());
            assert!(!record.text.is_empty());
        }
    }
});
