//! A load generator for `clause serve --http`.
//!
//! Workers send `POST /v1/classify` requests of mixed sizes on keep-alive
//! connections and time each one; a request counts as served only when it
//! gets 200 with one result per text. Alongside them, misbehaving clients
//! (oversized bodies, malformed requests, clients too slow to finish their
//! request) run for as long as the load does, to show that they are turned
//! away without harming anyone else.
//!
//! std-only on purpose: an HTTP client crate would pull an async runtime into
//! the workspace for a few hundred lines of blocking I/O.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Texts per request and how often each size is drawn (in hundredths):
/// mostly single provisions, sometimes a chapter's worth.
pub const SIZES: [(usize, u64); 4] = [(1, 60), (4, 30), (16, 8), (64, 2)];

/// Errors that stop a load run before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No texts to send.
    #[error("no texts to send")]
    NoTexts,
    /// The server could not be reached at all.
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// The address tried.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub address: SocketAddr,
    /// Requests to send in all.
    pub requests: usize,
    /// Requests in flight at once (one connection each).
    pub concurrency: usize,
    /// Texts to draw requests from.
    pub texts: Vec<String>,
    /// Seed of the draw of sizes and texts.
    pub seed: u64,
    /// Run the misbehaving clients alongside.
    pub abusers: bool,
    /// Body size of the oversized requests; above the server's limit.
    pub oversized_bytes: usize,
    /// How long a client waits for a response before counting an error.
    pub timeout: Duration,
    /// A flood: 503 with Retry-After (the server's queue or connection limit
    /// is full) counts as turned away, not as failed.
    pub flood: bool,
}

/// What a misbehaving client of one kind got back.
#[derive(Debug, Clone, Default)]
pub struct Abuse {
    /// Attempts made.
    pub attempts: usize,
    /// Responses by status.
    pub statuses: BTreeMap<u16, usize>,
    /// Attempts that ended without a response (connection reset, timeout).
    pub no_response: usize,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Requests sent.
    pub requests: usize,
    /// Of those, answered 200 with one result per text.
    pub served: usize,
    /// Answered 503 with Retry-After in a flood.
    pub turned_away: usize,
    /// Responses by status.
    pub statuses: BTreeMap<u16, usize>,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// Failed requests in all.
    pub failed: usize,
    /// Texts in the requests served.
    pub texts: usize,
    /// Connections opened again after the server closed an idle one.
    pub reconnects: usize,
    /// Wall time of the load.
    pub elapsed: Duration,
    /// Latencies of served requests, sorted.
    pub latencies: Vec<Duration>,
    /// Misbehaving clients by kind: `oversized`, `malformed`, `slow`.
    pub abuse: BTreeMap<&'static str, Abuse>,
}

impl Report {
    /// The latency below which a fraction `q` of served requests fall.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}

/// splitmix64: a seeded draw, so that a run can be repeated request for
/// request.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The texts of request `index`.
pub fn request_texts(plan: &Plan, index: usize) -> Vec<&str> {
    let draw = mix(plan.seed ^ mix(index as u64));
    let mut roll = draw % 100;
    let mut size = SIZES[SIZES.len() - 1].0;
    for (candidate, share) in SIZES {
        if roll < share {
            size = candidate;
            break;
        }
        roll -= share;
    }
    (0..size).map(|k| plan.texts[(mix(draw ^ k as u64) % plan.texts.len() as u64) as usize].as_str()).collect()
}

fn classify_body(texts: &[&str]) -> Vec<u8> {
    serde_json::json!({ "texts": texts }).to_string().into_bytes()
}

fn post_head(length: usize) -> String {
    format!(
        "POST /v1/classify HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// One response: status, whether the server will close, body.
struct Answer {
    status: u16,
    close: bool,
    retry_after: bool,
    body: Vec<u8>,
}

/// Read one response framed by Content-Length; `Ok(None)` when the
/// connection was closed before its first byte.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Answer>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let status = line.split(' ').nth(1).and_then(|s| s.trim().parse::<u16>().ok()).ok_or_else(|| bad("status line"))?;
    let (mut length, mut close, mut retry_after) = (0usize, false, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed in the response head"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().map_err(|_| bad("Content-Length"))?;
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                close = true;
            } else if name.eq_ignore_ascii_case("retry-after") {
                retry_after = true;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Answer { status, close, retry_after, body }))
}

fn connect(address: SocketAddr, timeout: Duration) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// A keep-alive client.
struct Client {
    address: SocketAddr,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
    reconnects: usize,
}

impl Client {
    fn send(&mut self, request: &[u8]) -> std::io::Result<Answer> {
        // A connection that was already used may have been closed by the
        // server as idle; then, and only before any response byte, the
        // request goes once more on a fresh connection.
        let reused = self.connection.is_some();
        match self.try_send(request) {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) if reused => {
                self.reconnects += 1;
                self.connection = None;
                self.try_send(request)?
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without a response"))
            }
            Ok(None) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without a response")),
            Err(err) => {
                self.connection = None;
                Err(err)
            }
        }
    }

