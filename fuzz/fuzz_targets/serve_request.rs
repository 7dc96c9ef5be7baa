//! The server's request parsing on any bytes, as a connection receives them:
//! where the head ends (`head_end`), the head (`parse_head`), the route
//! (`route`), then the body as JSON (`parse_json`) and the request's shape
//! and limits (`validate`, which segments a `document`, and reads a
//! `document_base64` with the reader its `media_type` names). Errors are
//! 4xx/5xx answers, never panics.
#![no_main]

use std::time::Duration;

use clause_serve::{Limits, Work, head_end, parse_head, parse_json, route, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_texts: 16, max_text_chars: 200, max_wait: Duration::ZERO, ..Limits::default() };
    // Bytes after the head are the body; without a complete head, the whole
    // input is tried both as a head and as a body.
    let (head, body) = match head_end(data, 0) {
        Some((head, end)) => {
            assert!(head < end && end <= data.len(), "head {head}, end {end}, {} bytes", data.len());
            (&data[..head], &data[end..])
        }
        None => (data, data),
    };
    match parse_head(head) {
        Ok(parsed) => {
            assert!(parsed.path.starts_with('/'));
            assert!(!parsed.method.is_empty());
            if let Err(reply) = route(&parsed.method, &parsed.path) {
                assert!(matches!(reply.status(), 404 | 405), "{}", reply.status());
                assert!(serde_json::from_slice::<serde_json::Value>(reply.body()).is_ok());
            }
        }
        Err(error) => assert!(matches!(error.status, 400 | 431 | 505), "{error:?}"),
    }
    let value = match parse_json(body) {
        Ok(value) => value,
        Err(error) => {
            assert_eq!(error.status, 400);
            return;
        }
    };
    match validate(value, &limits) {
        Ok(request) => match request.work {
            Work::Texts(texts) => {
                assert!(texts.len() <= limits.max_texts);
                assert!(texts.iter().all(|t| t.chars().count() <= limits.max_text_chars));
            }
            Work::Document { records, .. } => assert!(records.len() <= limits.max_texts),
        },
        Err(error) => assert!(matches!(error.status, 400 | 413 | 415 | 422), "{error:?}"),
    }
});
