//! Unlabelled tables in, result tables out: what `clause classify` reads
//! and writes when its input or output is a table.
//!
//! Input rows keep every column besides the text (and the optional id and
//! title), as JSON values, so that results carry them through. Output tables
//! are plain typed columns, built without the caller touching polars.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::segment::normalise_whitespace;
use crate::table::read_frame;

/// One row of an input table.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based row number, for messages and as the id when there is none.
    pub row: usize,
    /// The `id` column's value, when the table has one.
    pub id: Option<String>,
    /// The text, whitespace normalised.
    pub text: String,
    /// The title column's value, when one was named.
    pub title: Option<String>,
    /// The other columns' values, in [`RecordTable::carried`] order.
    pub carried: Vec<serde_json::Value>,
}

/// An input table.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordTable {
    /// Names of the carried columns.
    pub carried: Vec<String>,
    /// The rows, in file order.
    pub rows: Vec<Record>,
}

/// Which columns of an input table hold what.
#[derive(Debug, Clone, Copy)]
pub struct RecordColumns<'a> {
    /// The text column (required).
    pub text: &'a str,
    /// The title column, if any (required when named).
    pub title: Option<&'a str>,
    /// The id column, used when present.
    pub id: &'a str,
}

/// Read a CSV, JSONL or Parquet table of texts to classify.
pub fn read_records(path: &Path, columns: RecordColumns<'_>) -> Result<RecordTable> {
    records_from_frame(&read_frame(path)?, path, columns)
}

/// [`read_records`] on a frame already read from `path` (named in errors).
pub fn records_from_frame(frame: &DataFrame, path: &Path, columns: RecordColumns<'_>) -> Result<RecordTable> {
    if frame.width() == 0 {
        // An empty file: no rows, whatever columns were asked for.
        return Ok(RecordTable { carried: Vec::new(), rows: Vec::new() });
    }
    let column_error =
        |column: &str, message: String| Error::Column { path: path.to_path_buf(), column: column.to_string(), message };
    let names: Vec<String> = frame.get_column_names().iter().map(|n| n.to_string()).collect();
    let text_column = frame
        .column(columns.text)
        .map_err(|_| column_error(columns.text, format!("missing; the table has columns: {}", names.join(", "))))?;
    let texts = text_column
        .str()
        .map_err(|_| column_error(columns.text, format!("expected strings, found {}", text_column.dtype())))?;
    let strings = |name: &str| -> Result<Vec<Option<String>>> {
        let column = frame
            .column(name)
            .map_err(|_| column_error(name, format!("missing; the table has columns: {}", names.join(", "))))?;
        let cast =
            column.cast(&DataType::String).map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
        let values = cast.str().map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
        Ok(values.iter().map(|s| s.map(str::to_string)).collect())
    };
    let titles = columns.title.map(strings).transpose()?;
    let ids = if names.iter().any(|n| n == columns.id) { Some(strings(columns.id)?) } else { None };
    let carried: Vec<String> = names
        .iter()
        .filter(|n| *n != columns.text && Some(n.as_str()) != columns.title && *n != columns.id)
        .cloned()
        .collect();
    let carried_columns: Vec<&Column> = carried.iter().filter_map(|n| frame.column(n).ok()).collect();
    let mut rows = Vec::with_capacity(frame.height());
    // Ids name the results (and the corrections merged back from them), so
    // one id may not name two rows.
    let mut first_row_of: HashMap<&str, usize> = HashMap::new();
    for (index, text) in texts.iter().enumerate() {
        let row = index + 1;
        if let Some(id) = ids.as_ref().and_then(|ids| ids[index].as_deref())
            && let Some(first) = first_row_of.insert(id, row)
        {
            return Err(column_error(columns.id, format!("row {row}: duplicate id `{id}` (first at row {first})")));
        }
        let text = text.ok_or_else(|| column_error(columns.text, format!("row {row}: the text is null")))?;
        let text = normalise_whitespace(text);
        if text.is_empty() {
            return Err(column_error(columns.text, format!("row {row}: the text is empty")));
        }
        let mut values = Vec::with_capacity(carried_columns.len());
        for column in &carried_columns {
            let value = column.get(index).map_err(|source| Error::Polars { path: path.to_path_buf(), source })?;
            values.push(json_value(&value));
        }
        rows.push(Record {
            row,
            id: ids.as_ref().and_then(|ids| ids[index].clone()),
            text,
            title: titles.as_ref().and_then(|t| t[index].clone()),
            carried: values,
        });
    }
    Ok(RecordTable { carried, rows })
}

fn json_value(value: &AnyValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(v) => (*v).into(),
        AnyValue::Int16(v) => (*v).into(),
        AnyValue::Int32(v) => (*v).into(),
        AnyValue::Int64(v) => (*v).into(),
        AnyValue::UInt8(v) => (*v).into(),
        AnyValue::UInt16(v) => (*v).into(),
        AnyValue::UInt32(v) => (*v).into(),
        AnyValue::UInt64(v) => (*v).into(),
        AnyValue::Float32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
        AnyValue::Float64(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        AnyValue::List(series) => Value::Array(series.iter().map(|v| json_value(&v)).collect()),
        other => Value::String(other.to_string()),
    }
}

