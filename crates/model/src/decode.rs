//! What both wire formats' stream decoders share.

use serde_json::Value;

use crate::sse::SseEvent;
use crate::types::{Response, StreamEvent};

/// Whether the decoder wants more of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// The response is complete; the rest of the connection is not read (some servers keep it open).
    Done,
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The server reported an error in the stream.
    Api { kind: String, message: String },
    /// The stream was not what the wire format promises.
    Malformed(String),
}

/// Turns one wire format's events into [`StreamEvent`]s and, at the end, a [`Response`].
pub(crate) trait Decoder: Send {
    fn event(&mut self, event: SseEvent, emit: &mut dyn FnMut(StreamEvent)) -> Result<Flow, DecodeError>;
    fn finish(self: Box<Self>) -> Result<Response, DecodeError>;
}

/// The `{"error": {"type": …, "message": …}}` shape both providers (and most self-hosted servers) use.
pub(crate) fn api_error(error: &Value) -> DecodeError {
    let text = |v: &Value| v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string()));
    let kind = text(&error["type"]).or_else(|| text(&error["code"])).unwrap_or_else(|| "error".to_owned());
    let message = match error {
        Value::String(message) => message.clone(),
        _ => text(&error["message"]).unwrap_or_else(|| error.to_string()),
    };
    DecodeError::Api { kind, message }
}

/// A short excerpt of `text` for error messages.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
