//! `clause serve`: one loaded model answering JSON requests over HTTP or
//! stdin/stdout.
//!
//! Connections and inference are kept apart. Connection threads (one per
//! connection, at most `max_connections`) read, bound and validate requests
//! and queue their texts; one inference thread owns the model, takes queued
//! jobs together into batches (the texts of several requests in one call) and
//! replies to each job through its own channel. A slow or hostile client can
//! therefore hold only its own connection thread, never the model.
//!
//! Everything a client controls is bounded: the request head, the body, the
//! texts per request and their length, the time a client may take to send a
//! request or take a response, the connections served at once and the texts
//! queued. When the queue is full, HTTP requests get 503 with `Retry-After`
//! and stdio requests wait (a pipe has its own back-pressure).
//!
//! The HTTP/1.1 subset is written over `std::net`: `Content-Length` bodies,
//! keep-alive and pipelining, `Expect: 100-continue`. Chunked request bodies
//! are refused with 411 (every client that matters sends a length for a JSON
//! body it already holds).

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clause_data::segment::{Provision, segment};
use clause_infer::classifier::{BatchPlan, Classifier, ModelLabel, decide_with};
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

/// Bytes of a request line and headers at most (431 beyond).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Headers per request at most (431 beyond).
const MAX_HEADERS: usize = 64;

/// How often an idle connection looks at the shutdown flag.
const IDLE_POLL: Duration = Duration::from_millis(200);

/// How long a connection closed with unread input keeps reading (and
/// discarding) it, so that the client sees the error response rather than a
/// reset.
const LINGER: Duration = Duration::from_secs(2);

/// Stack of a connection thread: request parsing is shallow (serde_json
/// stops at 128 levels of nesting), and many threads may exist at once.
const CONNECTION_STACK: usize = 512 * 1024;

/// Seconds a client is told to wait when the queue is full.
const RETRY_AFTER_SECS: u32 = 1;

/// Lines of stdio requests read ahead of the one being answered.
const STDIO_PIPELINE: usize = 64;

/// What clients may ask of the server, and how it batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Bytes per request body (HTTP) or line (stdio).
    pub max_body_bytes: usize,
    /// Texts (or provisions of a document) per request.
    pub max_texts: usize,
    /// Characters per text of `texts`.
    pub max_text_chars: usize,
    /// Texts per forward pass.
    pub max_batch: usize,
    /// How long the inference thread waits for more texts to fill a batch.
    pub max_wait: Duration,
    /// Texts waiting for the model at most; more get 503.
    pub queue_texts: usize,
    /// HTTP connections served at once; more get 503.
    pub max_connections: usize,
    /// Time a client has to send a request (from its first byte) or to take
    /// a response; also how long an idle keep-alive connection is kept.
    pub client_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_texts: 256,
            max_text_chars: 20_000,
            max_batch: 32,
            max_wait: Duration::from_millis(5),
            queue_texts: 4096,
            max_connections: 128,
            client_timeout: Duration::from_secs(10),
        }
    }
}

/// What responses say about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The model's name (its directory's name).
    pub name: String,
    /// Labels in output order.
    pub labels: Vec<ModelLabel>,
    /// Decision thresholds in label order (the model's, or the override).
    pub thresholds: Vec<f32>,
}

/// Something that turns texts into every label's probability: the
/// classifier, or a fake in tests.
pub trait Scorer: Send {
    /// Probabilities of `texts`, in their order, `batch_size` per forward
    /// pass.
    fn score(&mut self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>, String>;
}

impl Scorer for Classifier {
    fn score(&mut self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>, String> {
        // Length buckets cost nothing in results (padding does not change the
        // logits) and save compute when requests mix short and long texts.
        self.predict(texts, BatchPlan { batch_size, by_length: true }, &mut |_| {}).map_err(|err| err.to_string())
    }
}

/// A request refused, as the client sees it: an HTTP status and
/// `{"error": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What was wrong, naming the field.
    pub message: String,
}

impl ApiError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    /// The error body, with the request's `id` when it had one.
    fn to_json(&self, id: Option<&Value>) -> Vec<u8> {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a Value>,
            error: Inner<'a>,
        }
        to_json(&Body { id, error: Inner { code: self.code, message: &self.message } })
    }
}

/// Serialise what cannot fail to serialise (no maps with non-string keys,
/// no failing `Serialize` impls); a failure would be a bug, reported as one.
fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|err| {
        tracing::error!(%err, "serialising a response");
        br#"{"error":{"code":"internal","message":"the response could not be serialised"}}"#.to_vec()
    })
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The client's `id`, echoed in the response.
    pub id: Option<Value>,
    /// What to classify.
    pub work: Work,
}

/// What a request asks to classify.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Bare texts.
    Texts(Vec<String>),
    /// A draft, segmented into provisions as `clause segment` does.
    Document {
        /// The provisions, in document order.
        provisions: Vec<Provision>,
    },
}

/// The JSON kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Parse a body (or stdio line) as JSON; the `id` is returned apart so that
/// an invalid request's error can still echo it.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(400, "invalid_json", "the body is empty: expected a JSON object"));
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::new(400, "invalid_json", format!("line {} column {}: {err}", err.line(), err.column()))
    })
}

/// The `id` of a request object, if it has one.
pub fn request_id(value: &Value) -> Option<Value> {
    value.get("id").cloned()
}

/// Check a request object's shape and limits: `{"texts": [...]}` or
/// `{"document": "...", "name": "..."}`, with an optional `id`.
pub fn validate(value: Value, limits: &Limits) -> Result<Request, ApiError> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid(format!(
            "expected a JSON object with `texts`, or `document` and optionally `name`; got {}",
            kind(&value)
        )));
    };
    if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "texts" | "document" | "name" | "id")) {
        return Err(ApiError::new(
            400,
            "unknown_field",
            format!("field `{key}`: unknown; expected `texts`, or `document` and `name` (and optionally `id`)"),
        ));
    }
    let id = map.remove("id");
    let name = map.remove("name");
    let work = match (map.remove("texts"), map.remove("document")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("fields `texts` and `document`: give one, not both"));
        }
        (None, None) => {
            return Err(ApiError::new(
                400,
                "missing_field",
                "expected field `texts` (a list of strings) or `document` (a string)",
            ));
        }
        (Some(texts), None) => {
            if name.is_some() {
                return Err(ApiError::invalid("field `name`: only with `document`"));
            }
            Work::Texts(validate_texts(texts, limits)?)
        }
        (None, Some(document)) => {
            let Value::String(document) = document else {
                return Err(ApiError::invalid(format!("field `document`: expected a string, got {}", kind(&document))));
            };
            let name = match name {
                None => "document".to_string(),
                Some(Value::String(name)) if !name.trim().is_empty() => name,
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "field `name`: expected a non-empty string, got {}",
                        if other.is_string() { "an empty string" } else { kind(&other) }
                    )));
                }
            };
            let provisions = segment(&name, &document);
            if provisions.len() > limits.max_texts {
                return Err(ApiError::new(
                    413,
                    "too_many_texts",
                    format!(
                        "field `document`: {} provisions; at most {} per request (split the document)",
                        provisions.len(),
                        limits.max_texts
                    ),
                ));
            }
            Work::Document { provisions }
        }
    };
    Ok(Request { id, work })
}

