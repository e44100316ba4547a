//! The client: one request, streamed, with retries before anything reached the caller.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::anthropic::{self, AnthropicDecoder};
use crate::cancel::CancelToken;
use crate::decode::{DecodeError, Decoder, Flow, api_error, excerpt};
use crate::error::ModelError;
use crate::openai::{self, OpenAiDecoder};
use crate::sse::{SseEvent, SseParser};
use crate::transport::{Reply, SendError, Transport};
use crate::types::{Request, Response, StreamEvent};

/// The longest `Retry-After` that is waited out; a server asking for more gets its error reported instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// First backoff delay; doubled on every retry, up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// How much of an error response's body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Which wire format the server speaks: the one definition every crate
/// uses (the gateway's configuration, the worker's start line, the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiStyle {
    /// `POST /v1/chat/completions` (OpenAI, llama.cpp, vLLM, Ollama, LM Studio, …).
    #[serde(rename = "openai")]
    OpenAi,
    /// `POST /v1/messages` (Anthropic).
    Anthropic,
    /// `POST /v1beta/models/MODEL:streamGenerateContent` (Google's Gemini API): carried by the broker for wrapped
    /// agents (Gemini CLI); this crate's client does not speak it.
    Gemini,
}

/// Where a model is served, and how patient to be with it.
#[derive(Clone)]
pub struct Endpoint {
    /// Wire format.
    pub style: ApiStyle,
    /// Base URL without `/v1` (a trailing `/v1` is tolerated).
    pub base_url: String,
    /// Sent as `Authorization: Bearer` (OpenAI) or `x-api-key` (Anthropic).
    pub api_key: Option<String>,
    /// When set, HTTP goes over this Unix socket (airlock's broker); `base_url` still gives the path and `Host`.
    pub unix_socket: Option<PathBuf>,
    /// Longest wait for the response headers, and for each next piece of the stream. Not a limit on the whole
    /// response: a long answer from a slow model is fine as long as it keeps coming.
    pub timeout: Duration,
    /// Retries after 429, 5xx and connection failures, as long as nothing was streamed to the caller yet.
    pub max_retries: u32,
}

