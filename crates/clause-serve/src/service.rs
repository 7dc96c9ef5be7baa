//! The model behind a bounded queue: one inference thread takes queued jobs
//! together into batches and replies to each through its own channel.

use std::collections::VecDeque;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clause_eval::decision::flagged;
use clause_infer::classifier::{BatchPlan, Classifier, ModelLabel};
use clause_infer::input::{Passage, Unit};
use clause_read::Draft;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::api::{ApiError, Limits, Located, Request, Work, parse_json, to_json, validate};

/// What responses say about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The model's name (its directory's name).
    pub name: String,
    /// Labels in output order.
    pub labels: Vec<ModelLabel>,
    /// Decision thresholds in label order (the model's, or the override).
    pub thresholds: Vec<f32>,
    /// What the model was trained on: a model trained on sentences gets a
    /// document's sentences, not its provisions.
    pub unit: Unit,
}

/// One text waiting for the model, with the headings a document's provision
/// has (the model reads them when it was trained with them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedText {
    /// The text that is classified.
    pub text: String,
    /// Its article's title.
    pub title: Option<String>,
    /// The division headings above it.
    pub chapter: Option<String>,
}

impl QueuedText {
    /// A bare text.
    pub fn bare(text: String) -> Self {
        Self { text, title: None, chapter: None }
    }

    /// The text and headings as the model reads them.
    pub fn passage(&self) -> Passage<'_> {
        Passage { text: &self.text, title: self.title.as_deref(), chapter: self.chapter.as_deref() }
    }
}

/// Something that turns passages into every label's probability: the
/// classifier, or a fake in tests.
pub trait Scorer: Send {
    /// Probabilities of `passages`, in their order, `batch_size` sequences
    /// per forward pass.
    fn score(&mut self, passages: &[Passage<'_>], batch_size: usize) -> Result<Vec<Vec<f32>>, String>;
}

impl Scorer for Classifier {
    fn score(&mut self, passages: &[Passage<'_>], batch_size: usize) -> Result<Vec<Vec<f32>>, String> {
        // Read as every other command reads (headings, windows, sentences,
        // calibration). Length buckets cost nothing in results (padding does
        // not change the logits) and save compute when requests mix short
        // and long texts.
        self.predict_passages(passages, BatchPlan { batch_size, by_length: true }, &mut |_| {})
            .map_err(|err| err.to_string())
    }
}

/// The model's answer to one job.
type Scored = Result<Vec<Vec<f32>>, ApiError>;

/// Texts of one request, waiting for the model.
struct Job {
    texts: Arc<Vec<QueuedText>>,
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
    fn submit(&self, texts: Arc<Vec<QueuedText>>, wait: bool) -> Result<Receiver<Scored>, SubmitError> {
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
    let texts: Vec<Passage<'_>> = jobs.iter().flat_map(|j| j.texts.iter().map(QueuedText::passage)).collect();
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
    pub(crate) limits: Limits,
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
    pub(crate) id: Option<Value>,
    work: Work,
    texts: Arc<Vec<QueuedText>>,
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
        let texts: Vec<QueuedText> = match &mut work {
            Work::Texts(texts) => std::mem::take(texts).into_iter().map(QueuedText::bare).collect(),
            // The provisions keep their texts for the answer; the model gets
            // them with their headings, and reads those it was trained to.
            Work::Document { draft, records } => {
                if self.model.unit == Unit::Sentence {
                    *records = sentences(draft, records);
                    if records.len() > self.limits.max_texts {
                        return Err(ApiError::new(
                            413,
                            "too_many_texts",
                            format!(
                                "the document has {} sentences; at most {} per request (split the document)",
                                records.len(),
                                self.limits.max_texts
                            ),
                        ));
                    }
                }
                records
                    .iter()
                    .map(|r| QueuedText {
                        text: r.provision.text.clone(),
                        title: r.provision.title.clone(),
                        chapter: r.provision.chapter.clone(),
                    })
                    .collect()
            }
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
            flagged(row, &self.model.thresholds).into_iter().map(|i| names[i].as_str()).collect()
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
                        text: &text.text,
                        labels: labels(row),
                        scores: Scores { names, values: row },
                    })
                    .collect();
                to_json(&Response { id, model, labels: names, results })
            }
            Work::Document { records, .. } => {
                let results: Vec<ProvisionRecord<'_>> = records
                    .iter()
                    .zip(scores)
                    .map(|(r, row)| ProvisionRecord {
                        id: &r.provision.id,
                        document: &r.provision.document,
                        article: r.provision.article.as_deref(),
                        paragraph: r.provision.paragraph.as_deref(),
                        title: r.provision.title.as_deref(),
                        text: &r.provision.text,
                        labels: labels(row),
                        scores: Scores { names, values: row },
                        start: r.provision.start,
                        end: r.provision.end,
                        line: r.provision.line,
                        source: r.source.as_deref(),
                        provision: r.cut_from.as_deref(),
                    })
                    .collect();
                to_json(&Response { id, model, labels: names, results })
            }
        }
    }

    /// `POST /v1/classify`: parse, queue without waiting, answer.
    pub(crate) fn classify(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let request = validate(parse_json(body)?, &self.limits)?;
        let flight = self.submit(request, false)?;
        self.answer(flight)
    }

