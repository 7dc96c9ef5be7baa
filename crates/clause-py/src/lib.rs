//! `clause._clause`, the native part of the Python package `clause`
//! (`python/clause/`): a model directory loaded once and classifying lists
//! of texts or Arrow tables, and the segmenter.
//!
//! Texts are read as `clause classify` reads the rows of a table: each with
//! its title when a title column is given (for a model trained with
//! headings), in windows, sentence by sentence where the model's card says
//! so ([`Classifier::views`], [`Classifier::score_views`]), and labels are
//! decided by the model's thresholds ([`Classifier::decide`], the rule of
//! `clause_eval::decision`). Prediction runs without the GIL, on the
//! classifier's own threads.

mod arrow;
mod identity;

use std::ffi::CString;
use std::path::PathBuf;

use candle_core::Device;
use clause_infer::classifier::{BatchPlan, Classifier};
use clause_infer::input::Passage;
use clause_infer::reading::MAX_WINDOWS;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyTypeError, PyUserWarning, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

pyo3::create_exception!(
    clause,
    ClauseError,
    PyException,
    "A model directory that cannot be loaded or run (a file that does not fit, a broken card), with the message \
     that names the file and what is wrong."
);

/// A Rust error as a Python exception carrying its message: a missing file
/// or directory is a `FileNotFoundError`, anything else a [`ClauseError`].
fn infer_error(err: clause_infer::Error) -> PyErr {
    match &err {
        clause_infer::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(err.to_string())
        }
        _ => ClauseError::new_err(err.to_string()),
    }
}

/// A trained model directory (a single model or an ensemble), loaded once.
#[pyclass(module = "clause._clause", name = "Classifier", subclass, frozen)]
pub struct PyClassifier {
    classifier: Classifier,
    /// The threads tokenising runs on; prediction shares each batch among
    /// as many ([`Classifier::set_threads`]).
    pool: rayon::ThreadPool,
    labels: Vec<String>,
    model_sha256: String,
}

#[pymethods]
impl PyClassifier {
    /// Load `model_dir`; `threads` (default: `RAYON_NUM_THREADS`, else the
    /// cores, as `clause` takes) is this classifier's own count.
    #[new]
    #[pyo3(signature = (model_dir, threads = None))]
    fn new(py: Python<'_>, model_dir: PathBuf, threads: Option<i64>) -> PyResult<Self> {
        let threads = match threads {
            None => candle_core::utils::get_num_threads(),
            Some(n) if n >= 1 => usize::try_from(n).map_err(|_| PyValueError::new_err("threads: too many"))?,
            Some(n) => return Err(PyValueError::new_err(format!("threads must be at least 1, not {n}"))),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("clause-{i}"))
            .build()
            .map_err(|err| ClauseError::new_err(format!("cannot start {threads} threads: {err}")))?;
        let (classifier, model_sha256) = py
            .detach(|| {
                let mut classifier = Classifier::load(&model_dir, &Device::Cpu)?;
                classifier.set_threads(threads);
                let hash = identity::model_sha256(&model_dir)?;
                Ok((classifier, hash))
            })
            .map_err(infer_error)?;
        let labels = classifier.labels().iter().map(|l| l.name.clone()).collect();
        Ok(Self { classifier, pool, labels, model_sha256 })
    }

    /// Label names, in output order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// Each label's decision threshold (on calibrated probabilities), in
    /// label order.
    #[getter]
    fn thresholds(&self) -> Vec<f32> {
        self.classifier.thresholds()
    }

    /// What identifies the model: the sha256 of the `sha256sum` listing of
    /// the files it is loaded from.
    #[getter]
    fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// The model directory.
    #[getter]
    fn model_dir(&self) -> PathBuf {
        self.classifier.dir().to_path_buf()
    }

    /// Threads each prediction runs on.
    #[getter]
    fn threads(&self) -> usize {
        self.classifier.threads()
    }

    /// Models averaged: 1, or an ensemble's members.
    #[getter]
    fn members(&self) -> usize {
        self.classifier.members()
    }

    fn __repr__(&self) -> String {
        format!(
            "Classifier({:?}, labels={:?}, members={}, threads={})",
            self.classifier.dir().display().to_string(),
            self.labels,
            self.classifier.members(),
            self.classifier.threads()
        )
    }

