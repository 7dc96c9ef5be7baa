//! Reader for labelled tables in CSV, JSONL and Parquet, through polars.
//!
//! A table has a text column and a labels column, which holds either a list of
//! strings or one string of delimited labels. Ids and documents may come from
//! columns of their own.

use std::collections::BTreeSet;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::example::Example;
use crate::segment::normalise_whitespace;

/// Which columns of a table hold what.
#[derive(Debug, Clone)]
pub struct TableColumns<'a> {
    /// The text column.
    pub text: &'a str,
    /// The labels column.
    pub labels: &'a str,
    /// Separator of a string labels column.
    pub delimiter: &'a str,
    /// The id column; row numbers (1-based) without one.
    pub id: Option<&'a str>,
    /// The document column; the file stem without one.
    pub document: Option<&'a str>,
}

/// The table formats, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

impl TableFormat {
    /// The format of `path`, from its extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Ok(Self::Csv),
            "jsonl" | "ndjson" => Ok(Self::Jsonl),
            "parquet" => Ok(Self::Parquet),
            _ => Err(Error::UnknownFormat { path: path.to_path_buf(), extension }),
        }
    }
}

/// Read a table into a polars frame, with errors that name the line where the
/// format allows it.
pub fn read_frame(path: &Path) -> Result<DataFrame> {
    let format = TableFormat::from_path(path)?;
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    frame_from_bytes(path, format, bytes)
}

/// [`read_frame`] on a file's contents already read from `path` (named in
/// errors), in `format`.
pub fn frame_from_bytes(path: &Path, format: TableFormat, bytes: Vec<u8>) -> Result<DataFrame> {
    let polars_error = |source| Error::Polars { path: path.to_path_buf(), source };
    match format {
        TableFormat::Parquet => read_parquet(path, bytes),
        TableFormat::Jsonl => {
            let text = without_bom(crate::text::decode_utf8(path, bytes)?);
            check_jsonl(path, &text)?;
            if text.trim().is_empty() {
                return Ok(DataFrame::empty());
            }
            // Only the objects, one a line, and no final newline: polars
            // 0.55's line-length sampling (ndjson `get_line_stats_json`) slices
            // past the end, and panics, when the line it samples at 75% of the
            // file is the last one and ends the file with `}\n` (four lines of
            // equal length do it); and it rejects lines that the check above
            // skips as blank, such as a vertical tab.
            let bytes = text.lines().filter(|line| !line.trim().is_empty()).collect::<Vec<_>>().join("\n").into_bytes();
            JsonReader::new(std::io::Cursor::new(bytes))
                .with_json_format(JsonFormat::JsonLines)
                .finish()
                .map_err(polars_error)
        }
        TableFormat::Csv => {
            let text = without_bom(crate::text::decode_utf8(path, bytes)?);
            if text.trim().is_empty() {
                return Ok(DataFrame::empty());
            }
            if let Some((line, message)) = check_csv(&text) {
                return Err(Error::Malformed { path: path.to_path_buf(), line: line.to_string(), message });
            }
            CsvReadOptions::default()
                .with_has_header(true)
                .into_reader_with_file_handle(std::io::Cursor::new(text.into_bytes()))
                .finish()
                .map_err(polars_error)
        }
    }
}

/// A Parquet file's frame. polars-parquet 0.55 fails on some corrupt footers
/// without returning an error (both found by `fuzz/fuzz_targets/table.rs`):
/// - a length in the footer larger than the file, or bytes it reads as a
///   length (a field of the wrong type, or what follows a value it skips
///   other than the Thrift specification does), makes it reserve that much
///   memory, and the process aborts; [`crate::parquet_footer`] refuses such
///   footers before polars reads them;
/// - a thrift field of the wrong type makes it panic; that panic is caught
///   here. Its reader holds no state of ours that a panic could leave
///   half-changed: it owns the bytes and is dropped.
///
/// Both become [`Error::CorruptParquet`].
fn read_parquet(path: &Path, bytes: Vec<u8>) -> Result<DataFrame> {
    if let Err(message) = crate::parquet_footer::check(&bytes) {
        return Err(Error::CorruptParquet { path: path.to_path_buf(), message });
    }
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ParquetReader::new(std::io::Cursor::new(bytes)).finish()
    }));
    match read {
        Ok(frame) => frame.map_err(|source| Error::Polars { path: path.to_path_buf(), source }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "the reader failed".to_string());
            Err(Error::CorruptParquet { path: path.to_path_buf(), message })
        }
    }
}