impl fmt::Debug for Endpoint {
    // The API key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("style", &self.style)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("unix_socket", &self.unix_socket)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// A model client for one [`Endpoint`]. Cheap to share by reference across tasks.
#[derive(Debug)]
pub struct Client {
    endpoint: Endpoint,
    url: reqwest::Url,
    /// The URL as errors name it (with the socket, when there is one).
    shown_url: String,
    transport: Transport,
}

/// A failed attempt, and the wait the server asked for before the next.
struct Failure {
    error: ModelError,
    retry_after: Option<Duration>,
}

impl From<ModelError> for Failure {
    fn from(error: ModelError) -> Failure {
        Failure { error, retry_after: None }
    }
}

impl Client {
    /// A client for `endpoint`. Fails when the base URL is not an http(s) URL or TLS cannot be set up.
    pub fn new(endpoint: Endpoint) -> Result<Client, ModelError> {
        let config_error = |reason: String| ModelError::Config { url: endpoint.base_url.clone(), reason };
        let base = reqwest::Url::parse(endpoint.base_url.trim())
            .map_err(|e| config_error(format!("{e} (expected something like http://127.0.0.1:8080)")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error(format!("the scheme must be http or https, not {}", base.scheme())));
        }
        let prefix = base.path().trim_end_matches('/');
        let prefix = prefix.strip_suffix("/v1").unwrap_or(prefix);
        let route = match endpoint.style {
            ApiStyle::OpenAi => "v1/chat/completions",
            ApiStyle::Anthropic => "v1/messages",
            ApiStyle::Gemini => {
                return Err(config_error(
                    "airlock's own agent speaks the OpenAI or Anthropic API, not Gemini's (which the broker \
                     carries for wrapped agents only)\nhint: name an OpenAI-compatible endpoint for this model"
                        .into(),
                ));
            }
        };
        let mut url = base.clone();
        url.set_path(&format!("{prefix}/{route}"));
        let (transport, shown_url) = match &endpoint.unix_socket {
            Some(socket) => (Transport::Unix(socket.clone()), format!("{url} (over {})", socket.display())),
            None => {
                let client = reqwest::Client::builder()
                    .connect_timeout(endpoint.timeout)
                    .build()
                    .map_err(|e| config_error(format!("could not set up the HTTP client: {e}")))?;
                (Transport::Tcp(client), url.to_string())
            }
        };
        Ok(Client { endpoint, url, shown_url, transport })
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request`, streams events through `on_event` (the last one is [`StreamEvent::Done`]) and returns the
    /// final [`Response`].
    ///
    /// Retries on 429, 5xx and connection failures with exponential backoff and jitter (honouring `Retry-After`),
    /// but only while nothing has been passed to `on_event`. Cancelled by `cancel` (returns
    /// [`ModelError::Cancelled`]) or by dropping the future.
    pub async fn complete(
        &self,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<Response, ModelError> {
        let body = match self.endpoint.style {
            // `Client::new` refuses Gemini.
            ApiStyle::OpenAi | ApiStyle::Gemini => openai::request_body(request),
            ApiStyle::Anthropic => anthropic::request_body(request),
        };
        let body = Bytes::from(body.to_string());
        let mut emitted = false;
        let mut attempts: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            attempts += 1;
            let outcome = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ModelError::Cancelled),
                outcome = self.attempt(body.clone(), &mut *on_event, &mut emitted) => outcome,
            };
            let failure = match outcome {
                Ok(response) => {
                    on_event(StreamEvent::Done(response.clone()));
                    return Ok(response);
                }
                Err(failure) => failure,
            };
            let mut error = failure.error;
            if let ModelError::Http { attempts: counted, .. } = &mut error {
                *counted = attempts;
            }
            if emitted || !error.is_retryable() || attempts > self.endpoint.max_retries {
                return Err(error);
            }
            let delay = match failure.retry_after {
                Some(wait) if wait > MAX_RETRY_AFTER => return Err(error),
                Some(wait) => wait,
                None => backoff(attempts),
            };
            tracing::warn!(%error, retry_in = ?delay, attempt = attempts, "model request failed; retrying");
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(ModelError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn attempt(
        &self,
        body: Bytes,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        emitted: &mut bool,
    ) -> Result<Response, Failure> {
        let timeout = self.endpoint.timeout;
        let mut reply = match tokio::time::timeout(timeout, self.transport.post(&self.url, &self.headers(), body)).await
        {
            Err(_) => return Err(self.timeout_error().into()),
            Ok(Err(SendError::Connect(reason))) => {
                return Err(ModelError::Connect { url: self.shown_url.clone(), reason }.into());
            }
            Ok(Err(SendError::Request(reason))) => {
                return Err(ModelError::Stream { url: self.shown_url.clone(), reason }.into());
            }
            Ok(Ok(reply)) => reply,
        };
        if !(200..300).contains(&reply.status) {
            let body = self.error_body(&mut reply).await;
            let error = ModelError::Http { url: self.shown_url.clone(), status: reply.status, body, attempts: 1 };
            return Err(Failure { error, retry_after: reply.retry_after });
        }

        let mut decoder: Box<dyn Decoder> = match self.endpoint.style {
            ApiStyle::OpenAi | ApiStyle::Gemini => Box::<OpenAiDecoder>::default(),
            ApiStyle::Anthropic => Box::<AnthropicDecoder>::default(),
        };
        let mut emit = |event: StreamEvent| {
            *emitted = true;
            on_event(event);
        };
        if reply.content_type.starts_with("application/json") {
            // A server that ignored `stream: true`.
            let text = self.whole_body(&mut reply).await?;
            for event in self.unstreamed_events(&text)? {
                self.decode(&mut *decoder, event, &mut emit)?;
            }
            return decoder.finish().map_err(|e| self.decode_error(e).into());
        }

        let mut parser = SseParser::default();
        loop {
            let Some(chunk) = self.next_chunk(&mut reply).await? else { break };
            for event in parser.feed(&chunk) {
                if self.decode(&mut *decoder, event, &mut emit)? == Flow::Done {
                    return decoder.finish().map_err(|e| self.decode_error(e).into());
                }
            }
        }
        if let Some(event) = parser.finish() {
            self.decode(&mut *decoder, event, &mut emit)?;
        }
        decoder.finish().map_err(|e| self.decode_error(e).into())
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("content-type", "application/json".to_owned()), ("accept", "text/event-stream".into())];
        match self.endpoint.style {
            ApiStyle::OpenAi | ApiStyle::Gemini => {
                if let Some(key) = &self.endpoint.api_key {
                    headers.push(("authorization", format!("Bearer {key}")));
                }
            }
            ApiStyle::Anthropic => {
                if let Some(key) = &self.endpoint.api_key {
                    headers.push(("x-api-key", key.clone()));
                }
                headers.push(("anthropic-version", anthropic::VERSION.to_owned()));
            }
        }
        headers
    }

    fn decode(
        &self,
        decoder: &mut dyn Decoder,
        event: SseEvent,
        emit: &mut dyn FnMut(StreamEvent),
    ) -> Result<Flow, Failure> {
        decoder.event(event, emit).map_err(|e| self.decode_error(e).into())
    }

    fn decode_error(&self, error: DecodeError) -> ModelError {
        match error {
            DecodeError::Api { kind, message } => ModelError::Api { kind, message },
            DecodeError::Malformed(what) => ModelError::Protocol { url: self.shown_url.clone(), what },
        }
    }

    fn timeout_error(&self) -> ModelError {
        ModelError::Timeout { url: self.shown_url.clone(), after: self.endpoint.timeout }
    }

    /// The next body chunk, within the timeout.
    async fn next_chunk(&self, reply: &mut Reply) -> Result<Option<Bytes>, ModelError> {
        match tokio::time::timeout(self.endpoint.timeout, reply.chunk()).await {
            Err(_) => Err(self.timeout_error()),
            Ok(Err(reason)) => Err(ModelError::Stream { url: self.shown_url.clone(), reason }),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    async fn whole_body(&self, reply: &mut Reply) -> Result<String, ModelError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.next_chunk(reply).await? {
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| ModelError::Protocol {
            url: self.shown_url.clone(),
            what: "the response body is not UTF-8".into(),
        })
    }

    /// The body of an error response, shortened; the `message` of the usual JSON error object when there is one.
    async fn error_body(&self, reply: &mut Reply) -> String {
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match self.next_chunk(reply).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<Value>(&text).ok().and_then(|v| match api_error(&v["error"]) {
            DecodeError::Api { message, .. } if !v["error"].is_null() => Some(message),
            _ => v["message"].as_str().or_else(|| v["detail"].as_str()).map(str::to_owned),
        });
        let text = excerpt(message.as_deref().unwrap_or(&text), 500);
        if text.is_empty() { "(empty body)".to_owned() } else { text }
    }

    /// A complete (non-streamed) response, as the events its stream would have had.
    fn unstreamed_events(&self, text: &str) -> Result<Vec<SseEvent>, ModelError> {
        let value: Value = serde_json::from_str(text).map_err(|error| ModelError::Protocol {
            url: self.shown_url.clone(),
            what: format!("the response is not JSON ({error}): {}", excerpt(text, 200)),
        })?;
        let event = |data: Value| SseEvent { event: String::new(), data: data.to_string() };
        match self.endpoint.style {
            // The decoder reads `message` where a stream has `delta`.
            ApiStyle::OpenAi | ApiStyle::Gemini => Ok(vec![event(value)]),
            ApiStyle::Anthropic => {
                if value["type"] == "error" {
                    return Ok(vec![event(value)]);
                }
                let mut events = vec![event(json!({"type": "message_start", "message": {"usage": value["usage"]}}))];
                for (index, block) in value["content"].as_array().into_iter().flatten().enumerate() {
                    events.push(event(json!({"type": "content_block_start", "index": index, "content_block": block})));
                    events.push(event(json!({"type": "content_block_stop", "index": index})));
                }
                events.push(event(json!({"type": "message_delta",
                    "delta": {"stop_reason": value["stop_reason"]}, "usage": value["usage"]})));
                events.push(event(json!({"type": "message_stop"})));
                Ok(events)
            }
        }
    }
}

/// Exponential backoff with jitter: half the delay fixed, half random, so clients that failed together do not
/// retry together.
fn backoff(attempt: u32) -> Duration {
    let exponential = BASE_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let jitter = (random % 1000) as f64 / 1000.0;
    exponential / 2 + exponential.mul_f64(jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::{ApiStyle, Client, Endpoint, backoff};
    use std::time::Duration;

    fn endpoint(base_url: &str, style: ApiStyle) -> Endpoint {
        Endpoint {
            style,
            base_url: base_url.into(),
            api_key: Some("sk-secret".into()),
            unix_socket: None,
            timeout: Duration::from_secs(1),
            max_retries: 0,
        }
    }

    #[test]
    fn urls_are_built_from_the_base() {
        let url = |base: &str, style| Client::new(endpoint(base, style)).unwrap().url.to_string();
        assert_eq!(url("http://127.0.0.1:8080", ApiStyle::OpenAi), "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(url("http://h/v1/", ApiStyle::OpenAi), "http://h/v1/chat/completions");
        assert_eq!(url("https://h/proxy/", ApiStyle::Anthropic), "https://h/proxy/v1/messages");
        assert!(Client::new(endpoint("ftp://h", ApiStyle::OpenAi)).is_err());
        assert!(Client::new(endpoint("not a url", ApiStyle::OpenAi)).is_err());
    }

    #[test]
    fn api_key_is_not_in_debug_output() {
        let text = format!("{:?}", endpoint("http://h", ApiStyle::OpenAi));
        assert!(!text.contains("sk-secret"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..40 {
            let delay = backoff(attempt);
            let full =
                Duration::from_millis(250).saturating_mul(1 << (attempt - 1).min(16)).min(Duration::from_secs(8));
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
    }
}
