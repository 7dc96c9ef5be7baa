//! The server of `clause serve`: one loaded model answering JSON requests over HTTP or
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
//!
//! The pieces: [`validate`] and [`parse_json`] check requests ([`Limits`],
//! [`ApiError`]); a [`Service`] owns the [`Scorer`] and its queue;
//! [`serve_http`] (with [`parse_head`] and [`route`]) and [`serve_stdio`]
//! answer clients. This crate depends on `clause-infer` and the segmenter, never
//! on polars or the training code, so that a serving build stays small.

mod api;
mod http;
mod service;
mod stdio;

use std::time::Duration;

pub use api::{ApiError, Limits, Request, Work, parse_json, request_id, validate};
pub use clause_segment::Provision;
pub use http::{Head, Reply, Route, Shutdown, exposure_warning, head_end, parse_head, route, serve_http};
pub use service::{InFlight, ModelInfo, Scorer, Service, SubmitError};
pub use stdio::serve_stdio;

/// How often an idle connection (or the stdio loop) looks at the shutdown flag.
const IDLE_POLL: Duration = Duration::from_millis(200);
