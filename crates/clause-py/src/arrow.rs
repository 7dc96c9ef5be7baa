//! Arrow in and out through the Arrow C data interface, as PyCapsules
//! (the Arrow PyCapsule interface): any producer with `__arrow_c_stream__`
//! (pyarrow, polars, DuckDB, ...) is read without copying its columns, and
//! the results are a stream any consumer imports. The text column is read
//! in place; the other input columns are passed through untouched.

// The C data interface is a C ABI: importing a stream takes ownership of a
// struct behind a raw pointer (see the SAFETY comment where it is done).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{
    Array, ArrayRef, Float64Array, GenericStringArray, RecordBatch, RecordBatchIterator, RecordBatchOptions,
    RecordBatchReader, StringArray, StringViewArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use clause_infer::input::Passage;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::ClauseError;

/// The capsule name the PyCapsule interface gives an `ArrowArrayStream`.
const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

/// Arrow data read from Python: its schema and every batch.
pub struct Input {
    /// The schema, with the producer's field metadata.
    pub schema: SchemaRef,
    /// The batches in order.
    pub batches: Vec<RecordBatch>,
}

/// Read every batch of `data`'s `__arrow_c_stream__`.
pub fn import_stream(data: &Bound<'_, PyAny>) -> PyResult<Input> {
    let method = intern!(data.py(), "__arrow_c_stream__");
    if !data.hasattr(method)? {
        return Err(PyTypeError::new_err(format!(
            "expected Arrow data (an object with __arrow_c_stream__, such as a pyarrow.Table), not {}",
            crate::type_name(data)
        )));
    }
    let capsule = data
        .call_method0(method)?
        .cast_into::<PyCapsule>()
        .map_err(|_| PyTypeError::new_err("__arrow_c_stream__ did not return a PyCapsule"))?;
    let pointer = capsule.pointer_checked(Some(STREAM_CAPSULE))?.cast::<FFI_ArrowArrayStream>();
    // SAFETY: the capsule is named `arrow_array_stream`, so by the
    // PyCapsule interface its pointer is a valid `ArrowArrayStream` that the
    // consumer may move out. `from_raw` moves it out and leaves a released
    // (empty) struct behind, so the capsule's destructor releases nothing
    // twice; the capsule is alive for the call.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(pointer.as_ptr()) };
    let reader = RecordBatchStreamReader::try_new(stream)
        .map_err(|err| PyValueError::new_err(format!("reading the Arrow stream: {err}")))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| PyValueError::new_err(format!("reading the Arrow stream: {err}")))?;
    Ok(Input { schema, batches })
}

/// A string column of any of Arrow's three layouts.
enum Strings<'a> {
    Small(&'a GenericStringArray<i32>),
    Large(&'a GenericStringArray<i64>),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(array: &'a ArrayRef) -> Option<Self> {
        match array.data_type() {
            DataType::Utf8 => Some(Self::Small(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(Self::Large(array.as_string::<i64>())),
            DataType::Utf8View => Some(Self::View(array.as_string_view())),
            _ => None,
        }
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        let (valid, value) = match self {
            Self::Small(a) => (a.is_valid(row), a.value(row)),
            Self::Large(a) => (a.is_valid(row), a.value(row)),
            Self::View(a) => (a.is_valid(row), a.value(row)),
        };
        valid.then_some(value)
    }
}

fn is_string(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Where the text, id and title columns are.
pub struct Columns {
    text: usize,
    text_name: String,
    id: Option<usize>,
    title: Option<usize>,
}

impl Columns {
    /// Find the named columns: each must exist, the text and title columns
    /// must hold strings.
    pub fn find(schema: &Schema, text: &str, id: Option<&str>, title: Option<&str>) -> PyResult<Self> {
        let find = |name: &str, role: &str| {
            schema.index_of(name).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                PyValueError::new_err(format!("the table has no {role} column `{name}`; its columns are {names:?}"))
            })
        };
        let strings = |index: usize, role: &str| {
            let field = schema.field(index);
            if is_string(field.data_type()) {
                Ok(index)
            } else {
                Err(PyTypeError::new_err(format!(
                    "the {role} column `{}` holds {}, not strings (cast it to string first)",
                    field.name(),
                    field.data_type()
                )))
            }
        };
        let text_index = strings(find(text, "text")?, "text")?;
        let id = id.map(|name| find(name, "id")).transpose()?;
        let title = match title {
            Some(name) => Some(strings(find(name, "title")?, "title")?),
            None => None,
        };
        Ok(Self { text: text_index, text_name: text.to_string(), id, title })
    }

    /// Every row as a passage, in order; a null text is an error naming
    /// its row.
    pub fn passages<'a>(&self, batches: &'a [RecordBatch]) -> PyResult<Vec<Passage<'a>>> {
        let mut passages = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
        for batch in batches {
            let texts = Strings::of(batch.column(self.text))
                .ok_or_else(|| PyTypeError::new_err(format!("the text column `{}` changed type", self.text_name)))?;
            let titles = self.title.and_then(|i| Strings::of(batch.column(i)));
            for row in 0..batch.num_rows() {
                let Some(text) = texts.get(row) else {
                    return Err(PyValueError::new_err(format!(
                        "the text column `{}` is null at row {} (counting from 0): every row needs a text",
                        self.text_name,
                        passages.len()
                    )));
                };
                let title = titles.as_ref().and_then(|t| t.get(row));
                passages.push(Passage { text, title, chapter: None });
            }
        }
        Ok(passages)
    }
}