fn validate_texts(texts: Value, limits: &Limits) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = texts else {
        return Err(ApiError::invalid(format!("field `texts`: expected a list of strings, got {}", kind(&texts))));
    };
    if items.len() > limits.max_texts {
        return Err(ApiError::new(
            413,
            "too_many_texts",
            format!("field `texts`: {} texts; at most {} per request", items.len(), limits.max_texts),
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => {
                let chars = text.chars().count();
                if chars > limits.max_text_chars {
                    Err(ApiError::new(
                        413,
                        "text_too_long",
                        format!("field `texts[{i}]`: {chars} characters; at most {}", limits.max_text_chars),
                    ))
                } else {
                    Ok(text)
                }
            }
            other => Err(ApiError::invalid(format!("field `texts[{i}]`: expected a string, got {}", kind(&other)))),
        })
        .collect()
}

/// The model's answer to one job.
type Scored = Result<Vec<Vec<f32>>, ApiError>;

/// Texts of one request, waiting for the model.
struct Job {
    texts: Arc<Vec<String>>,
    reply: SyncSender<Scored>,
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue holds its limit of texts.
    Full,
    /// The server is stopping.
    Closed,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    texts: usize,
    closed: bool,
}

/// Jobs waiting for the inference thread, bounded in texts.
struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when jobs arrive, room frees up, or the queue closes.
    changed: Condvar,
    capacity: usize,
    max_batch: usize,
    max_wait: Duration,
}

impl Queue {
    fn new(limits: &Limits) -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            changed: Condvar::new(),
            capacity: limits.queue_texts,
            max_batch: limits.max_batch.max(1),
            max_wait: limits.max_wait,
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The state is consistent between statements, so a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `texts`; `wait` for room instead of failing when full.
    fn submit(&self, texts: Arc<Vec<String>>, wait: bool) -> Result<Receiver<Scored>, SubmitError> {
        let (reply, receiver) = sync_channel(1);
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(SubmitError::Closed);
            }
            // A job larger than the whole queue goes in alone rather than
            // waiting for room it could never have.
            if state.texts + texts.len() <= self.capacity || state.jobs.is_empty() {
                break;
            }
            if !wait {
                return Err(SubmitError::Full);
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.texts += texts.len();
        state.jobs.push_back(Job { texts, reply });
        drop(state);
        self.changed.notify_all();
        Ok(receiver)
    }

    fn queued_texts(&self) -> usize {
        self.lock().texts
    }

    /// Refuse new jobs; queued ones are still handed out.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Drop every queued job, so that their requests fail rather than wait
    /// for a model that is gone.
    fn abandon(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.jobs.clear();
        state.texts = 0;
        drop(state);
        self.changed.notify_all();
    }

    /// The next jobs to score together: at least one, then more while fewer
    /// than `max_batch` texts are taken, waiting up to `max_wait` for them.
    /// `None` once the queue is closed and empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut state = self.lock();
        while state.jobs.is_empty() {
            if state.closed {
                return None;
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        let deadline = Instant::now() + self.max_wait;
        let mut jobs = Vec::new();
        let mut texts = 0;
        loop {
            while texts < self.max_batch
                && let Some(job) = state.jobs.pop_front()
            {
                texts += job.texts.len();
                state.texts -= job.texts.len();
                jobs.push(job);
            }
            let now = Instant::now();
            if texts >= self.max_batch || state.closed || now >= deadline {
                break;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
        drop(state);
        // Room freed: wake submitters waiting for it.
        self.changed.notify_all();
        Some(jobs)
    }
}

/// Score `jobs` together and send each its share. A failure of a batch of
/// several jobs is retried one job at a time, so that one bad request does
/// not fail the others.
fn score_jobs(scorer: &mut dyn Scorer, jobs: Vec<Job>, max_batch: usize) {
    let texts: Vec<&str> = jobs.iter().flat_map(|j| j.texts.iter().map(String::as_str)).collect();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| scorer.score(&texts, max_batch)))
        .unwrap_or_else(|_| Err("the model panicked".to_string()));
    let outcome = match outcome {
        Ok(scores) if scores.len() == texts.len() => Ok(scores),
        Ok(scores) => Err(format!("the model returned {} results for {} texts", scores.len(), texts.len())),
        Err(message) => Err(message),
    };
    match outcome {
        Ok(scores) => {
            let mut scores = scores.into_iter();
            for job in jobs {
                let share: Vec<Vec<f32>> = scores.by_ref().take(job.texts.len()).collect();
                // A client that hung up no longer wants its answer.
                let _ = job.reply.send(Ok(share));
            }
        }
        Err(_) if jobs.len() > 1 => {
            for job in jobs {
                score_jobs(scorer, vec![job], max_batch);
            }
        }
        Err(message) => {
            tracing::error!(%message, "classifying a request failed");
            for job in jobs {
                let _ =
                    job.reply.send(Err(ApiError::new(500, "internal", format!("classification failed: {message}"))));
            }
        }
    }
}

/// Counts of the inference thread's work, for `/healthz`.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    texts: AtomicU64,
}

/// The model behind its queue, shared by every connection.
pub struct Service {
    model: ModelInfo,
    label_names: Vec<String>,
    limits: Limits,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("model", &self.model.name).field("limits", &self.limits).finish()
    }
}

/// A request whose texts are queued (or that had none).
#[derive(Debug)]
pub struct InFlight {
    id: Option<Value>,
    work: Work,
    texts: Arc<Vec<String>>,
    reply: Option<Receiver<Scored>>,
}

impl Service {
    /// Start the inference thread, which owns `scorer` until [`Service::stop`].
    pub fn start(scorer: Box<dyn Scorer>, model: ModelInfo, limits: Limits) -> io::Result<Arc<Self>> {
        let queue = Arc::new(Queue::new(&limits));
        let counters = Arc::new(Counters::default());
        let worker = {
            let queue = Arc::clone(&queue);
            let counters = Arc::clone(&counters);
            let max_batch = limits.max_batch.max(1);
            std::thread::Builder::new().name("clause-inference".into()).spawn(move || {
                // However this thread ends, queued requests must not wait for it.
                struct Abandon(Arc<Queue>);
                impl Drop for Abandon {
                    fn drop(&mut self) {
                        self.0.abandon();
                    }
                }
                let _abandon = Abandon(Arc::clone(&queue));
                let mut scorer = scorer;
                while let Some(jobs) = queue.next_batch() {
                    let texts: usize = jobs.iter().map(|j| j.texts.len()).sum();
                    tracing::debug!(jobs = jobs.len(), texts, "batch");
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters.texts.fetch_add(texts as u64, Ordering::Relaxed);
                    score_jobs(scorer.as_mut(), jobs, max_batch);
                }
            })?
        };
        let label_names = model.labels.iter().map(|l| l.name.clone()).collect();
        Ok(Arc::new(Self { model, label_names, limits, queue, counters, worker: Mutex::new(Some(worker)) }))
    }