    fn try_send(&mut self, request: &[u8]) -> std::io::Result<Option<Answer>> {
        if self.connection.is_none() {
            self.connection = Some(connect(self.address, self.timeout)?);
        }
        let connection = self.connection.as_mut().ok_or_else(|| std::io::Error::other("not connected"))?;
        connection.get_mut().write_all(request)?;
        let answer = read_answer(connection)?;
        if answer.as_ref().is_none_or(|a| a.close) {
            self.connection = None;
        }
        Ok(answer)
    }
}

/// Check a 200 answer: one result per text sent.
fn check(answer: &Answer, texts: usize) -> Result<(), String> {
    if answer.status != 200 {
        return Err(format!("status {}: {}", answer.status, String::from_utf8_lossy(&answer.body)));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|err| format!("response is not JSON: {err}"))?;
    match value["results"].as_array() {
        Some(results) if results.len() == texts => Ok(()),
        Some(results) => Err(format!("{} results for {texts} texts", results.len())),
        None => Err("response without `results`".to_string()),
    }
}

#[derive(Default)]
struct Tally {
    served: usize,
    turned_away: usize,
    failed: usize,
    failures: Vec<String>,
    statuses: BTreeMap<u16, usize>,
    texts: usize,
    reconnects: usize,
    latencies: Vec<Duration>,
}

/// Run the load of `plan` and report.
pub fn run(plan: &Plan) -> Result<Report, Error> {
    if plan.texts.is_empty() {
        return Err(Error::NoTexts);
    }
    connect(plan.address, plan.timeout).map_err(|source| Error::Connect { address: plan.address, source })?;
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let tally = Mutex::new(Tally::default());
    let abuse: Mutex<BTreeMap<&'static str, Abuse>> = Mutex::new(BTreeMap::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        let abusers: Vec<_> = if plan.abusers {
            ABUSERS
                .iter()
                .flat_map(|&(kind, clients)| std::iter::repeat_n(kind, clients))
                .map(|kind| {
                    let (done, abuse) = (&done, &abuse);
                    scope.spawn(move || misbehave(plan, kind, done, abuse))
                })
                .collect()
        } else {
            Vec::new()
        };
        let workers: Vec<_> = (0..plan.concurrency.max(1)).map(|_| scope.spawn(|| work(plan, &next, &tally))).collect();
        for worker in workers {
            // A worker that panicked lost its requests; they count as failed below.
            let _ = worker.join();
        }
        done.store(true, Ordering::SeqCst);
        for abuser in abusers {
            let _ = abuser.join();
        }
    });
    let elapsed = started.elapsed();
    let mut tally = tally.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    tally.latencies.sort();
    let unaccounted = plan.requests.saturating_sub(tally.served + tally.turned_away + tally.failed);
    Ok(Report {
        requests: plan.requests,
        served: tally.served,
        turned_away: tally.turned_away,
        statuses: tally.statuses,
        failures: tally.failures,
        failed: tally.failed + unaccounted,
        texts: tally.texts,
        reconnects: tally.reconnects,
        elapsed,
        latencies: tally.latencies,
        abuse: abuse.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()),
    })
}

fn work(plan: &Plan, next: &AtomicUsize, tally: &Mutex<Tally>) {
    let mut client = Client { address: plan.address, timeout: plan.timeout, connection: None, reconnects: 0 };
    loop {
        let index = next.fetch_add(1, Ordering::SeqCst);
        if index >= plan.requests {
            break;
        }
        let texts = request_texts(plan, index);
        let body = classify_body(&texts);
        let mut request = post_head(body.len()).into_bytes();
        request.extend_from_slice(&body);
        let sent = Instant::now();
        let outcome = client.send(&request);
        let latency = sent.elapsed();
        let mut tally = tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let result = match &outcome {
            Ok(answer) => {
                *tally.statuses.entry(answer.status).or_default() += 1;
                check(answer, texts.len())
            }
            Err(err) => Err(format!("no response: {err}")),
        };
        let busy = outcome.as_ref().is_ok_and(|answer| answer.status == 503 && answer.retry_after);
        match result {
            Err(_) if plan.flood && busy => tally.turned_away += 1,
            Ok(()) => {
                tally.served += 1;
                tally.texts += texts.len();
                tally.latencies.push(latency);
            }
            Err(failure) => {
                tally.failed += 1;
                if tally.failures.len() < 5 {
                    tally.failures.push(format!("request {index} ({} texts): {failure}", texts.len()));
                }
            }
        }
    }
    tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).reconnects += client.reconnects;
}

