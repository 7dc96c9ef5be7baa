//! Request parsing and validation: the JSON a client sends, checked against
//! the [`Limits`], and the errors it gets back.

use std::time::Duration;

use base64::Engine as _;
use clause_read::{Draft, Format};
use clause_segment::{Provision, segment};
use serde::Serialize;
use serde_json::Value;

/// What clients may ask of the server, and how it batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Bytes per request body (HTTP) or line (stdio).
    pub max_body_bytes: usize,
    /// Texts (or provisions of a document) per request.
    pub max_texts: usize,
    /// Characters per text of `texts`.
    pub max_text_chars: usize,
    /// Texts per batch (shared out across the CPU threads).
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
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", message)
    }

    /// The error body, with the request's `id` when it had one.
    pub(crate) fn to_json(&self, id: Option<&Value>) -> Vec<u8> {
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
pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
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
        /// The draft as read (a file sent as base64 through its reader).
        draft: Draft,
        /// Its provisions, in document order; for a model trained on
        /// sentences, [`crate::Service::submit`] cuts them into sentences.
        records: Vec<Located>,
    },
}

/// A provision (or a sentence of one) and where it is in the original.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The provision, or a sentence as one ([`Provision::sentences`]).
    pub provision: Provision,
    /// Where it is in a file sent as base64 (`¶ 12`, `p. 3`, an element
    /// path); `None` for text.
    pub source: Option<String>,
    /// For a sentence, the id of the provision it was cut from.
    pub cut_from: Option<String>,
}

/// Media types of `document_base64`, for messages.
const MEDIA_TYPES: &str = "application/pdf, application/vnd.openxmlformats-officedocument.wordprocessingml.document, \
                           text/html, text/markdown or text/plain";

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

/// Check a request object's shape and limits: `{"texts": [...]}`,
/// `{"document": "...", "name": "..."}`, or `{"document_base64": "...",
/// "media_type": "...", "name": "..."}` (a Word, PDF or HTML file), with an
/// optional `id`.
pub fn validate(value: Value, limits: &Limits) -> Result<Request, ApiError> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid(format!(
            "expected a JSON object with `texts`, or `document` and optionally `name`; got {}",
            kind(&value)
        )));
    };
    let known = ["texts", "document", "document_base64", "media_type", "name", "id"];
    if let Some(key) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::new(
            400,
            "unknown_field",
            format!(
                "field `{key}`: unknown; expected `texts`, or `document` (or `document_base64` and `media_type`) \
                 and `name`, and optionally `id`"
            ),
        ));
    }
    let id = map.remove("id");
    let name = map.remove("name");
    let media_type = map.remove("media_type");
    let work = match (map.remove("texts"), map.remove("document"), map.remove("document_base64")) {
        (Some(texts), None, None) => {
            if name.is_some() || media_type.is_some() {
                let field = if name.is_some() { "name" } else { "media_type" };
                return Err(ApiError::invalid(format!("field `{field}`: only with a document")));
            }
            Work::Texts(validate_texts(texts, limits)?)
        }
        (None, Some(document), None) => {
            if media_type.is_some() {
                return Err(ApiError::invalid("field `media_type`: only with `document_base64`"));
            }
            let Value::String(document) = document else {
                return Err(ApiError::invalid(format!("field `document`: expected a string, got {}", kind(&document))));
            };
            document_work(Draft::Text(document), &document_name(name)?, "document", limits)?
        }
        (None, None, Some(encoded)) => {
            let name = document_name(name)?;
            let draft = read_base64(encoded, media_type, &name)?;
            document_work(draft, &name, "document_base64", limits)?
        }
        (None, None, None) => {
            return Err(ApiError::new(
                400,
                "missing_field",
                "expected field `texts` (a list of strings), `document` (a string) or `document_base64` (a file)",
            ));
        }
        _ => {
            return Err(ApiError::invalid("fields `texts`, `document` and `document_base64`: give one, not several"));
        }
    };
    Ok(Request { id, work })
}

/// A document's `name` (its name in provision ids): `document` by default.
fn document_name(name: Option<Value>) -> Result<String, ApiError> {
    match name {
        None => Ok("document".to_string()),
        Some(Value::String(name)) if !name.trim().is_empty() => Ok(name),
        Some(other) => Err(ApiError::invalid(format!(
            "field `name`: expected a non-empty string, got {}",
            if other.is_string() { "an empty string" } else { kind(&other) }
        ))),
    }
}

/// A file sent as base64, read by the reader its `media_type` names.
fn read_base64(encoded: Value, media_type: Option<Value>, name: &str) -> Result<Draft, ApiError> {
    let Value::String(encoded) = encoded else {
        return Err(ApiError::invalid(format!(
            "field `document_base64`: expected a base64 string, got {}",
            kind(&encoded)
        )));
    };
    let format = match media_type {
        None => {
            return Err(ApiError::new(
                400,
                "missing_field",
                format!("field `media_type`: required with `document_base64`; one of {MEDIA_TYPES}"),
            ));
        }
        Some(Value::String(media_type)) => Format::of_media_type(&media_type).ok_or_else(|| {
            ApiError::new(
                415,
                "unsupported_media_type",
                format!("field `media_type`: `{media_type}` is not read; expected one of {MEDIA_TYPES}"),
            )
        })?,
        Some(other) => {
            return Err(ApiError::invalid(format!("field `media_type`: expected a string, got {}", kind(&other))));
        }
    };
    // MIME encoders break lines every 76 characters.
    let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|err| ApiError::invalid(format!("field `document_base64`: not base64 ({err})")))?;
    Draft::from_bytes(&bytes, format, name)
        .map_err(|err| ApiError::new(422, "unreadable_document", format!("field `document_base64`: {err}")))
}