/// Whether a panic was raised inside polars-parquet: the panics
/// [`read_parquet`] catches and reports as [`Error::CorruptParquet`], which
/// a panic hook need not print (or, fuzzing, treat as a crash).
pub fn is_parquet_reader_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location().is_some_and(|location| location.file().contains("/polars-parquet-"))
}

/// The text without a leading byte-order mark, which editors on Windows
/// write and which would otherwise become part of the first JSON line or
/// CSV column name.
fn without_bom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

/// Every non-blank line must be a JSON object.
fn check_jsonl(path: &Path, text: &str) -> Result<()> {
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed =
            |message: String| Error::Malformed { path: path.to_path_buf(), line: (index + 1).to_string(), message };
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(_)) => {}
            Ok(_) => return Err(malformed("expected a JSON object".to_string())),
            Err(err) => return Err(malformed(format!("invalid JSON at column {}: {err}", err.column()))),
        }
        if let Some((column, literal)) = integer_beyond_64_bits(line) {
            return Err(malformed(format!(
                "the integer at column {column} ({literal}) does not fit in a signed 64-bit integer; quote it to keep it as text"
            )));
        }
    }
    Ok(())
}

/// The first integer literal of a JSON line that `i64` does not hold, with
/// its 1-based column. polars 0.55 infers such a field (even one within
/// `u64`) as Int128, which this build does not include, and panics instead
/// of returning an error.
fn integer_beyond_64_bits(line: &str) -> Option<(usize, &str)> {
    let bytes = line.as_bytes();
    let (mut index, mut in_string) = (0, false);
    while index < bytes.len() {
        let byte = bytes[index];
        if in_string {
            match byte {
                b'\\' => index += 1,
                b'"' => in_string = false,
                _ => {}
            }
            index += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            index += 1;
            continue;
        }
        if byte == b'-' || byte.is_ascii_digit() {
            let start = index;
            index += 1;
            while index < bytes.len() && matches!(bytes[index], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                index += 1;
            }
            let literal = &line[start..index];
            let is_integer = !literal.contains(['.', 'e', 'E']);
            if is_integer && literal.parse::<i64>().is_err() {
                return Some((line[..start].chars().count() + 1, literal));
            }
            continue;
        }
        index += 1;
    }
    None
}

/// Where the CSV checker is within a field.
#[derive(Clone, Copy, PartialEq)]
enum CsvField {
    /// At its first character: a quote here opens a quoted field.
    Start,
    /// In a field that did not start with a quote: a quote here is an
    /// error (polars would pair it with the next one).
    Unquoted,
    Quoted,
    /// Just after a quote inside a quoted field: a second quote is an
    /// escaped quote; a delimiter or line end ends the field.
    AfterQuote,
}

/// Find the first CSV record whose field count differs from the header's, a
/// quote in an unquoted field, text after a closing quote, or an unterminated
/// quote. Returns its 1-based line and a message. Quotes must follow RFC 4180:
/// polars 0.55 pairs quotes wherever they are when it splits lines, and
/// panics on some malformed quoting (a field that is a lone quote) instead of
/// returning an error.
fn check_csv(text: &str) -> Option<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut line = 1;
    let mut record_line = 1;
    let mut fields = 1;
    let mut expected: Option<usize> = None;
    let mut field = CsvField::Start;
    let mut record_empty = true;
    for c in text.chars() {
        match (field, c) {
            (CsvField::Quoted, '"') => field = CsvField::AfterQuote,
            (CsvField::Quoted, '\n') => {
                line += 1;
                continue;
            }
            (CsvField::Quoted, _) => {}
            (CsvField::AfterQuote, '"') => field = CsvField::Quoted,
            (CsvField::Start, '"') => field = CsvField::Quoted,
            (_, ',') => {
                fields += 1;
                field = CsvField::Start;
            }
            (_, '\n') => {
                line += 1;
                if !record_empty {
                    match expected {
                        None => expected = Some(fields),
                        Some(n) if n != fields => {
                            return Some((record_line, format!("expected {n} fields like the header, found {fields}")));
                        }
                        Some(_) => {}
                    }
                }
                fields = 1;
                field = CsvField::Start;
                record_line = line;
                record_empty = true;
                continue;
            }
            (_, '\r') => continue,
            (CsvField::Unquoted, '"') => {
                return Some((
                    line,
                    "a quote inside a field that does not start with one (quote the whole field, and write the quote twice)"
                        .to_string(),
                ));
            }
            (CsvField::AfterQuote, other) => {
                return Some((
                    line,
                    format!(
                        "`{}` after the closing quote of a field (a quote inside a quoted field is written twice)",
                        other.escape_default()
                    ),
                ));
            }
            (CsvField::Start | CsvField::Unquoted, _) => field = CsvField::Unquoted,
        }
        record_empty = false;
    }
    if field == CsvField::Quoted {
        return Some((record_line, "unterminated quoted field".to_string()));
    }
    match expected {
        Some(n) if !record_empty && n != fields => {
            Some((record_line, format!("expected {n} fields like the header, found {fields}")))
        }
        _ => None,
    }
}

