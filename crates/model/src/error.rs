//! What can go wrong talking to a model server.

use std::time::Duration;

/// An error from [`crate::Client`]. Messages are written for the person running airlock.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The endpoint configuration is unusable.
    #[error("invalid model endpoint {url:?}: {reason}")]
    Config {
        /// The base URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made (after retries).
    #[error("could not connect to the model server at {url}: {reason}\nhint: is the server running at {url}?")]
    Connect {
        /// Where we tried to connect (URL, or Unix socket path).
        url: String,
        /// The underlying error.
        reason: String,
    },
    /// The server answered with an HTTP error status.
    #[error("the model server at {url} answered HTTP {status}{}: {body}{}", attempts_note(*attempts), http_hint(*status, body))]
    Http {
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Excerpt of the response body (the error message when the body is the usual JSON error object).
        body: String,
        /// How many requests were made, retries included.
        attempts: u32,
    },
    /// The server sent nothing for too long: no response headers, or no bytes of the stream.
    #[error(
        "the model server at {url} sent nothing for {}s\nhint: it may be overloaded or still loading the model; \
         the endpoint's timeout can be raised",
        after.as_secs_f32()
    )]
    Timeout {
        /// Request URL.
        url: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The request was cancelled.
    #[error("the model request was cancelled")]
    Cancelled,
    /// The server reported an error inside the event stream (Anthropic `error` event, or an OpenAI-style
    /// `{"error": …}` chunk).
    #[error("the model server reported an error while streaming: {kind}: {message}{}", api_hint(kind))]
    Api {
        /// Error type as the server named it (`overloaded_error`, …).
        kind: String,
        /// The server's message.
        message: String,
    },
    /// The server sent something this client cannot understand.
    #[error("the model server at {url} sent a malformed response: {what}")]
    Protocol {
        /// Request URL.
        url: String,
        /// What was wrong.
        what: String,
    },
    /// The embedded engine failed: a model that does not load, a template that
    /// does not render, a prompt that does not fit.
    #[error("{what}")]
    Engine {
        /// What went wrong.
        what: String,
    },
    /// The connection failed after the response started.
    #[error("the connection to the model server at {url} failed while streaming: {reason}")]
    Stream {
        /// Request URL.
        url: String,
        /// The underlying error.
        reason: String,
    },
}

impl ModelError {
    /// Whether another attempt may succeed (only asked before anything was streamed to the caller).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            ModelError::Connect { .. } | ModelError::Stream { .. } => true,
            ModelError::Http { status, .. } => *status == 429 || *status >= 500,
            ModelError::Api { kind, .. } => kind == "overloaded_error" || kind == "rate_limit_error",
            ModelError::Config { .. }
            | ModelError::Timeout { .. }
            | ModelError::Cancelled
            | ModelError::Engine { .. }
            | ModelError::Protocol { .. } => false,
        }
    }
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 { format!(" (after {attempts} attempts)") } else { String::new() }
}

fn http_hint(status: u16, body: &str) -> &'static str {
    let body = body.to_ascii_lowercase();
    match status {
        401 | 403 => "\nhint: check the API key configured for this endpoint",
        404 => "\nhint: check the base URL (without /v1) and the model name",
        400 | 413 if body.contains("context") || body.contains("too long") || body.contains("too large") => {
            "\nhint: the conversation may not fit the model's context window"
        }
        429 => "\nhint: the server is rate limiting; wait a little or lower the request rate",
        500..=599 => "\nhint: the server failed; its logs may say why",
        _ => "",
    }
}

fn api_hint(kind: &str) -> &'static str {
    match kind {
        "overloaded_error" => "\nhint: the provider is overloaded; try again later",
        "authentication_error" | "permission_error" => "\nhint: check the API key configured for this endpoint",
        _ => "",
    }
}