/// A draft segmented into provisions, within the request's limit on texts.
fn document_work(draft: Draft, name: &str, field: &str, limits: &Limits) -> Result<Work, ApiError> {
    let provisions = segment(name, draft.text());
    if provisions.len() > limits.max_texts {
        return Err(ApiError::new(
            413,
            "too_many_texts",
            format!(
                "field `{field}`: {} provisions; at most {} per request (split the document)",
                provisions.len(),
                limits.max_texts
            ),
        ));
    }
    let records = provisions
        .into_iter()
        .map(|provision| Located { source: draft.source_at(provision.start), cut_from: None, provision })
        .collect();
    Ok(Work::Document { draft, records })
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
        let Work::Document { records, .. } = request.work else { panic!("not a document") };
        let ids: Vec<&str> = records.iter().map(|r| r.provision.id.as_str()).collect();
        assert_eq!(ids, ["document:art1", "document:art2"]);
        assert!(records.iter().all(|r| r.source.is_none() && r.cut_from.is_none()));
        let request = check(r#"{"document": "Article 1\nText.", "name": "cc"}"#).expect("named");
        assert!(matches!(&request.work, Work::Document { records, .. } if records[0].provision.id == "cc:art1"));
        assert_eq!(check(r#"{"texts": []}"#).expect("empty").work, Work::Texts(vec![]));
        // Characters, not bytes: ten accented letters are within ten.
        assert!(check(r#"{"texts": ["éééééééééé"]}"#).is_ok());
    }

    #[test]
    fn a_file_is_read_by_the_reader_its_media_type_names() {
        let page = "<html><body><h2>Article 1</h2><p>The Party shall act.</p><h2>Article 2</h2>\
                    <p>It may refuse.</p></body></html>";
        let encoded = base64::engine::general_purpose::STANDARD.encode(page);
        // Line breaks as MIME writes them are ignored; so are parameters.
        let wrapped = format!("{}\n{}", &encoded[..20], &encoded[20..]);
        let json = serde_json::json!({
            "document_base64": wrapped, "media_type": "Text/HTML; charset=utf-8", "name": "page"
        });
        let request = validate(json, &Limits::default()).expect("html");
        let Work::Document { records, draft } = request.work else { panic!("not a document") };
        let ids: Vec<&str> = records.iter().map(|r| r.provision.id.as_str()).collect();
        assert_eq!(ids, ["page:art1", "page:art2"]);
        assert_eq!(records[1].source.as_deref(), Some("body/p[2]"));
        assert!(draft.text().contains("It may refuse."));
    }

    #[test]
    fn malformed_requests_name_the_field() {
        rejected("{\"texts\": [\"a\"", 400, "invalid_json", "line 1 column");
        rejected("  ", 400, "invalid_json", "empty");
        rejected("[1]", 400, "invalid_request", "got a list");
        rejected(r#"{"text": ["a"]}"#, 400, "unknown_field", "field `text`");
        rejected(r#"{}"#, 400, "missing_field", "`texts`");
        rejected(r#"{"texts": ["a"], "document": "b"}"#, 400, "invalid_request", "not several");
        rejected(
            r#"{"texts": "a"}"#,
            400,
            "invalid_request",
            "field `texts`: expected a list of strings, got a string",
        );
        rejected(r#"{"texts": ["a", 3]}"#, 400, "invalid_request", "field `texts[1]`: expected a string, got a number");
        rejected(r#"{"texts": ["a"], "name": "n"}"#, 400, "invalid_request", "field `name`");
        rejected(r#"{"texts": ["a"], "media_type": "text/html"}"#, 400, "invalid_request", "field `media_type`");
        rejected(r#"{"document": "x", "media_type": "text/html"}"#, 400, "invalid_request", "field `media_type`");
        rejected(r#"{"document_base64": "eA=="}"#, 400, "missing_field", "field `media_type`: required");
        rejected(r#"{"document_base64": 1, "media_type": "text/html"}"#, 400, "invalid_request", "base64 string");
        rejected(r#"{"document_base64": "eA==", "media_type": 3}"#, 400, "invalid_request", "field `media_type`");
        rejected(
            r#"{"document_base64": "eA==", "media_type": "image/png"}"#,
            415,
            "unsupported_media_type",
            "`image/png` is not read",
        );
        rejected(r#"{"document_base64": "e!A", "media_type": "text/plain"}"#, 400, "invalid_request", "not base64");
        rejected(
            r#"{"document_base64": "eA==", "name": "d",
                "media_type": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}"#,
            422,
            "unreadable_document",
            "field `document_base64`: d",
        );
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
}
