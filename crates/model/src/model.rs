//! A model, wherever it runs: a server reached over HTTP, or the embedded engine.

use crate::embedded::{Engine, ToolChoice};
use crate::{CancelToken, Client, ModelError, Request, Response, StreamEvent};

/// The model an agent talks to.
#[derive(Debug)]
// One per session: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Model {
    /// An OpenAI- or Anthropic-compatible server (through the broker).
    Remote(Client),
    /// A GGUF run in this process by llama.cpp.
    Embedded(Box<Engine>),
}

impl Model {
    /// Sends `request` and returns the complete response, reporting it as it streams.
    pub async fn complete(
        &self,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<Response, ModelError> {
        match self {
            Model::Remote(client) => client.complete(request, on_event, cancel).await,
            // Generation runs on this thread: the worker has nothing else to do meanwhile.
            Model::Embedded(engine) => engine.complete(request, &ToolChoice::Auto, on_event, cancel),
        }
    }
}