/// The values of one output column.
#[derive(Debug, Clone, PartialEq)]
pub enum OutValues {
    /// Text, possibly missing.
    Str(Vec<Option<String>>),
    /// Floating point, possibly missing.
    F64(Vec<Option<f64>>),
    /// Integers, possibly missing.
    I64(Vec<Option<i64>>),
    /// Booleans, possibly missing.
    Bool(Vec<Option<bool>>),
    /// Lists of strings.
    StrList(Vec<Vec<String>>),
}

/// One named output column.
#[derive(Debug, Clone, PartialEq)]
pub struct OutColumn {
    /// Column name.
    pub name: String,
    /// Its values, one per row.
    pub values: OutValues,
}

/// Write columns of equal length as one Parquet file to `writer`; `path`
/// names the destination in errors.
pub fn write_parquet(path: &Path, columns: Vec<OutColumn>, writer: impl Write) -> Result<()> {
    let polars_error = |source| Error::Polars { path: path.to_path_buf(), source };
    let mut built: Vec<Column> = Vec::with_capacity(columns.len());
    for column in columns {
        let name = PlSmallStr::from(column.name.as_str());
        let series = match column.values {
            OutValues::Str(v) => Series::new(name, v),
            OutValues::F64(v) => Series::new(name, v),
            OutValues::I64(v) => Series::new(name, v),
            OutValues::Bool(v) => Series::new(name, v),
            OutValues::StrList(v) => {
                let lists: Vec<Series> = v.into_iter().map(|l| Series::new(PlSmallStr::EMPTY, l)).collect();
                Series::new(name, lists)
            }
        };
        built.push(series.into());
    }
    let height = built.first().map_or(0, Column::len);
    let mut frame = DataFrame::new(height, built).map_err(polars_error)?;
    ParquetWriter::new(writer).finish(&mut frame).map_err(polars_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_rows_keep_their_other_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"x1\", \"text\": \" Each  Party shall\", \"page\": 3, \"ok\": true}\n\
             {\"id\": \"x2\", \"text\": \"Data\", \"page\": null, \"ok\": false}\n",
        )
        .expect("write");
        let table = read_records(&path, RecordColumns { text: "text", title: None, id: "id" }).expect("read");
        assert_eq!(table.carried, ["page", "ok"]);
        assert_eq!(table.rows[0].id.as_deref(), Some("x1"));
        assert_eq!(table.rows[0].text, "Each Party shall");
        assert_eq!(table.rows[0].carried, [serde_json::json!(3), serde_json::json!(true)]);
        assert_eq!(table.rows[1].carried, [serde_json::Value::Null, serde_json::json!(false)]);
    }

    #[test]
    fn missing_text_column_and_empty_text_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "body,n\nhello,1\n").expect("write");
        let err = read_records(&path, RecordColumns { text: "text", title: None, id: "id" })
            .expect_err("missing")
            .to_string();
        assert!(err.contains("in.csv") && err.contains("`text`") && err.contains("body, n"), "{err}");
        std::fs::write(&path, "text,n\nhello,1\n\" \",2\n").expect("write");
        let err =
            read_records(&path, RecordColumns { text: "text", title: None, id: "id" }).expect_err("empty").to_string();
        assert!(err.contains("row 2") && err.contains("empty"), "{err}");
    }

    #[test]
    fn duplicate_ids_and_empty_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.csv");
        let columns = RecordColumns { text: "text", title: None, id: "id" };
        std::fs::write(&path, "id,text\na,one\nb,two\na,three\n").expect("write");
        let err = read_records(&path, columns).expect_err("duplicate").to_string();
        assert!(err.contains("in.csv: column `id`: row 3: duplicate id `a` (first at row 1)"), "{err}");
        for contents in ["", "\u{feff}\r\n"] {
            std::fs::write(&path, contents).expect("write");
            assert!(read_records(&path, columns).expect("empty").rows.is_empty());
        }
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "\u{feff}{\"text\": \"one\", \"n\": 1}\r\n{\"text\": \"two\", \"n\": 2}\r\n")
            .expect("write");
        let table = read_records(&path, columns).expect("bom and crlf");
        assert_eq!(table.carried, ["n"]);
        assert_eq!(table.rows[1].text, "two");
    }

    #[test]
    fn parquet_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.parquet");
        let file = std::fs::File::create(&path).expect("create");
        write_parquet(
            &path,
            vec![
                OutColumn { name: "text".into(), values: OutValues::Str(vec![Some("a".into()), Some("b".into())]) },
                OutColumn { name: "labels".into(), values: OutValues::StrList(vec![vec!["x".into()], vec![]]) },
                OutColumn { name: "score_x".into(), values: OutValues::F64(vec![Some(0.9), Some(0.1)]) },
            ],
            file,
        )
        .expect("write");
        let frame = read_frame(&path).expect("read");
        assert_eq!(frame.height(), 2);
        assert_eq!(
            frame.get_column_names().iter().map(|n| n.as_str()).collect::<Vec<_>>(),
            ["text", "labels", "score_x"]
        );
    }
}