/// What was predicted, row by row in input order.
pub struct Results<'a> {
    /// Label names, in output order.
    pub label_names: &'a [String],
    /// Every label's probability, per row.
    pub scores: &'a [Vec<f32>],
    /// Indices of the labels decided, per row.
    pub labels: &'a [Vec<usize>],
}

/// The output: the id column, `labels`, `score_<label>` for every label
/// (`clause classify`'s Parquet names), `model_sha256`, then every other
/// input column (named `input_<name>` where that name is taken), batch for
/// batch as the input came.
pub fn output(input: &Input, columns: &Columns, results: &Results<'_>, model_sha256: &str) -> PyResult<ArrowStream> {
    let labels_type = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    let mut fields: Vec<Field> = Vec::new();
    if let Some(id) = columns.id {
        fields.push(input.schema.field(id).clone());
    }
    fields.push(Field::new("labels", labels_type, false));
    for label in results.label_names {
        fields.push(Field::new(format!("score_{label}"), DataType::Float64, false));
    }
    fields.push(Field::new("model_sha256", DataType::Utf8, false));
    let carried: Vec<usize> = (0..input.schema.fields().len()).filter(|&i| Some(i) != columns.id).collect();
    for &index in &carried {
        let field = input.schema.field(index);
        let mut name = field.name().clone();
        while fields.iter().any(|f| f.name() == &name) {
            name = format!("input_{name}");
        }
        fields.push(field.clone().with_name(name));
    }
    let schema = Arc::new(Schema::new(fields));
    let mut batches = Vec::with_capacity(input.batches.len());
    let mut start = 0;
    for batch in &input.batches {
        let rows = start..start + batch.num_rows();
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        if let Some(id) = columns.id {
            arrays.push(batch.column(id).clone());
        }
        let mut labels = ListBuilder::new(StringBuilder::new());
        for row in results.labels[rows.clone()].iter() {
            for &label in row {
                labels.values().append_value(&results.label_names[label]);
            }
            labels.append(true);
        }
        arrays.push(Arc::new(labels.finish()));
        for label in 0..results.label_names.len() {
            let scores: Float64Array =
                results.scores[rows.clone()].iter().map(|row| f64::from(row[label])).collect::<Vec<f64>>().into();
            arrays.push(Arc::new(scores));
        }
        arrays.push(Arc::new(StringArray::from(vec![model_sha256; batch.num_rows()])));
        arrays.extend(carried.iter().map(|&i| batch.column(i).clone()));
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let batch = RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
            .map_err(|err| ClauseError::new_err(format!("assembling the results: {err}")))?;
        batches.push(batch);
        start = rows.end;
    }
    Ok(ArrowStream { schema, batches })
}

/// Arrow data held in Rust, exported to any consumer through
/// `__arrow_c_stream__` (`pyarrow.table(stream)`, `polars.DataFrame(stream)`).
#[pyclass(module = "clause._clause", frozen)]
pub struct ArrowStream {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

#[pymethods]
impl ArrowStream {
    /// The batches as an `ArrowArrayStream` capsule. `requested_schema` is
    /// ignored, as the interface allows: the data keeps its own schema.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches: Vec<_> = self.batches.iter().cloned().map(Ok).collect();
        let reader = RecordBatchIterator::new(batches, self.schema.clone());
        PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(Box::new(reader)), STREAM_CAPSULE)
    }

    /// Rows in all.
    #[getter]
    fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.schema.fields().iter().map(|f| f.name().as_str()).collect();
        format!("ArrowStream({} rows, columns {names:?})", self.num_rows())
    }
}