    /// `GET /v1/labels`.
    pub(crate) fn labels_json(&self) -> Vec<u8> {
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
    pub(crate) fn health(&self, stopping: bool) -> (u16, Vec<u8>) {
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
    /// Where it is in a file sent as base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    /// For a sentence, the provision it was cut from.
    #[serde(skip_serializing_if = "Option::is_none")]
    provision: Option<&'a str>,
}

/// A document's provisions cut into their sentences, for a model trained on
/// sentences, each naming the provision it came from.
fn sentences(draft: &Draft, records: &[Located]) -> Vec<Located> {
    records
        .iter()
        .flat_map(|record| {
            record.provision.sentences(draft.text()).into_iter().map(|sentence| Located {
                source: draft.source_at(sentence.start),
                cut_from: Some(record.provision.id.clone()),
                provision: sentence,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clause_infer::input::Context;

    /// Scores each text by its length; fails on "boom"; optionally blocks
    /// each batch until released, to fill the queue on purpose.
    pub(crate) struct Fake {
        pub(crate) batches: Arc<Mutex<Vec<usize>>>,
        pub(crate) gate: Option<(SyncSender<()>, Receiver<()>)>,
    }

    impl Scorer for Fake {
        fn score(&mut self, passages: &[Passage<'_>], _batch_size: usize) -> Result<Vec<Vec<f32>>, String> {
            // Read as a model trained with headings reads.
            let inputs: Vec<String> = passages.iter().map(|p| Context::Headings.compose(p).into_owned()).collect();
            let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
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

    pub(crate) fn fake() -> (Fake, Arc<Mutex<Vec<usize>>>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        (Fake { batches: Arc::clone(&batches), gate: None }, batches)
    }

    fn texts(list: &[&str]) -> Arc<Vec<QueuedText>> {
        Arc::new(list.iter().map(|s| QueuedText::bare(s.to_string())).collect())
    }

    pub(crate) fn model() -> ModelInfo {
        let label = |name: &str| ModelLabel {
            name: name.into(),
            description: format!("{name} words"),
            threshold: 0.5,
            calibration: None,
        };
        ModelInfo {
            name: "m".into(),
            labels: vec![label("long"), label("half")],
            thresholds: vec![0.3, 0.5],
            unit: Unit::Provision,
        }
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
    fn a_sentence_model_gets_a_pages_sentences_each_naming_its_provision() {
        use base64::Engine as _;
        let (scorer, _) = fake();
        let sentences = ModelInfo { unit: Unit::Sentence, ..model() };
        let limits = Limits { max_texts: 3, ..Limits::default() };
        let service = Service::start(Box::new(scorer), sentences, limits).expect("start");
        let page = "<html><body><h1>Terms</h1><p>We may change these terms at any time. You accept the new \
                    terms by using the service.</p><p>We may remove any content that we dislike.</p></body></html>";
        let request = |page: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(page);
            let json = serde_json::json!({"document_base64": encoded, "media_type": "text/html", "name": "tos"});
            validate(json, &service.limits).expect("document")
        };
        let body = service.answer(service.submit(request(page), false).expect("submit")).expect("answer");
        let value: Value = serde_json::from_slice(&body).expect("json");
        let results = value["results"].as_array().expect("results");
        let field = |name: &str| results.iter().map(|r| r[name].as_str().unwrap_or("-")).collect::<Vec<_>>();
        assert_eq!(field("id"), ["tos:preamble.s1", "tos:preamble.s2", "tos:preamble.s3"]);
        assert_eq!(field("text")[1], "You accept the new terms by using the service.");
        assert_eq!(field("provision"), ["tos:preamble"; 3]);
        assert_eq!(field("source"), ["body/p", "body/p", "body/p[2]"]);
        // The limit on texts counts sentences.
        let longer = page.replace("</body>", "<p>We may end your account whenever we like to.</p></body>");
        let error = service.submit(request(&longer), false).expect_err("four sentences");
        assert_eq!((error.status, error.code), (413, "too_many_texts"), "{error:?}");
        assert!(error.message.contains("4 sentences; at most 3"), "{error:?}");
        service.stop();
    }

    #[test]
    fn a_model_that_reads_headings_gets_them_and_the_answer_keeps_the_text() {
        let (scorer, _) = fake();
        let service = Service::start(Box::new(scorer), model(), Limits::default()).expect("start");
        let document =
            validate(serde_json::json!({"document": "Article 3 – Title\n1. Abc.", "name": "d"}), &service.limits)
                .expect("document");
        let body = service.answer(service.submit(document, false).expect("submit")).expect("answer");
        let value: Value = serde_json::from_slice(&body).expect("json");
        let first = &value["results"][0];
        assert_eq!(first["text"], "Abc.");
        // The fake scores the length of what it is given: "Title. Abc.".
        assert_eq!(first["scores"]["long"].as_f64().map(|s| (s * 10.0).round()), Some(11.0));
        // Bare texts have no headings to read.
        let bare = validate(serde_json::json!({"texts": ["Abc."]}), &service.limits).expect("texts");
        let body = service.answer(service.submit(bare, false).expect("submit")).expect("answer");
        let value: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value["results"][0]["scores"]["long"].as_f64().map(|s| (s * 10.0).round()), Some(4.0));
        service.stop();
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
}