/// Read a labelled table into examples, checking labels against `known`.
pub fn read_table(path: &Path, columns: &TableColumns<'_>, known: &BTreeSet<String>) -> Result<Vec<Example>> {
    examples_from_frame(&read_frame(path)?, path, columns, known)
}

/// Examples from a frame already read from `path` (named in errors).
pub fn examples_from_frame(
    frame: &DataFrame,
    path: &Path,
    columns: &TableColumns<'_>,
    known: &BTreeSet<String>,
) -> Result<Vec<Example>> {
    let column_error =
        |column: &str, message: String| Error::Column { path: path.to_path_buf(), column: column.to_string(), message };
    if frame.width() == 0 {
        // An empty file: no rows, whatever columns were asked for.
        return Ok(Vec::new());
    }
    let present: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let get = |name: &str| {
        frame
            .column(name)
            .map_err(|_| column_error(name, format!("missing; the table has columns: {}", present.join(", "))))
    };
    let text_column = get(columns.text)?;
    let texts = text_column
        .str()
        .map_err(|_| column_error(columns.text, format!("expected strings, found {}", text_column.dtype())))?;
    let labels = read_labels(get(columns.labels)?, columns, known, path)?;
    let ids = match columns.id {
        Some(name) => Some(string_column(get(name)?, path)?),
        None => None,
    };
    let documents = match columns.document {
        Some(name) => Some(string_column(get(name)?, path)?),
        None => None,
    };
    let stem = crate::segment::document_name_from_path(path);
    let mut examples = Vec::with_capacity(frame.height());
    for (row, text) in texts.iter().enumerate() {
        let row_name = format!("row {}", row + 1);
        let text = text.ok_or_else(|| column_error(columns.text, format!("{row_name}: the text is null")))?;
        let text = normalise_whitespace(text);
        if text.is_empty() {
            return Err(column_error(columns.text, format!("{row_name}: the text is empty")));
        }
        let id = match &ids {
            Some(ids) => ids[row]
                .clone()
                .ok_or_else(|| column_error(columns.id.unwrap_or("id"), format!("{row_name}: the id is null")))?,
            None => format!("{stem}:{}", row + 1),
        };
        let document = documents.as_ref().and_then(|d| d[row].clone()).unwrap_or_else(|| stem.clone());
        examples.push(Example {
            id,
            document,
            text,
            labels: labels[row].clone(),
            article: None,
            paragraph: None,
            title: None,
            chapter: None,
            origin: format!("{}:{row_name}", path.display()),
        });
    }
    Ok(examples)
}

fn string_column(column: &Column, path: &Path) -> Result<Vec<Option<String>>> {
    let cast = column.cast(&DataType::String).map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
    let strings = cast.str().map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
    Ok(strings.iter().map(|s| s.map(str::to_string)).collect())
}

