//! Tests of the HTTP front end.

use std::sync::mpsc::sync_channel;
use std::thread::JoinHandle;

use serde_json::Value;

use super::*;
use crate::api::Limits;
use crate::service::tests::{Fake, fake, model};

#[test]
fn request_heads_parse_with_their_framing() {
    let head = parse_head(b"POST /v1/classify?x=1 HTTP/1.1\r\nHost: a\r\ncontent-length: 12\r\nExpect: 100-continue")
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
fn warns_when_not_on_loopback() {
    let address = |s: &str| s.parse::<SocketAddr>().expect("address");
    assert_eq!(exposure_warning(address("127.0.0.1:8080")), None);
    assert_eq!(exposure_warning(address("[::1]:8080")), None);
    let warning = exposure_warning(address("0.0.0.0:8080")).expect("warning");
    assert!(warning.starts_with("warning: listening on 0.0.0.0:8080") && warning.contains("loopback"));
    assert_eq!(wake_address(address("0.0.0.0:5")), address("127.0.0.1:5"));
    assert_eq!(wake_address(address("[::]:5")), address("[::1]:5"));
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