    /// Refuse new work, let the inference thread finish what is queued, and
    /// wait for it.
    pub fn stop(&self) {
        self.queue.close();
        let worker = self.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(worker) = worker
            && worker.join().is_err()
        {
            tracing::error!("the inference thread panicked");
        }
    }

    /// Queue a request's texts; `wait` for room rather than fail when the
    /// queue is full.
    pub fn submit(&self, request: Request, wait: bool) -> Result<InFlight, ApiError> {
        let Request { id, mut work } = request;
        let texts: Vec<String> = match &mut work {
            Work::Texts(texts) => std::mem::take(texts),
            Work::Document { provisions } => provisions.iter_mut().map(|p| std::mem::take(&mut p.text)).collect(),
        };
        let texts = Arc::new(texts);
        let reply = if texts.is_empty() {
            None
        } else {
            match self.queue.submit(Arc::clone(&texts), wait) {
                Ok(reply) => Some(reply),
                Err(SubmitError::Full) => {
                    return Err(ApiError::new(
                        503,
                        "overloaded",
                        format!("{} texts are waiting for the model; retry shortly", self.limits.queue_texts),
                    ));
                }
                Err(SubmitError::Closed) => return Err(stopping()),
            }
        };
        Ok(InFlight { id, work, texts, reply })
    }

    /// Wait for a queued request's scores and write its response body.
    pub fn answer(&self, flight: InFlight) -> Result<Vec<u8>, ApiError> {
        let scores = match &flight.reply {
            None => Vec::new(),
            Some(reply) => match reply.recv() {
                Ok(reply) => reply?,
                Err(_) => return Err(ApiError::new(500, "internal", "the model stopped before answering")),
            },
        };
        Ok(self.render(&flight, &scores))
    }

    fn render(&self, flight: &InFlight, scores: &[Vec<f32>]) -> Vec<u8> {
        let names = &self.label_names;
        let labels = |row: &[f32]| -> Vec<&str> {
            decide_with(row, &self.model.thresholds).into_iter().map(|i| names[i].as_str()).collect()
        };
        let model = self.model.name.as_str();
        let id = flight.id.as_ref();
        match &flight.work {
            Work::Texts(_) => {
                let results: Vec<TextRecord<'_>> = flight
                    .texts
                    .iter()
                    .zip(scores)
                    .enumerate()
                    .map(|(index, (text, row))| TextRecord {
                        index,
                        text,
                        labels: labels(row),
                        scores: Scores { names, values: row },
                    })
                    .collect();
                to_json(&Response { id, model, labels: names, results })
            }
            Work::Document { provisions } => {
                let results: Vec<ProvisionRecord<'_>> = provisions
                    .iter()
                    .zip(flight.texts.iter())
                    .zip(scores)
                    .map(|((p, text), row)| ProvisionRecord {
                        id: &p.id,
                        document: &p.document,
                        article: p.article.as_deref(),
                        paragraph: p.paragraph.as_deref(),
                        title: p.title.as_deref(),
                        text,
                        labels: labels(row),
                        scores: Scores { names, values: row },
                        start: p.start,
                        end: p.end,
                        line: p.line,
                    })
                    .collect();
                to_json(&Response { id, model, labels: names, results })
            }
        }
    }

    /// `POST /v1/classify`: parse, queue without waiting, answer.
    fn classify(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let request = validate(parse_json(body)?, &self.limits)?;
        let flight = self.submit(request, false)?;
        self.answer(flight)
    }

    /// `GET /v1/labels`.
    fn labels_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Label<'a> {
            name: &'a str,
            description: &'a str,
            threshold: f32,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            model: &'a str,
            labels: Vec<Label<'a>>,
        }
        let labels = self
            .model
            .labels
            .iter()
            .zip(&self.model.thresholds)
            .map(|(l, &threshold)| Label { name: &l.name, description: &l.description, threshold })
            .collect();
        to_json(&Body { model: &self.model.name, labels })
    }

    /// `GET /healthz`: whether requests are taken, and the queue's state.
    fn health(&self, stopping: bool) -> (u16, Vec<u8>) {
        #[derive(Serialize)]
        struct Body<'a> {
            status: &'a str,
            model: &'a str,
            queued_texts: usize,
            batches: u64,
            texts: u64,
        }
        let body = Body {
            status: if stopping { "stopping" } else { "ok" },
            model: &self.model.name,
            queued_texts: self.queue.queued_texts(),
            batches: self.counters.batches.load(Ordering::Relaxed),
            texts: self.counters.texts.load(Ordering::Relaxed),
        };
        (if stopping { 503 } else { 200 }, to_json(&body))
    }
}

fn stopping() -> ApiError {
    ApiError::new(503, "stopping", "the server is shutting down")
}

/// Every label's probability, as a map in label order.
struct Scores<'a> {
    names: &'a [String],
    values: &'a [f32],
}

impl Serialize for Scores<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Response<'a, R: Serialize> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    model: &'a str,
    labels: &'a [String],
    results: Vec<R>,
}

/// One of `texts`, classified.
#[derive(Serialize)]
struct TextRecord<'a> {
    index: usize,
    text: &'a str,
    labels: Vec<&'a str>,
    scores: Scores<'a>,
}

/// One provision of a document, with the fields of `clause classify`'s
/// JSON lines.
#[derive(Serialize)]
struct ProvisionRecord<'a> {
    id: &'a str,
    document: &'a str,
    article: Option<&'a str>,
    paragraph: Option<&'a str>,
    title: Option<&'a str>,
    text: &'a str,
    labels: Vec<&'a str>,
    scores: Scores<'a>,
    start: usize,
    end: usize,
    line: usize,
}

/// Set by SIGINT/SIGTERM: stop taking connections and requests, finish the
/// ones in flight.
#[derive(Debug, Default)]
pub struct Shutdown {
    flag: AtomicBool,
    /// Where to connect to wake the accept loop.
    wake: Mutex<Option<SocketAddr>>,
}

impl Shutdown {
    /// A flag not yet set.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Set the flag and wake the accept loop; says whether it was set
    /// already (a second signal).
    pub fn trigger(&self) -> bool {
        let was = self.flag.swap(true, Ordering::SeqCst);
        let wake = *self.wake.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(address) = wake {
            // The accept loop checks the flag after each connection; this
            // one exists only to make it look.
            let _ = TcpStream::connect_timeout(&address, Duration::from_secs(1));
        }
        was
    }

    /// Whether shutdown has begun.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn set_wake(&self, address: SocketAddr) {
        *self.wake.lock().unwrap_or_else(PoisonError::into_inner) = Some(address);
    }
}

/// The address to connect to in order to reach a listener bound to `bound`.
fn wake_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// The warning to print when the server is reachable from other machines.
pub fn exposure_warning(bound: SocketAddr) -> Option<String> {
    (!bound.ip().is_loopback()).then(|| {
        format!(
            "warning: listening on {bound}, which is not a loopback address: anyone who can reach this machine \
             can send requests (there is no authentication or TLS)"
        )
    })
}