/// How long an oversized or malformed client waits between attempts.
const ABUSE_PAUSE: Duration = Duration::from_millis(10);

/// Kinds of misbehaving client and how many of each run at once.
const ABUSERS: [(&str, usize); 3] = [("oversized", 1), ("malformed", 1), ("slow", 8)];

const MALFORMED: [&[u8]; 5] = [
    b"GARBAGE\r\n\r\n",
    b"POST /v1/classify HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"texts\":",
    b"POST /v1/classify HTTP/1.1\r\nContent-Length: 12\r\n\r\n{\"texts\": 5}",
    b"POST /v1/classify HTTP/1.1\r\nContent-Length: nine\r\n\r\n",
    b"POST /v1/classify HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
];

/// One misbehaving client: the same kind of bad request, on a fresh
/// connection each time, until the load is done.
fn misbehave(plan: &Plan, kind: &'static str, done: &AtomicBool, abuse: &Mutex<BTreeMap<&'static str, Abuse>>) {
    let mut attempt = 0usize;
    while !done.load(Ordering::SeqCst) {
        let answer = (|| -> std::io::Result<Option<Answer>> {
            let mut connection = connect(plan.address, plan.timeout)?;
            match kind {
                "oversized" => {
                    // The head announces the size; a server should refuse on
                    // the head alone, so only a part of the body is sent.
                    connection.get_mut().write_all(post_head(plan.oversized_bytes).as_bytes())?;
                    let _ = connection.get_mut().write_all(&vec![b' '; plan.oversized_bytes.min(64 * 1024)]);
                }
                "malformed" => connection.get_mut().write_all(MALFORMED[attempt % MALFORMED.len()])?,
                _ => {
                    // A byte of the head every 250 ms, never finishing it.
                    for byte in
                        b"POST /v1/classify HTTP/1.1\r\nHost: slow\r\nX-Slow: ".iter().chain([b'x'; 4096].iter())
                    {
                        if done.load(Ordering::SeqCst) || connection.get_mut().write_all(&[*byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
            }
            read_answer(&mut connection)
        })();
        attempt += 1;
        if kind != "slow" {
            // Misbehaving, not a denial of service: that is the flood's part.
            std::thread::sleep(ABUSE_PAUSE);
        }
        let mut abuse = abuse.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = abuse.entry(kind).or_default();
        entry.attempts += 1;
        match answer {
            Ok(Some(answer)) => *entry.statuses.entry(answer.status).or_default() += 1,
            _ if done.load(Ordering::SeqCst) && kind == "slow" => entry.attempts -= 1,
            _ => entry.no_response += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(texts: usize) -> Plan {
        Plan {
            address: SocketAddr::from(([127, 0, 0, 1], 9)),
            requests: 0,
            concurrency: 1,
            texts: (0..texts).map(|i| format!("text {i}")).collect(),
            seed: 7,
            abusers: false,
            oversized_bytes: 0,
            timeout: Duration::from_secs(1),
            flood: false,
        }
    }

    #[test]
    fn request_sizes_follow_the_mix_and_repeat_with_the_seed() {
        let plan = plan(50);
        let sizes: Vec<usize> = (0..10_000).map(|i| request_texts(&plan, i).len()).collect();
        for (size, share) in SIZES {
            let drawn = sizes.iter().filter(|&&s| s == size).count() as f64 / 100.0;
            assert!((drawn - share as f64).abs() < 2.0, "size {size}: {drawn}% drawn, {share}% expected");
        }
        assert_eq!(request_texts(&plan, 123), request_texts(&plan, 123));
        let other = Plan { seed: 8, ..plan.clone() };
        assert_ne!(
            (0..20).map(|i| request_texts(&plan, i)).collect::<Vec<_>>(),
            (0..20).map(|i| request_texts(&other, i)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn percentiles_are_ranks_of_the_sorted_latencies() {
        let report = Report {
            requests: 100,
            served: 100,
            turned_away: 0,
            statuses: BTreeMap::new(),
            failures: Vec::new(),
            failed: 0,
            texts: 0,
            reconnects: 0,
            elapsed: Duration::ZERO,
            latencies: (1..=100).map(Duration::from_millis).collect(),
            abuse: BTreeMap::new(),
        };
        assert_eq!(report.percentile(0.5), Duration::from_millis(50));
        assert_eq!(report.percentile(0.99), Duration::from_millis(99));
        assert_eq!(report.percentile(1.0), Duration::from_millis(100));
    }

    #[test]
    fn a_run_without_texts_or_server_is_an_error() {
        assert!(matches!(run(&plan(0)), Err(Error::NoTexts)));
        assert!(matches!(run(&plan(3)), Err(Error::Connect { .. })));
    }
}