fn read_labels(
    column: &Column,
    columns: &TableColumns<'_>,
    known: &BTreeSet<String>,
    path: &Path,
) -> Result<Vec<Vec<String>>> {
    let name = columns.labels;
    let unknown = |row: usize, label: &str| Error::UnknownLabel {
        path: path.to_path_buf(),
        line: format!("row {} column `{name}`", row + 1),
        label: label.to_string(),
        known: known.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    let mut out = Vec::with_capacity(column.len());
    match column.dtype() {
        DataType::String => {
            let strings = column.str().map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
            for value in strings.iter() {
                let mut labels = BTreeSet::new();
                for label in value.unwrap_or("").split(columns.delimiter).map(str::trim).filter(|l| !l.is_empty()) {
                    labels.insert(label.to_string());
                }
                out.push(labels);
            }
        }
        DataType::List(inner) if matches!(**inner, DataType::String | DataType::Null) => {
            let lists = column.list().map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
            for row in 0..lists.len() {
                let mut labels = BTreeSet::new();
                if let Some(series) = lists.get_as_series(row) {
                    let cast = series
                        .cast(&DataType::String)
                        .map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
                    let strings = cast.str().map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
                    for label in strings.iter().flatten() {
                        labels.insert(label.trim().to_string());
                    }
                }
                out.push(labels);
            }
        }
        DataType::Null => out.resize(column.len(), BTreeSet::new()),
        other => {
            return Err(Error::Column {
                path: path.to_path_buf(),
                column: name.to_string(),
                message: format!("expected a list of strings or a delimited string, found {other}"),
            });
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(row, labels)| {
            if let Some(label) = labels.iter().find(|l| !known.contains(*l)) {
                return Err(unknown(row, label));
            }
            Ok(labels.into_iter().collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> BTreeSet<String> {
        ["ltd", "ter"].iter().map(|s| s.to_string()).collect()
    }

    const COLUMNS: TableColumns<'static> =
        TableColumns { text: "text", labels: "labels", delimiter: ";", id: None, document: None };

    #[test]
    fn reads_csv_with_delimited_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.csv");
        std::fs::write(&path, "text,labels\n\"We may end, at any time.\",ter;ltd\nHello,\n").expect("write");
        let rows = read_table(&path, &COLUMNS, &known()).expect("read");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].labels, vec!["ltd", "ter"]);
        assert_eq!(rows[0].text, "We may end, at any time.");
        assert!(rows[1].labels.is_empty());
        assert_eq!(rows[1].id, "t:2");
    }

    #[test]
    fn reads_jsonl_with_list_labels_and_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            "{\"id\":\"x1\",\"text\":\"A\",\"labels\":[\"ltd\"]}\n{\"id\":\"x2\",\"text\":\"B\",\"labels\":[]}\n",
        )
        .expect("write");
        let columns = TableColumns { id: Some("id"), ..COLUMNS };
        let rows = read_table(&path, &columns, &known()).expect("read");
        assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec!["x1", "x2"]);
        assert_eq!(rows[0].labels, vec!["ltd"]);
    }

    #[test]
    fn reads_parquet_written_by_polars() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let labels = Series::new(
            "labels".into(),
            &[Series::new("".into(), &["ter"]), Series::new("".into(), Vec::<String>::new())],
        );
        let mut frame =
            DataFrame::new(2, vec![Column::new("text".into(), &["One", "Two"]), labels.into_column()]).expect("frame");
        let file = std::fs::File::create(&path).expect("create");
        ParquetWriter::new(file).finish(&mut frame).expect("write");
        let rows = read_table(&path, &COLUMNS, &known()).expect("read");
        assert_eq!(rows[0].labels, vec!["ter"]);
        assert!(rows[1].labels.is_empty());
    }

    #[test]
    fn malformed_lines_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = dir.path().join("bad.csv");
        std::fs::write(&csv, "text,labels\nok,ltd\ntoo,many,fields\n").expect("write");
        let err = read_table(&csv, &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("bad.csv:3") && err.contains("expected 2 fields"), "{err}");

        let jsonl = dir.path().join("bad.jsonl");
        std::fs::write(&jsonl, "{\"text\":\"a\",\"labels\":[]}\n{\"text\": \"b\", \"labels\": [}\n").expect("write");
        let err = read_table(&jsonl, &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("bad.jsonl:2") && err.contains("invalid JSON"), "{err}");
    }

    #[test]
    fn byte_order_marks_crlf_and_empty_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "\u{feff}text,labels\r\nWe may end it.,ter\r\n").expect("write");
        let rows = read_table(&csv, &COLUMNS, &known()).expect("csv with a BOM");
        assert_eq!(
            (rows[0].text.as_str(), rows[0].labels.as_slice()),
            ("We may end it.", ["ter".to_string()].as_slice())
        );
        let jsonl = dir.path().join("t.jsonl");
        std::fs::write(&jsonl, "\u{feff}{\"text\":\"A\",\"labels\":[\"ltd\"]}\r\n").expect("write");
        let rows = read_table(&jsonl, &COLUMNS, &known()).expect("jsonl with a BOM");
        assert_eq!(rows[0].labels, vec!["ltd"]);
        for path in [&csv, &jsonl] {
            std::fs::write(path, "\n").expect("write");
            assert!(read_table(path, &COLUMNS, &known()).expect("empty").is_empty());
        }
    }

    #[test]
    fn unknown_extensions_are_named() {
        let err = read_table(Path::new("labels.xlsx"), &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("labels.xlsx") && err.contains("`.xlsx`"), "{err}");
    }

    #[test]
    fn missing_columns_wrong_types_and_unknown_labels_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"body\":\"A\",\"labels\":[]}\n").expect("write");
        let err = read_table(&path, &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("column `text`: missing"), "{err}");

        std::fs::write(&path, "{\"text\":3,\"labels\":[]}\n").expect("write");
        let err = read_table(&path, &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("column `text`: expected strings"), "{err}");

        std::fs::write(&path, "{\"text\":\"a\",\"labels\":[\"ltd\"]}\n{\"text\":\"b\",\"labels\":[\"arb\"]}\n")
            .expect("write");
        let err = read_table(&path, &COLUMNS, &known()).expect_err("must fail").to_string();
        assert!(err.contains("row 2 column `labels`") && err.contains("`arb`"), "{err}");
    }
    /// Found by `fuzz/fuzz_targets/table.rs`: polars panicked (slice index
    /// out of range in its ndjson line sampling) on these JSON lines.
    #[test]
    fn jsonl_whose_last_line_is_sampled_does_not_panic() {
        // The fuzzer's input, less its first byte (which picked JSONL).
        let crash = [
            "{\"Texti\":\"a\",\"l1111111abels\":null}",
            &"\n".repeat(10),
            "\x0b",
            &"\n".repeat(50),
            "{\"texAAA'AAAAAA\":{\"y\":[2,2.5]}}\n",
        ]
        .concat();
        let path = Path::new("crash.jsonl");
        let frame = frame_from_bytes(path, TableFormat::Jsonl, crash.into_bytes()).expect("read");
        assert_eq!(frame.height(), 2);
        // Four lines of one length: the sample at 75% is the last line.
        let equal = "{\"text\":\"a\",\"labels\":[]}\n".repeat(4);
        let frame = frame_from_bytes(path, TableFormat::Jsonl, equal.into_bytes()).expect("read");
        assert_eq!(frame.height(), 4);
    }

    /// Found by `fuzz/fuzz_targets/table.rs`: polars panicked ("Arrow datatype
    /// Int128 not supported") on an integer beyond 64 bits.
    #[test]
    fn jsonl_with_an_integer_beyond_64_bits_is_an_error_not_a_panic() {
        let path = Path::new("crash.jsonl");
        let crash = "{\"\":{\"y\":[777773333133330333333]}}";
        let err = frame_from_bytes(path, TableFormat::Jsonl, crash.as_bytes().to_vec()).expect_err("must fail");
        let message = err.to_string();
        assert!(message.contains("crash.jsonl:1") && message.contains("column 11"), "{message}");
        assert!(message.contains("777773333133330333333") && message.contains("64-bit"), "{message}");
        for beyond in ["-9223372036854775809", "9223372036854775808", "18446744073709551616"] {
            let line = format!("{{\"text\":\"a\",\"labels\":[],\"n\":{beyond}}}");
            assert!(frame_from_bytes(path, TableFormat::Jsonl, line.into_bytes()).is_err(), "{beyond}");
        }
        // The edges of the 64-bit range, floats of any size and digits inside
        // strings are read as before.
        let fine = [
            "{\"text\":\"a\",\"labels\":[],\"n\":-9223372036854775808}",
            "{\"text\":\"a\",\"labels\":[],\"n\":9223372036854775807}",
            "{\"text\":\"a\\\" 777773333133330333333\",\"labels\":[],\"n\":7.7e20}",
        ];
        for line in fine {
            frame_from_bytes(path, TableFormat::Jsonl, line.as_bytes().to_vec()).expect(line);
        }
    }

    /// Found by `fuzz/fuzz_targets/table.rs`: polars panicked (slice index
    /// out of range in its CSV field parser) on a field that was a lone quote
    /// by its reading, after a quote in the middle of an unquoted field.
    #[test]
    fn csv_with_malformed_quotes_is_an_error_not_a_panic() {
        let path = Path::new("crash.csv");
        let crash = "b\",\"\n(\"\"\",\"5\"\n\"\",\"";
        let err = frame_from_bytes(path, TableFormat::Csv, crash.as_bytes().to_vec()).expect_err("must fail");
        assert!(
            err.to_string().contains("crash.csv:1") && err.to_string().contains("does not start with one"),
            "{err}"
        );
        let unterminated = "text,labels\nok,\n\"open,\n";
        let err = frame_from_bytes(path, TableFormat::Csv, unterminated.as_bytes().to_vec()).expect_err("fail");
        assert!(err.to_string().contains("crash.csv:3") && err.to_string().contains("unterminated"), "{err}");
        let text_after_quote = "text,labels\n\"a\"b,\n";
        let err = frame_from_bytes(path, TableFormat::Csv, text_after_quote.as_bytes().to_vec()).expect_err("fail");
        assert!(
            err.to_string().contains("crash.csv:2") && err.to_string().contains("`b` after the closing quote"),
            "{err}"
        );
        let quote_inside = "text,labels\nok,\n5\" screen,\n";
        let err = frame_from_bytes(path, TableFormat::Csv, quote_inside.as_bytes().to_vec()).expect_err("fail");
        assert!(
            err.to_string().contains("crash.csv:3") && err.to_string().contains("does not start with one"),
            "{err}"
        );
        // Doubled quotes inside a quoted field are a quote; a quoted field may
        // hold line breaks.
        let fine = "text,labels\n\"5\"\" screen\",\n\"say \"\"no\"\"\",a\n\"two\r\nlines\",\"a;b\"\r\n";
        let frame = frame_from_bytes(path, TableFormat::Csv, fine.as_bytes().to_vec()).expect("read");
        assert_eq!(frame.height(), 3);
    }

    /// Found by `fuzz/fuzz_targets/table.rs`: polars-parquet panicked
    /// ("thrift bool field") on this corrupt footer.
    #[test]
    fn parquet_with_a_corrupt_footer_is_an_error_not_a_panic() {
        // The fuzzer's input, less its first byte (which picked Parquet).
        let crash = include_bytes!("fixtures/corrupt-footer.parquet").to_vec();
        let err = frame_from_bytes(Path::new("crash.parquet"), TableFormat::Parquet, crash).expect_err("must fail");
        assert!(matches!(err, Error::CorruptParquet { .. }), "{err}");
        assert!(err.to_string().starts_with("crash.parquet: not a readable Parquet file"), "{err}");
        // Three more, found later: footers that made polars-parquet reserve
        // over 100 GB and abort the process.
        for fixture in [
            &include_bytes!("fixtures/footer-length-bomb.parquet")[..],
            include_bytes!("fixtures/footer-type-confusion.parquet"),
            include_bytes!("fixtures/footer-bool-list.parquet"),
        ] {
            let err = frame_from_bytes(Path::new("bomb.parquet"), TableFormat::Parquet, fixture.to_vec())
                .expect_err("must fail");
            assert!(
                err.to_string()
                    .starts_with("bomb.parquet: not a readable Parquet file (its metadata is corrupt: field "),
                "{err}"
            );
        }
    }

    /// The same integer in a CSV file: polars reports it, naming the column.
    #[test]
    fn csv_with_an_integer_beyond_64_bits_is_an_error_not_a_panic() {
        let csv = "text,labels,n\na,,777773333133330333333\n";
        let err = frame_from_bytes(Path::new("big.csv"), TableFormat::Csv, csv.as_bytes().to_vec()).expect_err("fail");
        let message = err.to_string() + &format!("{err:?}");
        assert!(message.contains("big.csv") && message.contains("777773333133330333333"), "{message}");
        assert!(message.contains("column 'n'"), "{message}");
    }
}
