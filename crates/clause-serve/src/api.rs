//! Request parsing and validation: the JSON a client sends, checked against
//! the [`Limits`], and the errors it gets back.

use std::time::Duration;

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
}