    /// Classify `texts` (a list of str; `titles`, if given, one str or None
    /// each): one dict per text, `{"labels": [...], "scores": {label: p}}`.
    #[pyo3(signature = (texts, *, titles = None, batch_size = 32))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        titles: Option<&Bound<'py, PyAny>>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let texts = strings(texts, "texts")?;
        let titles = match titles {
            None => vec![None; texts.len()],
            Some(titles) => {
                let titles = optional_strings(titles, "titles")?;
                if titles.len() != texts.len() {
                    return Err(PyValueError::new_err(format!(
                        "titles: {} titles for {} texts; give one (or None) per text",
                        titles.len(),
                        texts.len()
                    )));
                }
                titles
            }
        };
        let passages: Vec<Passage<'_>> = texts
            .iter()
            .zip(&titles)
            .map(|(text, title)| Passage { text, title: title.as_deref(), chapter: None })
            .collect();
        let scores = self.score(py, &passages, batch_size)?;
        let records = PyList::empty(py);
        for row in &scores {
            let record = PyDict::new(py);
            let labels: Vec<&str> = self.classifier.decide(row).into_iter().map(|i| self.labels[i].as_str()).collect();
            record.set_item("labels", labels)?;
            let by_label = PyDict::new(py);
            for (name, p) in self.labels.iter().zip(row) {
                by_label.set_item(name, f64::from(*p))?;
            }
            record.set_item("scores", by_label)?;
            records.append(record)?;
        }
        Ok(records)
    }

    /// Classify the rows of Arrow data (any object with
    /// `__arrow_c_stream__`: a pyarrow Table or RecordBatchReader, a polars
    /// DataFrame, ...) and return the results as an Arrow stream of the
    /// same batches: the id column, `labels`, `score_<label>` for every
    /// label, `model_sha256`, then every other input column.
    #[pyo3(signature = (data, text_column = "text", id_column = Some("id"), *, title_column = None, batch_size = 32))]
    fn predict_stream(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        text_column: &str,
        id_column: Option<&str>,
        title_column: Option<&str>,
        batch_size: usize,
    ) -> PyResult<arrow::ArrowStream> {
        let input = arrow::import_stream(data)?;
        let columns = arrow::Columns::find(&input.schema, text_column, id_column, title_column)?;
        let passages = columns.passages(&input.batches)?;
        let scores = self.score(py, &passages, batch_size)?;
        let labels: Vec<Vec<usize>> = scores.iter().map(|row| self.classifier.decide(row)).collect();
        let results = arrow::Results { label_names: &self.labels, scores: &scores, labels: &labels };
        arrow::output(&input, &columns, &results, &self.model_sha256)
    }
}

impl PyClassifier {
    /// Every label's probability for every passage, computed without the
    /// GIL on this classifier's threads; a warning when some text was too
    /// long to read whole.
    fn score(&self, py: Python<'_>, passages: &[Passage<'_>], batch_size: usize) -> PyResult<Vec<Vec<f32>>> {
        if batch_size == 0 {
            return Err(PyValueError::new_err("batch_size must be at least 1"));
        }
        let plan = BatchPlan { batch_size, by_length: true };
        let classifier = &self.classifier;
        let (scores, cut) = py
            .detach(|| {
                self.pool.install(|| {
                    let views = classifier.views(passages)?;
                    let scores = classifier.score_views(&views, plan, &mut |_| {})?;
                    Ok::<_, clause_infer::Error>((scores, views.cut))
                })
            })
            .map_err(infer_error)?;
        if let Some(&first) = cut.first() {
            let message = format!(
                "{} of {} texts are longer than the model reads ({MAX_WINDOWS} windows) and are read only up to that \
                 (the first is row {}, counting from 0); a label raised only by their later words is missed",
                cut.len(),
                passages.len(),
                first
            );
            let message = CString::new(message).unwrap_or_default();
            PyErr::warn(py, &py.get_type::<PyUserWarning>(), &message, 1)?;
        }
        Ok(scores)
    }
}

/// The str items of a list (or other sequence) of texts; anything else is
/// a `TypeError` naming the position.
fn strings(values: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<String>> {
    if values.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!("{name} must be a list of str, not a single str")));
    }
    let mut out = Vec::new();
    for (index, item) in values
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a list of str, not {}", type_name(values))))?
        .enumerate()
    {
        let item = item?;
        if !item.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!("{name}[{index}] is {}, not str", type_name(&item))));
        }
        out.push(item.extract::<String>()?);
    }
    Ok(out)
}

/// [`strings`] with `None` allowed.
fn optional_strings(values: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<Option<String>>> {
    if values.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!("{name} must be a list of str or None, not a single str")));
    }
    let mut out = Vec::new();
    for (index, item) in values
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a list, not {}", type_name(values))))?
        .enumerate()
    {
        let item = item?;
        if item.is_none() {
            out.push(None);
        } else if item.is_instance_of::<PyString>() {
            out.push(Some(item.extract::<String>()?));
        } else {
            return Err(PyTypeError::new_err(format!("{name}[{index}] is {}, not str or None", type_name(&item))));
        }
    }
    Ok(out)
}

/// A Python object's type name, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "an object".to_string())
}

/// The provisions of a treaty, bill or agreement, as `clause segment
/// --format jsonl` gives them: one dict per provision.
#[pyfunction]
#[pyo3(signature = (text, document = "document".to_string()))]
fn segment<'py>(py: Python<'py>, text: String, document: String) -> PyResult<Bound<'py, PyList>> {
    let provisions = py.detach(|| clause_segment::segment(&document, &text));
    let list = PyList::empty(py);
    for provision in &provisions {
        let value = serde_json::to_value(provision)
            .map_err(|err| ClauseError::new_err(format!("serialising a provision: {err}")))?;
        list.append(json_to_py(py, &value)?)?;
    }
    Ok(list)
}

/// A JSON value as the Python value `json.loads` would give.
fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(fields) => {
            let dict = PyDict::new(py);
            for (key, item) in fields {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// The module `clause._clause`.
#[pymodule]
fn _clause(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClassifier>()?;
    m.add_class::<arrow::ArrowStream>()?;
    m.add_function(wrap_pyfunction!(segment, m)?)?;
    m.add("ClauseError", m.py().get_type::<ClauseError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