/// Open connections, bounded; [`Slot`]s give theirs back when dropped.
#[derive(Default)]
struct Connections {
    open: Mutex<usize>,
    closed: Condvar,
}

struct Slot(Arc<Connections>);

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(PoisonError::into_inner);
        *open -= 1;
        drop(open);
        self.0.closed.notify_all();
    }
}

impl Connections {
    fn acquire(self: &Arc<Self>, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (*open < max).then(|| {
            *open += 1;
            Slot(Arc::clone(self))
        })
    }

    fn wait_until_none(&self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while *open > 0 {
            open = self.closed.wait(open).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Accept connections on `listener` until `shutdown`, then wait for the
/// connections to finish their requests.
pub fn serve_http(listener: TcpListener, service: Arc<Service>, shutdown: Arc<Shutdown>) -> io::Result<()> {
    let bound = listener.local_addr()?;
    shutdown.set_wake(wake_address(bound));
    let connections = Arc::new(Connections::default());
    // A signal that came before the wake address was known woke nothing.
    if !shutdown.is_set() {
        for stream in listener.incoming() {
            if shutdown.is_set() {
                break;
            }
            let stream = match stream {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    // Out of descriptors or memory: retrying at once would spin.
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let Some(slot) = connections.acquire(service.limits.max_connections) else {
                reject_busy(stream, service.limits.max_connections);
                continue;
            };
            let service = Arc::clone(&service);
            let shutdown = Arc::clone(&shutdown);
            let spawned =
                std::thread::Builder::new().name("clause-http".into()).stack_size(CONNECTION_STACK).spawn(move || {
                    let _slot = slot;
                    handle_connection(stream, &service, &shutdown);
                });
            if let Err(err) = spawned {
                tracing::warn!(%err, "starting a connection thread failed");
            }
        }
    }
    drop(listener);
    tracing::info!("no longer accepting connections; finishing requests in flight");
    connections.wait_until_none();
    Ok(())
}

/// Answer a connection over the limit with 503, from the accept thread, so
/// without waiting for its request.
fn reject_busy(mut stream: TcpStream, max: usize) {
    let error = ApiError::new(503, "overloaded", format!("{max} connections are open; retry shortly"));
    let reply = Reply::error(&error).closing();
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = write_reply(&mut stream, &reply, false);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Input left unread turns the close into a reset, which can destroy the
    // response before the client reads it: take what has arrived.
    if stream.set_nonblocking(true).is_ok() {
        let mut sink = [0u8; 8192];
        for _ in 0..4 {
            if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
    }
}

/// A response about to be written.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    allow: Option<&'static str>,
    retry_after: bool,
    /// Close the connection after this response.
    close: bool,
    /// Input may remain unread: read and discard it for a while after
    /// closing our side, so the client sees the response.
    linger: bool,
    /// A HEAD request: headers only.
    head_only: bool,
}

impl Reply {
    fn ok(status: u16, body: Vec<u8>) -> Self {
        Self { status, body, allow: None, retry_after: false, close: false, linger: false, head_only: false }
    }

    fn error(error: &ApiError) -> Self {
        let mut reply = Self::ok(error.status, error.to_json(None));
        reply.retry_after = error.status == 503;
        reply
    }

    fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    fn lingering(mut self) -> Self {
        self.close = true;
        self.linger = true;
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn write_reply(stream: &mut TcpStream, reply: &Reply, keep_alive: bool) -> io::Result<()> {
    let mut out = Vec::with_capacity(reply.body.len() + 256);
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n",
        reply.status,
        reason(reply.status),
        reply.body.len(),
        if keep_alive && !reply.close { "keep-alive" } else { "close" }
    );
    if reply.retry_after {
        let _ = write!(out, "Retry-After: {RETRY_AFTER_SECS}\r\n");
    }
    if let Some(allow) = reply.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !reply.head_only {
        out.extend_from_slice(&reply.body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

/// Why reading a request stopped.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// The client took longer than the client timeout.
    Timeout,
    /// The client closed the connection.
    Closed,
    /// The request head is over [`MAX_HEAD_BYTES`].
    TooLarge,
    /// Any other socket error.
    Failed,
}

/// A connection's socket and the bytes read from it but not yet used
/// (pipelined requests arrive in one read).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Read more bytes into the buffer, giving up at `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            self.stream.set_read_timeout(Some(left)).map_err(|_| ReadError::Failed)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(ReadError::Timeout);
                }
                Err(_) => return Err(ReadError::Failed),
            }
        }
    }

    /// Drop blank lines between requests (allowed before a request line).
    fn skip_blank_lines(&mut self) {
        let blank = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        self.buf.drain(..blank);
    }

    /// Wait until a request starts: `false` when the connection closes, the
    /// client stays idle for `idle`, or shutdown begins with nothing sent.
    fn await_request(&mut self, idle: Duration, shutdown: &Shutdown) -> bool {
        let until = Instant::now() + idle;
        loop {
            self.skip_blank_lines();
            if !self.buf.is_empty() {
                return true;
            }
            let now = Instant::now();
            if now >= until {
                return false;
            }
            // While stopping, a request already sent is still answered; a
            // brief look tells whether one has.
            let slice = if shutdown.is_set() { Duration::from_millis(10) } else { IDLE_POLL.min(until - now) };
            match self.fill(now + slice) {
                Ok(()) => {}
                Err(ReadError::Timeout) if !shutdown.is_set() => {}
                Err(_) => return false,
            }
        }
    }

    /// The request head (without its blank line), read by `deadline`.
    fn read_head(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut searched = 0;
        loop {
            if let Some((head, end)) = head_end(&self.buf, searched) {
                let bytes = self.buf[..head].to_vec();
                self.buf.drain(..end);
                return Ok(bytes);
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::TooLarge);
            }
            // A terminator may straddle the old end: look again from just
            // before it.
            searched = self.buf.len().saturating_sub(3);
            self.fill(deadline)?;
        }
    }

    /// Exactly `length` body bytes, read by `deadline`.
    fn read_body(&mut self, length: usize, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < length {
            self.fill(deadline)?;
        }
        let rest = self.buf.split_off(length);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Having closed our side, read and discard what the client still
    /// sends, for a while, so that closing does not reset the connection
    /// before the client has read our response.
    fn linger(mut self) {
        if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        loop {
            self.buf.clear();
            if self.fill(deadline).is_err() {
                return;
            }
        }
    }
}

/// Where the head ends in `buf`: the length of the head up to its last
/// line's `\n`, and of the head with its blank line (`\r\n\r\n`, or bare
/// `\n\n`).
fn head_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    (from..buf.len()).find_map(|i| {
        if buf[i] != b'\n' {
            return None;
        }
        match buf.get(i + 1..) {
            Some([b'\n', ..]) => Some((i, i + 2)),
            Some([b'\r', b'\n', ..]) => Some((i, i + 3)),
            _ => None,
        }
    })
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    /// The target without its query string.
    path: String,
    content_length: Option<usize>,
    /// A `Transfer-Encoding` header (chunked bodies are not supported).
    transfer_encoding: bool,
    keep_alive: bool,
    expect_continue: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Head, ApiError> {
    let bad = |message: &str| ApiError::new(400, "bad_request", message.to_string());
    let text = std::str::from_utf8(bytes).map_err(|_| bad("the request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line: expected `METHOD /path HTTP/1.1`"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) || !target.starts_with('/') {
        return Err(bad("malformed request line: expected `METHOD /path HTTP/1.1`"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        other if other.starts_with("HTTP/") => {
            return Err(ApiError::new(505, "http_version", format!("{other} is not supported: use HTTP/1.1")));
        }
        _ => return Err(bad("malformed request line: expected `METHOD /path HTTP/1.1`")),
    };
    let mut head = Head {
        method: method.to_string(),
        path: target.split(['?', '#']).next().unwrap_or(target).to_string(),
        content_length: None,
        transfer_encoding: false,
        keep_alive: !http10,
        expect_continue: false,
    };
    let mut count = 0;
    for line in lines {
        count += 1;
        if count > MAX_HEADERS {
            return Err(ApiError::new(431, "headers_too_large", format!("more than {MAX_HEADERS} headers")));
        }
        if line.starts_with([' ', '\t']) {
            return Err(bad("folded header lines are not supported"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("malformed header line: expected `Name: value`"));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(bad("malformed header name"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("Content-Length is not a number"));
            }
            // Too many digits for usize is simply too large.
            let length = value.parse::<usize>().unwrap_or(usize::MAX);
            if head.content_length.is_some_and(|l| l != length) {
                return Err(bad("conflicting Content-Length headers"));
            }
            head.content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                    head.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    Ok(head)
}

/// The routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Classify,
    Labels,
    Health,
}

/// The route of `path`, or 404; then 405 unless `method` is one it takes.
fn route(method: &str, path: &str) -> Result<Route, Reply> {
    let (route, allow) = match path {
        "/v1/classify" => (Route::Classify, "POST"),
        "/v1/labels" => (Route::Labels, "GET, HEAD"),
        "/healthz" => (Route::Health, "GET, HEAD"),
        _ => {
            let error = ApiError::new(
                404,
                "not_found",
                format!("no route {path}: try POST /v1/classify, GET /v1/labels or GET /healthz"),
            );
            return Err(Reply::error(&error));
        }
    };
    let allowed = match route {
        Route::Classify => method == "POST",
        Route::Labels | Route::Health => method == "GET" || method == "HEAD",
    };
    if allowed {
        Ok(route)
    } else {
        let error = ApiError::new(405, "method_not_allowed", format!("{path} takes {allow}, not {method}"));
        let mut reply = Reply::error(&error);
        reply.allow = Some(allow);
        Err(reply)
    }
}

/// What to do after one exchange.
enum Next {
    /// Write this reply (then keep the connection, or close it).
    Reply(Reply, bool),
    /// The client is gone; close without a word.
    Drop,
}

/// Serve one connection's requests until it closes, idles out, breaks a
/// rule that leaves the stream unusable, or shutdown begins.
fn handle_connection(stream: TcpStream, service: &Service, shutdown: &Shutdown) {
    let timeout = service.limits.client_timeout;
    let _ = stream.set_nodelay(true);
    // A client that does not take its response within the timeout loses it.
    let _ = stream.set_write_timeout(Some(timeout));
    let mut conn = Conn { stream, buf: Vec::new() };
    loop {
        if !conn.await_request(timeout, shutdown) {
            return;
        }
        let started = Instant::now();
        let (reply, keep_alive) = match exchange(&mut conn, service, shutdown, started + timeout) {
            Next::Reply(reply, keep_alive) => (reply, keep_alive && !shutdown.is_set()),
            Next::Drop => return,
        };
        tracing::debug!(status = reply.status, ms = started.elapsed().as_secs_f64() * 1e3, "request");
        if write_reply(&mut conn.stream, &reply, keep_alive).is_err() {
            return;
        }
        if reply.close || !keep_alive {
            if reply.linger {
                conn.linger();
            }
            return;
        }
    }
}

/// Read one request and work out its reply.
fn exchange(conn: &mut Conn, service: &Service, shutdown: &Shutdown, deadline: Instant) -> Next {
    let limits = &service.limits;
    let timeout_error = || {
        ApiError::new(
            408,
            "timeout",
            format!("the request took over {} s to arrive", limits.client_timeout.as_secs_f64()),
        )
    };
    let head = match conn.read_head(deadline) {
        Ok(head) => head,
        Err(ReadError::Timeout) => return Next::Reply(Reply::error(&timeout_error()).closing(), false),
        Err(ReadError::TooLarge) => {
            let error =
                ApiError::new(431, "headers_too_large", format!("the request head is over {MAX_HEAD_BYTES} bytes"));
            return Next::Reply(Reply::error(&error).lingering(), false);
        }
        Err(ReadError::Closed | ReadError::Failed) => return Next::Drop,
    };
    let head = match parse_head(&head) {
        Ok(head) => head,
        Err(error) => return Next::Reply(Reply::error(&error).lingering(), false),
    };
    let keep_alive = head.keep_alive;
    if head.transfer_encoding {
        let error = ApiError::new(411, "length_required", "chunked bodies are not supported: send Content-Length");
        return Next::Reply(Reply::error(&error).lingering(), false);
    }
    let length = head.content_length.unwrap_or(0);
    let route = match route(&head.method, &head.path) {
        Ok(route) => route,
        // The body, if any, is left unread: close rather than parse it as
        // the next request.
        Err(reply) if length > 0 => return Next::Reply(reply.lingering(), false),
        Err(reply) => return Next::Reply(reply, keep_alive),
    };
    if length > limits.max_body_bytes {
        let error = ApiError::new(
            413,
            "body_too_large",
            format!("the body has {length} bytes; at most {} are accepted", limits.max_body_bytes),
        );
        return Next::Reply(Reply::error(&error).lingering(), false);
    }
    let body = if length > 0 {
        if head.expect_continue
            && conn.buf.is_empty()
            && conn.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return Next::Drop;
        }
        match conn.read_body(length, deadline) {
            Ok(body) => body,
            Err(ReadError::Timeout) => return Next::Reply(Reply::error(&timeout_error()).closing(), false),
            Err(_) => return Next::Drop,
        }
    } else {
        Vec::new()
    };
    let head_only = head.method == "HEAD";
    let mut reply = match route {
        Route::Classify => match service.classify(&body) {
            Ok(json) => Reply::ok(200, json),
            Err(error) => Reply::error(&error),
        },
        Route::Labels => Reply::ok(200, service.labels_json()),
        Route::Health => {
            let (status, json) = service.health(shutdown.is_set());
            Reply::ok(status, json)
        }
    };
    reply.head_only = head_only;
    Next::Reply(reply, keep_alive)
}

/// A stdio line, read with a bound on its length.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Eof,
    Text(Vec<u8>),
    /// Over the limit (its bytes were discarded).
    TooLong(usize),
}

/// The next line of `input` without its `\n` (or `\r\n`), keeping at most
/// `max` bytes in memory.
fn read_line_bounded(input: &mut dyn BufRead, max: usize) -> io::Result<Line> {
    let mut line = Vec::new();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        total += chunk.len();
        if total <= max {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        input.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(Line::Eof);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
        total = total.saturating_sub(1);
    }
    Ok(if total > max { Line::TooLong(total) } else { Line::Text(line) })
}

/// A stdio request between the reader thread and the writer.
enum Pending {
    /// The response line, already known (an error, mostly).
    Ready(Vec<u8>),
    /// Queued; the writer waits for its scores.
    Queued(InFlight),
}

/// Turn one stdio line into its pending answer.
fn stdio_request(service: &Service, line: Line) -> Option<Pending> {
    let bytes = match line {
        Line::Eof => return None,
        Line::TooLong(length) => {
            let error = ApiError::new(
                413,
                "body_too_large",
                format!("the line has {length} bytes; at most {} are accepted", service.limits.max_body_bytes),
            );
            return Some(Pending::Ready(error.to_json(None)));
        }
        Line::Text(bytes) => bytes,
    };
    let value = match parse_json(&bytes) {
        Ok(value) => value,
        Err(error) => return Some(Pending::Ready(error.to_json(None))),
    };
    let id = request_id(&value);
    let outcome = validate(value, &service.limits).and_then(|request| service.submit(request, true));
    Some(match outcome {
        Ok(flight) => Pending::Queued(flight),
        Err(error) => Pending::Ready(error.to_json(id.as_ref())),
    })
}

/// Answer one JSON request per line of `input`, one response per line of
/// `out`, in order, until `input` ends or shutdown begins. Lines are read
/// ahead of the answers, so that requests sent together are batched
/// together.
pub fn serve_stdio(
    mut input: Box<dyn BufRead + Send>,
    out: &mut dyn Write,
    service: &Arc<Service>,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let (sender, receiver) = sync_channel::<Pending>(STDIO_PIPELINE);
    let reader_service = Arc::clone(service);
    // Not joined: at shutdown it may be blocked on stdin for good.
    let reader = std::thread::Builder::new().name("clause-stdin".into()).spawn(move || -> io::Result<()> {
        let max = reader_service.limits.max_body_bytes;
        loop {
            let line = read_line_bounded(input.as_mut(), max)?;
            if matches!(&line, Line::Text(bytes) if bytes.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let Some(pending) = stdio_request(&reader_service, line) else {
                return Ok(());
            };
            if sender.send(pending).is_err() {
                return Ok(());
            }
        }
    })?;
    let write = |pending: Pending, out: &mut dyn Write| -> io::Result<()> {
        let line = match pending {
            Pending::Ready(line) => line,
            Pending::Queued(flight) => {
                let id = flight.id.clone();
                service.answer(flight).unwrap_or_else(|error| error.to_json(id.as_ref()))
            }
        };
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        out.flush()
    };
    loop {
        match receiver.recv_timeout(IDLE_POLL) {
            Ok(pending) => write(pending, out)?,
            Err(RecvTimeoutError::Timeout) if shutdown.is_set() => {
                // Answer what was already read; read nothing more.
                while let Ok(pending) = receiver.try_recv() {
                    write(pending, out)?;
                }
                return Ok(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    match reader.join() {
        Ok(result) => result,
        Err(_) => Err(io::Error::other("the stdin reader panicked")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits { max_texts: 3, max_text_chars: 10, ..Limits::default() }
    }

    fn check(json: &str) -> Result<Request, ApiError> {
        validate(parse_json(json.as_bytes())?, &limits())
    }

    #[track_caller]
    fn rejected(json: &str, status: u16, code: &str, needle: &str) {
        let error = check(json).expect_err(json);
        assert_eq!((error.status, error.code), (status, code), "{json}: {error:?}");
        assert!(error.message.contains(needle), "{json}: {error:?} lacks {needle:?}");
    }

    #[test]
    fn requests_are_texts_or_a_document() {
        let request = check(r#"{"texts": ["a", "b"], "id": 7}"#).expect("texts");
        assert_eq!(request.work, Work::Texts(vec!["a".into(), "b".into()]));
        assert_eq!(request.id, Some(serde_json::json!(7)));
        let request =
            check(r#"{"document": "Article 1\nThe Party shall act.\nArticle 2\nIt may refuse."}"#).expect("document");
        let Work::Document { provisions } = request.work else { panic!("not a document") };
        let ids: Vec<&str> = provisions.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["document:art1", "document:art2"]);
        let request = check(r#"{"document": "Article 1\nText.", "name": "cc"}"#).expect("named");
        assert!(matches!(&request.work, Work::Document { provisions } if provisions[0].id == "cc:art1"));
        assert_eq!(check(r#"{"texts": []}"#).expect("empty").work, Work::Texts(vec![]));
        // Characters, not bytes: ten accented letters are within ten.
        assert!(check(r#"{"texts": ["éééééééééé"]}"#).is_ok());
    }

    #[test]
    fn malformed_requests_name_the_field() {
        rejected("{\"texts\": [\"a\"", 400, "invalid_json", "line 1 column");
        rejected("  ", 400, "invalid_json", "empty");
        rejected("[1]", 400, "invalid_request", "got a list");
        rejected(r#"{"text": ["a"]}"#, 400, "unknown_field", "field `text`");
        rejected(r#"{}"#, 400, "missing_field", "`texts`");
        rejected(r#"{"texts": ["a"], "document": "b"}"#, 400, "invalid_request", "not both");
        rejected(
            r#"{"texts": "a"}"#,
            400,
            "invalid_request",
            "field `texts`: expected a list of strings, got a string",
        );
        rejected(r#"{"texts": ["a", 3]}"#, 400, "invalid_request", "field `texts[1]`: expected a string, got a number");
        rejected(r#"{"texts": ["a"], "name": "n"}"#, 400, "invalid_request", "field `name`");
        rejected(r#"{"document": 1}"#, 400, "invalid_request", "field `document`");
        rejected(r#"{"document": "x", "name": " "}"#, 400, "invalid_request", "field `name`");
        rejected(r#"{"texts": ["a", "b", "c", "d"]}"#, 413, "too_many_texts", "4 texts; at most 3");
        rejected(r#"{"texts": ["a", "01234567890"]}"#, 413, "text_too_long", "`texts[1]`: 11 characters");
        let four = "Article 1\nA.\nArticle 2\nB.\nArticle 3\nC.\nArticle 4\nD.";
        rejected(&serde_json::json!({ "document": four }).to_string(), 413, "too_many_texts", "4 provisions");
        assert_eq!(
            String::from_utf8(ApiError::invalid("x").to_json(Some(&serde_json::json!("r1")))).expect("utf8"),
            r#"{"id":"r1","error":{"code":"invalid_request","message":"x"}}"#
        );
    }

    #[test]
    fn request_heads_parse_with_their_framing() {
        let head =
            parse_head(b"POST /v1/classify?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\nExpect: 100-continue")
                .expect("head");
        assert_eq!(head.path, "/v1/classify");
        assert_eq!(head.content_length, Some(12));
        assert!(head.keep_alive && head.expect_continue && !head.transfer_encoding);
        let head = parse_head(b"GET /healthz HTTP/1.0").expect("1.0");
        assert!(!head.keep_alive);
        let head = parse_head(b"GET /healthz HTTP/1.0\nConnection: Keep-Alive").expect("1.0 keep-alive");
        assert!(head.keep_alive);
        let head = parse_head(b"GET / HTTP/1.1\r\nConnection: close").expect("close");
        assert!(!head.keep_alive);
        assert!(parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked").expect("te").transfer_encoding);
        let status = |bytes: &[u8]| parse_head(bytes).expect_err("bad").status;
        assert_eq!(status(b"GARBAGE"), 400);
        assert_eq!(status(b"GET /a b HTTP/1.1"), 400);
        assert_eq!(status(b"GET / HTTP/2.0"), 505);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: -1"), 400);
        assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nNoColon"), 400);
        let many = format!("GET / HTTP/1.1{}", "\r\nX: y".repeat(MAX_HEADERS + 1));
        assert_eq!(status(many.as_bytes()), 431);
        let huge = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999").expect("huge");
        assert_eq!(huge.content_length, Some(usize::MAX));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\n{}", 0), Some((21, 24)));
        assert_eq!(head_end(b"GET / HTTP/1.1\nA: b\n\n{}", 0), Some((19, 21)));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn routes_answer_404_and_405() {
        assert_eq!(route("POST", "/v1/classify").ok(), Some(Route::Classify));
        assert_eq!(route("HEAD", "/healthz").ok(), Some(Route::Health));
        let reply = route("GET", "/v1/classify").expect_err("405");
        assert_eq!((reply.status, reply.allow), (405, Some("POST")));
        assert_eq!(route("GET", "/v2/classify").expect_err("404").status, 404);
    }

    #[test]
    fn stdio_lines_are_bounded() {
        let mut input: &[u8] = b"{\"a\": 1}\r\n0123456789abc\n\nlast";
        let mut read = || read_line_bounded(&mut input, 10).expect("read");
        assert_eq!(read(), Line::Text(b"{\"a\": 1}".to_vec()));
        assert_eq!(read(), Line::TooLong(13));
        assert_eq!(read(), Line::Text(Vec::new()));
        assert_eq!(read(), Line::Text(b"last".to_vec()));
        assert_eq!(read(), Line::Eof);
    }

    #[test]
    fn warns_when_not_on_loopback() {
        let address = |s: &str| s.parse::<SocketAddr>().expect("address");
        assert_eq!(exposure_warning(address("127.0.0.1:8080")), None);
        assert_eq!(exposure_warning(address("[::1]:8080")), None);
        let warning = exposure_warning(address("0.0.0.0:8080")).expect("warning");
        assert!(warning.starts_with("warning: listening on 0.0.0.0:8080") && warning.contains("loopback"));
        assert_eq!(wake_address(address("0.0.0.0:5")), address("127.0.0.1:5"));
        assert_eq!(wake_address(address("[::]:5")), address("[::1]:5"));
    }

    /// Scores each text by its length; fails on "boom"; optionally blocks
    /// each batch until released, to fill the queue on purpose.
    struct Fake {
        batches: Arc<Mutex<Vec<usize>>>,
        gate: Option<(SyncSender<()>, Receiver<()>)>,
    }

    impl Scorer for Fake {
        fn score(&mut self, texts: &[&str], _batch_size: usize) -> Result<Vec<Vec<f32>>, String> {
            self.batches.lock().expect("lock").push(texts.len());
            if let Some((started, release)) = &self.gate {
                let _ = started.send(());
                let _ = release.recv();
            }
            if texts.contains(&"boom") {
                return Err("boom".into());
            }
            Ok(texts.iter().map(|t| vec![t.len() as f32 / 10.0, 0.5]).collect())
        }
    }

    fn fake() -> (Fake, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        (Fake { batches: Arc::clone(&batches), gate: None }, batches)
    }

    fn texts(list: &[&str]) -> Arc<Vec<String>> {
        Arc::new(list.iter().map(|s| s.to_string()).collect())
    }

    fn model() -> ModelInfo {
        let label = |name: &str| ModelLabel { name: name.into(), description: format!("{name} words"), threshold: 0.5 };
        ModelInfo { name: "m".into(), labels: vec![label("long"), label("half")], thresholds: vec![0.3, 0.5] }
    }

    #[test]
    fn batches_join_jobs_up_to_max_batch_and_reply_to_each() {
        let queue =
            Queue::new(&Limits { max_batch: 4, queue_texts: 100, max_wait: Duration::ZERO, ..Limits::default() });
        let one = queue.submit(texts(&["a", "bb"]), false).expect("one");
        let two = queue.submit(texts(&["ccc", "boom", "e"]), false).expect("two");
        let three = queue.submit(texts(&["ffff"]), false).expect("three");
        assert_eq!(queue.queued_texts(), 6);
        let (mut scorer, batches) = fake();
        let first = queue.next_batch().expect("batch");
        assert_eq!(first.len(), 2, "2 texts, then 3 more reach max_batch");
        score_jobs(&mut scorer, first, 4);
        let second = queue.next_batch().expect("batch");
        score_jobs(&mut scorer, second, 4);
        assert_eq!(*batches.lock().expect("lock"), [5, 2, 3, 1], "the failed batch is retried job by job");
        assert_eq!(one.recv().expect("one"), Ok(vec![vec![0.1, 0.5], vec![0.2, 0.5]]));
        assert_eq!(two.recv().expect("two").expect_err("boom").status, 500);
        assert_eq!(three.recv().expect("three"), Ok(vec![vec![0.4, 0.5]]));
        queue.close();
        assert!(queue.next_batch().is_none());
        assert_eq!(queue.submit(texts(&["a"]), false).expect_err("closed"), SubmitError::Closed);
    }

    #[test]
    fn a_full_queue_refuses_or_waits() {
        let queue = Queue::new(&Limits { queue_texts: 3, max_batch: 8, max_wait: Duration::ZERO, ..Limits::default() });
        let _a = queue.submit(texts(&["a", "b"]), false).expect("a");
        assert_eq!(queue.submit(texts(&["c", "d"]), false).expect_err("full"), SubmitError::Full);
        let _c = queue.submit(texts(&["c"]), false).expect("fits");
        let queue = Arc::new(queue);
        let waiter = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || queue.submit(texts(&["d", "e"]), true).map(|_| ()))
        };
        assert_eq!(queue.next_batch().map(|jobs| jobs.len()), Some(2));
        assert_eq!(waiter.join().expect("join"), Ok(()));
        assert_eq!(queue.queued_texts(), 2);
        // A job larger than the whole queue is taken when the queue is empty.
        let big = Queue::new(&Limits { queue_texts: 1, ..Limits::default() });
        assert!(big.submit(texts(&["a", "b"]), false).is_ok());
    }

    #[test]
    fn responses_have_records_in_request_order() {
        let (scorer, _) = fake();
        let service = Service::start(Box::new(scorer), model(), Limits::default()).expect("start");
        let request = validate(serde_json::json!({"texts": ["abcd", "a"], "id": "x"}), &service.limits).expect("ok");
        let body = service.answer(service.submit(request, false).expect("submit")).expect("answer");
        let value: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value["id"], "x");
        assert_eq!(value["model"], "m");
        assert_eq!(value["labels"], serde_json::json!(["long", "half"]));
        assert_eq!(value["results"][0]["index"], 0);
        assert_eq!(value["results"][0]["labels"], serde_json::json!(["long", "half"]));
        assert_eq!(value["results"][1]["labels"], serde_json::json!(["half"]));
        let text = String::from_utf8(body).expect("utf8");
        assert!(text.contains(r#""scores":{"long":0.4,"half":0.5}"#), "{text}");
        let document = validate(
            serde_json::json!({"document": "Article 3 – Title\n1. Abc.\n2. De.", "name": "d"}),
            &service.limits,
        )
        .expect("document");
        let body = service.answer(service.submit(document, false).expect("submit")).expect("answer");
        let value: Value = serde_json::from_slice(&body).expect("json");
        let first = &value["results"][0];
        let fields: Vec<&str> = first.as_object().expect("object").keys().map(String::as_str).collect();
        let mut expected =
            ["id", "document", "article", "paragraph", "title", "text", "labels", "scores", "start", "end", "line"];
        expected.sort_unstable();
        assert_eq!(fields, expected);
        assert_eq!(
            (first["id"].as_str(), first["text"].as_str(), first["line"].as_u64()),
            (Some("d:art3.1"), Some("Abc."), Some(2))
        );
        assert_eq!(value["results"][1]["paragraph"], "2");
        service.stop();
        assert_eq!(
            service
                .submit(validate(serde_json::json!({"texts": ["a"]}), &service.limits).expect("ok"), false)
                .expect_err("stopped")
                .code,
            "stopping"
        );
    }

    /// A server on an ephemeral port with a fake model, for exchanges that
    /// the binary's tests cannot make quickly (timeouts) or deterministically
    /// (a full queue).
    struct TestServer {
        address: SocketAddr,
        shutdown: Arc<Shutdown>,
        thread: Option<JoinHandle<io::Result<()>>>,
        service: Arc<Service>,
    }

    impl TestServer {
        fn start(scorer: Fake, limits: Limits) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            let address = listener.local_addr().expect("address");
            let service = Service::start(Box::new(scorer), model(), limits).expect("start");
            let shutdown = Shutdown::new();
            let thread = {
                let (service, shutdown) = (Arc::clone(&service), Arc::clone(&shutdown));
                std::thread::spawn(move || serve_http(listener, service, shutdown))
            };
            Self { address, shutdown, thread: Some(thread), service }
        }

        fn connect(&self) -> TcpStream {
            let stream = TcpStream::connect(self.address).expect("connect");
            stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
            stream
        }

        fn stop(mut self) {
            self.shutdown.trigger();
            if let Some(thread) = self.thread.take() {
                thread.join().expect("join").expect("serve");
            }
            self.service.stop();
        }
    }

    /// Status, headers (lower-case names) and body of the next response.
    fn response(stream: &mut TcpStream) -> (u16, Vec<(String, String)>, String) {
        let mut bytes = Vec::new();
        let mut byte = [0u8; 1];
        while !bytes.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).expect("read head");
            assert_eq!(n, 1, "connection closed mid-head: {:?}", String::from_utf8_lossy(&bytes));
            bytes.push(byte[0]);
        }
        let head = String::from_utf8(bytes).expect("utf8");
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        let length: usize =
            headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().expect("length"));
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).expect("body");
        (status, headers, String::from_utf8(body).expect("utf8"))
    }

    /// Longer than anything here takes, short of a hang.
    const PATIENCE: Duration = Duration::from_secs(60);

    fn post(body: &str) -> String {
        format!("POST /v1/classify HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn keep_alive_pipelining_slow_clients_and_a_full_queue() {
        let (mut scorer, _) = fake();
        let (started_tx, started) = sync_channel(8);
        let (release, release_rx) = sync_channel(8);
        scorer.gate = Some((started_tx, release_rx));
        let limits = Limits {
            queue_texts: 2,
            max_batch: 1,
            max_wait: Duration::ZERO,
            client_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let server = TestServer::start(scorer, limits);

        // Two pipelined requests on one connection, answered in order.
        let mut stream = server.connect();
        let two = format!("{}{}", post(r#"{"texts": ["abc"]}"#), "GET /healthz HTTP/1.1\r\n\r\n");
        stream.write_all(two.as_bytes()).expect("write");
        started.recv_timeout(PATIENCE).expect("batch started");
        release.send(()).expect("release");
        let (status, _, body) = response(&mut stream);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""text":"abc""#), "{body}");
        let (status, headers, body) = response(&mut stream);
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains(&("connection".into(), "keep-alive".into())), "{headers:?}");

        // Hold the model with one request, fill the queue with another: the
        // third gets 503 with Retry-After, and the others still succeed.
        let mut holding = server.connect();
        holding.write_all(post(r#"{"texts": ["a"]}"#).as_bytes()).expect("write");
        started.recv_timeout(PATIENCE).expect("batch started");
        let mut queued = server.connect();
        queued.write_all(post(r#"{"texts": ["b", "c"]}"#).as_bytes()).expect("write");
        // Wait (by asking, not sleeping) until those two texts are queued.
        let mut probe = server.connect();
        loop {
            probe.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").expect("write");
            let (_, _, body) = response(&mut probe);
            let health: Value = serde_json::from_str(&body).expect("json");
            if health["queued_texts"] == 2 {
                break;
            }
            std::thread::yield_now();
        }
        let mut refused = server.connect();
        refused.write_all(post(r#"{"texts": ["d"]}"#).as_bytes()).expect("write");
        let (status, headers, body) = response(&mut refused);
        assert_eq!(status, 503, "{body}");
        assert!(headers.contains(&("retry-after".into(), "1".into())), "{headers:?}");
        assert!(body.contains("overloaded"), "{body}");
        for _ in 0..3 {
            release.send(()).expect("release");
        }
        assert_eq!(response(&mut holding).0, 200);
        assert_eq!(response(&mut queued).0, 200);

        // A client that sends half a request and stalls gets 408.
        let mut slow = server.connect();
        slow.write_all(b"POST /v1/classify HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"te").expect("write");
        let (status, headers, body) = response(&mut slow);
        assert_eq!(status, 408, "{body}");
        assert!(headers.contains(&("connection".into(), "close".into())));
        // Chunked bodies are refused.
        let mut chunked = server.connect();
        chunked
            .write_all(b"POST /v1/classify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .expect("w");
        assert_eq!(response(&mut chunked).0, 411);
        drop(release);
        server.stop();
    }

    #[test]
    fn connections_over_the_limit_get_503() {
        let (scorer, _) = fake();
        let server = TestServer::start(scorer, Limits { max_connections: 1, ..Limits::default() });
        let mut first = server.connect();
        first.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").expect("write");
        assert_eq!(response(&mut first).0, 200);
        let mut second = server.connect();
        let (status, headers, body) = response(&mut second);
        assert_eq!(status, 503, "{body}");
        assert!(headers.contains(&("retry-after".into(), "1".into())));
        drop(first);
        server.stop();
    }
}
