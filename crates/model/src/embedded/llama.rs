//! The llama.cpp side of the embedded engine (`llama-cpp-2`).
//!
//! One model per process (the backend initialises once). The context is kept
//! between requests with its KV cache: an agent sends the whole conversation
//! each turn, so only the tokens after the common prefix are decoded again.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use super::{
    CHATML, EngineOptions, Specials, Timings, ToolChoice, call_grammar, calls_schema, engine_error, parse_output,
};
use crate::{CancelToken, ModelError, Request, Response, StopReason, StreamEvent, Usage};

/// Tokens decoded per batch while reading the prompt.
const BATCH: usize = 512;

fn backend() -> Result<&'static LlamaBackend, ModelError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
            // llama.cpp logs every tensor to stderr otherwise.
            backend.void_logs();
            Ok(backend)
        })
        .as_ref()
        .map_err(|e| engine_error(format!("cannot start llama.cpp: {e}")))
}

/// What the context holds: its tokens, in order (the KV cache's content).
struct State {
    ctx: LlamaContext<'static>,
    cached: Vec<LlamaToken>,
    last: Timings,
}

pub(super) struct Llama {
    model: &'static LlamaModel,
    state: Mutex<State>,
    template: String,
    specials: Specials,
    n_ctx: u32,
    name: String,
}

// SAFETY: the context is only reached through the mutex, one thread at a time;
// llama.cpp contexts may be used from any thread, not from two at once.
unsafe impl Send for Llama {}
// SAFETY: as above: every use of the context holds the mutex.
unsafe impl Sync for Llama {}

