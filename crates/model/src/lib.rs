//! Model clients for airlock: OpenAI-compatible chat completions and Anthropic Messages, both streamed.
//!
//! One provider-neutral API ([`Request`] in, [`StreamEvent`]s and a [`Response`] out) over both wire formats. The
//! decoders are built for what self-hosted servers really send: tool calls split across chunks and interleaved,
//! missing call ids (synthesized as `call_<n>`), usage-only chunks, non-streamed answers. Tool arguments that are not
//! JSON are repaired where that cannot change a value ([`repair_json`]); otherwise the call comes back as an
//! [`InvalidToolCall`] for the loop to answer with a tool error, never as a crash. Requests carry only the fields that
//! have a value, since a local model pays for every prompt token.
//!
//! ```no_run
//! use std::time::Duration;
//! use airlock_model::{ApiStyle, CancelToken, Client, Endpoint, Message, Request, StreamEvent};
//!
//! # async fn run() -> Result<(), airlock_model::ModelError> {
//! let client = Client::new(Endpoint {
//!     style: ApiStyle::OpenAi,
//!     base_url: "http://127.0.0.1:8080".into(),
//!     api_key: None,
//!     unix_socket: None,
//!     timeout: Duration::from_secs(120),
//!     max_retries: 3,
//! })?;
//! let request = Request {
//!     model: "qwen2.5-coder".into(),
//!     messages: vec![Message::User("Say hi.".into())],
//!     max_tokens: 256,
//!     ..Request::default()
//! };
//! let mut text = String::new();
//! let response = client
//!     .complete(&request, &mut |event| if let StreamEvent::TextDelta(t) = event { text.push_str(&t) }, &CancelToken::new())
//!     .await?;
//! assert_eq!(text, response.text);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod anthropic;
mod calls;
mod cancel;
mod client;
mod decode;
pub mod embedded;
mod error;
pub mod gguf;
mod model;
mod openai;
mod repair;
mod sse;
pub mod store;
mod transport;
mod types;

pub use cancel::CancelToken;
pub use client::{ApiStyle, Client, Endpoint};
pub use error::ModelError;
pub use model::Model;
pub use repair::repair_json;
pub use types::{
    ContentPart, InvalidToolCall, Message, Request, Response, Role, StopReason, StreamEvent, ToolCall, ToolSpec, Usage,
};
