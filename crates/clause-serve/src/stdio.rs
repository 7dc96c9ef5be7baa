//! One JSON request per line of stdin, one response per line of stdout.

use std::io::{self, BufRead, Write};
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};

use crate::IDLE_POLL;
use crate::api::{ApiError, parse_json, request_id, validate};
use crate::http::Shutdown;
use crate::service::{InFlight, Service};

/// Lines of stdio requests read ahead of the one being answered.
const STDIO_PIPELINE: usize = 64;

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
        let mut first = true;
        loop {
            let mut line = read_line_bounded(input.as_mut(), max)?;
            // Files saved by Windows editors start with a byte-order mark,
            // which is no JSON; it can only come first.
            if std::mem::take(&mut first)
                && let Line::Text(bytes) = &mut line
                && bytes.starts_with(b"\xEF\xBB\xBF")
            {
                bytes.drain(..3);
            }
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
}
