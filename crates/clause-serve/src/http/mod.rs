//! The HTTP/1.1 subset, over `std::net`: request heads, routes, bodies,
//! keep-alive and pipelining, one thread per connection.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::IDLE_POLL;
use crate::api::ApiError;
use crate::service::Service;

/// Bytes of a request line and headers at most (431 beyond).
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Headers per request at most (431 beyond).
const MAX_HEADERS: usize = 64;

/// How long a connection closed with unread input keeps reading (and
/// discarding) it, so that the client sees the error response rather than a
/// reset.
const LINGER: Duration = Duration::from_secs(2);

/// Stack of a connection thread: request parsing is shallow (serde_json
/// stops at 128 levels of nesting), and many threads may exist at once.
const CONNECTION_STACK: usize = 512 * 1024;

/// Seconds a client is told to wait when the queue is full.
const RETRY_AFTER_SECS: u32 = 1;

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
pub struct Reply {
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
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        self.allow
    }

    /// The JSON body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

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
pub fn head_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
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
pub struct Head {
    /// The method, ASCII letters as sent.
    pub method: String,
    /// The target without its query string.
    pub path: String,
    /// The `Content-Length`, if given (`usize::MAX` when it is larger).
    pub content_length: Option<usize>,
    /// A `Transfer-Encoding` header (chunked bodies are not supported).
    pub transfer_encoding: bool,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// Parse a request head (request line and headers, without the blank line
/// that ends it, as [`head_end`] finds it); a malformed head gets the 4xx (or
/// 505) to answer it with.
pub fn parse_head(bytes: &[u8]) -> Result<Head, ApiError> {
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
pub enum Route {
    /// `POST /v1/classify`.
    Classify,
    /// `GET /v1/labels`.
    Labels,
    /// `GET /healthz`.
    Health,
}

/// The route of `path`, or 404; then 405 unless `method` is one it takes.
pub fn route(method: &str, path: &str) -> Result<Route, Reply> {
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

#[cfg(test)]
mod tests;