impl Llama {
    pub(super) fn load(path: &Path, options: &EngineOptions) -> Result<Llama, ModelError> {
        let backend = backend()?;
        if !path.is_file() {
            return Err(engine_error(format!("{} is not a file", path.display())));
        }
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).map_err(|e| {
            engine_error(format!(
                "llama.cpp cannot load {}: {e}\nhint: `airlock model info {}` says what the file holds",
                path.display(),
                path.display()
            ))
        })?;
        // One model per process, for the process's life: the context borrows it.
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let trained = model.n_ctx_train().max(512);
        let n_ctx = options.context.clamp(512, trained);
        let threads = options
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32))
            .max(1) as i32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx =
            model.new_context(backend, params).map_err(|e| engine_error(format!("cannot make a context: {e}")))?;
        let template = model
            .meta_val_str("tokenizer.chat_template")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| CHATML.to_string());
        let piece = |t: LlamaToken| String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned();
        let vocab = model.vocab();
        let specials = Specials { bos: piece(vocab.bos()), eos: piece(vocab.eos()) };
        let name = model.meta_val_str("general.name").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
        });
        Ok(Llama {
            model,
            state: Mutex::new(State { ctx, cached: Vec::new(), last: Timings::default() }),
            template,
            specials,
            n_ctx,
            name,
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn last_timings(&self) -> Timings {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).last
    }

    pub(super) fn clear_cache(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.ctx.clear_kv_cache();
        state.cached.clear();
    }

    pub(super) fn complete(
        &self,
        request: &Request,
        choice: &ToolChoice,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        cancel: &CancelToken,
    ) -> Result<Response, ModelError> {
        let prompt = super::render_prompt(&self.template, request, &self.specials)?;
        let vocab = self.model.vocab();
        let bos_written = !self.specials.bos.is_empty() && prompt.starts_with(&self.specials.bos);
        let add_bos = vocab.should_add_bos() && !bos_written;
        let tokens = vocab.tokenize(prompt.as_bytes(), add_bos, true);
        let n_ctx = self.n_ctx as usize;
        if tokens.len() + 16 > n_ctx {
            return Err(engine_error(format!(
                "the prompt is {} tokens and the context holds {n_ctx}\nhint: a larger context (--context) if the \
                 model was trained for it, or a shorter conversation",
                tokens.len()
            )));
        }
        let budget = (request.max_tokens.max(1) as usize).min(n_ctx - tokens.len());
        let mut sampler = self.sampler(request, choice)?;

        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State { ctx, cached, last } = &mut *state;
        let began = std::time::Instant::now();
        // Keep the common prefix in the KV cache (at least one token is decoded
        // again, for its logits).
        let common = cached.iter().zip(&tokens).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
        if ctx.clear_kv_cache_seq(Some(0), Some(common as u32), None).is_err() {
            ctx.clear_kv_cache();
            cached.clear();
        }
        cached.truncate(common.min(cached.len()));
        let start = cached.len();
        let mut batch = LlamaBatch::new(BATCH, 1);
        let decode_error = |e: &dyn std::fmt::Display| engine_error(format!("llama.cpp could not decode: {e}"));
        for (chunk_start, chunk) in tokens[start..].chunks(BATCH).enumerate().map(|(i, c)| (start + i * BATCH, c)) {
            if cancel.is_cancelled() {
                cached.clear();
                ctx.clear_kv_cache();
                return Err(ModelError::Cancelled);
            }
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let pos = chunk_start + i;
                let last = pos == tokens.len() - 1;
                batch.add(*token, pos as i32, &[0], last).map_err(|e| decode_error(&e))?;
            }
            ctx.decode(&mut batch).map_err(|e| {
                cached.clear();
                decode_error(&e)
            })?;
            cached.extend_from_slice(chunk);
        }

        let prompt_secs = began.elapsed().as_secs_f64();
        let prompt_tokens = (tokens.len() - start) as u64;
        let began = std::time::Instant::now();
        let mut out = Vec::<u8>::new();
        let mut sent = 0usize;
        let mut generated = 0usize;
        let mut stop_reason = StopReason::MaxTokens;
        let mut logits_at = batch.n_tokens() - 1;
        while generated < budget {
            if cancel.is_cancelled() {
                return Err(ModelError::Cancelled);
            }
            let token = sampler.sample(ctx, logits_at);
            if vocab.is_eog(token) {
                stop_reason = StopReason::EndTurn;
                break;
            }
            generated += 1;
            out.extend_from_slice(&vocab.token_to_piece(token, false, None));
            let text = String::from_utf8_lossy(&out);
            // Stop sequences, and the end of a tool call (one call per turn).
            if let Some(at) = request.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
                out.truncate(at);
                stop_reason = StopReason::StopSequence;
                break;
            }
            if text.contains(super::CALL_CLOSE) {
                stop_reason = StopReason::ToolUse;
                break;
            }
            // Text goes out as it comes, up to a possible start of `<tool_call>`.
            if let Ok(valid) = std::str::from_utf8(&out) {
                let hold = valid.find('<').unwrap_or(valid.len());
                if hold > sent {
                    on_event(StreamEvent::TextDelta(valid[sent..hold].to_string()));
                    sent = hold;
                }
            }
            batch.clear();
            let pos = tokens.len() + generated - 1;
            batch.add(token, pos as i32, &[0], true).map_err(|e| decode_error(&e))?;
            ctx.decode(&mut batch).map_err(|e| {
                cached.clear();
                decode_error(&e)
            })?;
            cached.push(token);
            logits_at = 0;
        }
        *last = Timings {
            prompt_tokens,
            prompt_secs,
            generated_tokens: generated as u64,
            generate_secs: began.elapsed().as_secs_f64(),
        };
        let text = String::from_utf8_lossy(&out).into_owned();
        let (answer, tool_calls, invalid_tool_calls) = parse_output(&text, 0);
        if !tool_calls.is_empty() || !invalid_tool_calls.is_empty() {
            stop_reason = StopReason::ToolUse;
        }
        Ok(Response {
            text: answer,
            thinking: Vec::new(),
            tool_calls,
            invalid_tool_calls,
            usage: Usage { input_tokens: tokens.len() as u64, output_tokens: generated as u64 },
            stop_reason,
        })
    }

    /// Greedy (or sampled at the request's temperature), behind the tool-call
    /// grammar when there are tools.
    fn sampler(&self, request: &Request, choice: &ToolChoice) -> Result<LlamaSampler, ModelError> {
        let mut chain = Vec::new();
        if !request.tools.is_empty() {
            let schema = calls_schema(&request.tools);
            let schema_grammar = llama_cpp_2::json_schema_to_grammar(&schema)
                .map_err(|e| engine_error(format!("cannot make a grammar of the tools' schemas: {e}")))?;
            let grammar = call_grammar(&schema_grammar);
            let sampler = match choice {
                ToolChoice::Required => LlamaSampler::grammar(self.model, &grammar, "root"),
                ToolChoice::Auto => {
                    LlamaSampler::grammar_lazy(self.model, &grammar, "root", [super::CALL_OPEN.as_bytes()], &[])
                }
            }
            .map_err(|e| engine_error(format!("llama.cpp refused the tool-call grammar: {e}")))?;
            chain.push(sampler);
        }
        match request.temperature {
            Some(t) if t > 0.0 => {
                chain.push(LlamaSampler::temp(t));
                chain.push(LlamaSampler::dist(0x5eed));
            }
            _ => chain.push(LlamaSampler::greedy()),
        }
        Ok(LlamaSampler::chain_simple(chain))
    }
}
