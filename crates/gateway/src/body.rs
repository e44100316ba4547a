//! What goes upstream: a request body parsed, every string in it redacted
//! (messages, system text, tool results, tool definitions, and fields no one
//! has invented yet), and written back.

use airlock_audit::event::RedactionNote;
use airlock_redact::Redactor;
use serde_json::Value;

/// The request schema a body follows, from the route it came on: protocol
/// fields are known only at the positions their schema puts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// OpenAI `/v1/chat/completions`.
    OpenaiChat,
    /// OpenAI `/v1/responses`.
    OpenaiResponses,
    /// OpenAI `/v1/embeddings`.
    OpenaiEmbeddings,
    /// Anthropic `/v1/messages` and `/v1/messages/count_tokens`.
    AnthropicMessages,
}

/// The shape a protocol field's value must have to be left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A message role: one of a closed set.
    Role,
    /// An enum value: lowercase words joined by `_`, optionally ending in a
    /// date (`web_search_20250305`, `web_search_preview_2025_03_11`); no
    /// other digits, so no token fits.
    Word,
    /// A vendor-issued id: a short lowercase prefix, `_`, then letters and digits.
    Id,
    /// A MIME type (`image/png`, `application/pdf`).
    MediaType,
}

/// Where each schema puts protocol fields, as `/`-separated keys with `#`
/// for any array index. Nothing else is exempt: a key named `id` or `type`
/// anywhere else (a tool's arguments, a JSON schema) is content, and scanned.
fn positions(schema: Schema) -> &'static [(&'static str, Shape)] {
    use Shape::*;
    match schema {
        Schema::OpenaiChat => &[
            ("messages/#/role", Role),
            ("messages/#/content/#/type", Word),
            ("messages/#/tool_calls/#/id", Id),
            ("messages/#/tool_calls/#/type", Word),
            ("messages/#/tool_call_id", Id),
            ("tools/#/type", Word),
            ("tool_choice/type", Word),
            ("response_format/type", Word),
        ],
        Schema::OpenaiResponses => &[
            ("input/#/role", Role),
            ("input/#/type", Word),
            ("input/#/id", Id),
            ("input/#/call_id", Id),
            ("input/#/content/#/type", Word),
            ("input/#/summary/#/type", Word),
            ("previous_response_id", Id),
            ("tools/#/type", Word),
            ("tool_choice/type", Word),
            ("text/format/type", Word),
        ],
        Schema::OpenaiEmbeddings => &[("encoding_format", Word)],
        Schema::AnthropicMessages => &[
            ("messages/#/role", Role),
            ("messages/#/content/#/type", Word),
            ("messages/#/content/#/id", Id),
            ("messages/#/content/#/tool_use_id", Id),
            ("messages/#/content/#/cache_control/type", Word),
            ("messages/#/content/#/source/type", Word),
            ("messages/#/content/#/source/media_type", MediaType),
            ("messages/#/content/#/content/#/type", Word),
            ("messages/#/content/#/content/#/source/type", Word),
            ("messages/#/content/#/content/#/source/media_type", MediaType),
            ("system/#/type", Word),
            ("system/#/cache_control/type", Word),
            ("tools/#/type", Word),
            ("tools/#/cache_control/type", Word),
            ("tool_choice/type", Word),
            ("thinking/type", Word),
        ],
    }
}

/// One step of a path into a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Whether the string `value` at `path` is a protocol field of `schema` that
/// redaction must leave alone: only at a known position, and only with the
/// shape that field has. Anything else is scanned like any other text.
pub fn is_protocol_field(schema: Schema, path: &[Step], value: &str) -> bool {
    positions(schema).iter().any(|(pattern, shape)| at(pattern, path) && shape_ok(*shape, value))
}

fn at(pattern: &str, path: &[Step]) -> bool {
    let parts: Vec<&str> = pattern.split('/').collect();
    parts.len() == path.len()
        && parts.iter().zip(path).all(|(p, s)| match s {
            Step::Index(_) => *p == "#",
            Step::Key(k) => *p == k,
        })
}

fn shape_ok(shape: Shape, value: &str) -> bool {
    match shape {
        Shape::Role => matches!(value, "system" | "user" | "assistant" | "tool" | "developer" | "function"),
        Shape::Word => word_shaped(value),
        Shape::Id => {
            let Some((prefix, rest)) = value.split_once('_') else { return false };
            (1..=12).contains(&prefix.len())
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && (1..=128).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        Shape::MediaType => {
            let Some((kind, sub)) = value.split_once('/') else { return false };
            matches!(kind, "image" | "application" | "text" | "audio" | "video")
                && (1..=64).contains(&sub.len())
                && sub.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
        }
    }
}

/// Lowercase words joined by `_`, with at most a trailing date of 8 digits
/// (`_20250305`) or three groups (`_2025_03_11`).
fn word_shaped(value: &str) -> bool {
    if value.is_empty() || value.len() > 64 {
        return false;
    }
    let parts: Vec<&str> = value.split('_').collect();
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let words = parts.iter().take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase())).count();
    let date = &parts[words..];
    words >= 1
        && match date {
            [] => true,
            [d] => d.len() == 8 && digits(d),
            [y, m, d] => y.len() == 4 && m.len() == 2 && d.len() == 2 && digits(y) && digits(m) && digits(d),
            _ => false,
        }
}

/// A request body ready to send.
#[derive(Debug)]
pub struct Scrubbed {
    /// The redacted JSON.
    pub body: Vec<u8>,
    /// What was replaced.
    pub notes: Vec<RedactionNote>,
    /// The model asked for, after redaction (a secret in it is a placeholder here too).
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Server-side tools taken out of the request (see [`crate::server_tools`]).
    pub stripped: Vec<crate::server_tools::Stripped>,
}

/// Why a body cannot be sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON.
    #[error("the request body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the request body must be a JSON object")]
    NotObject,
    /// No model named.
    #[error("the request names no model (a string \"model\" field is required)")]
    NoModel,
    /// A model name no API uses (the name itself is not repeated: it may hold anything).
    #[error("the model name ({0} characters) is not a model name: at most 256 characters, no control characters")]
    BadModel(usize),
    /// A server-side tool the policy does not allow, in a place it cannot be taken out of.
    #[error(transparent)]
    ServerTool(#[from] crate::server_tools::Refused),
}

/// Parses a request body of `schema`, takes out the server-side tools the
/// policy does not allow (`allow_server_tools`), redacts every string that is
/// not a protocol field at its known position (the model name included), and
/// re-serializes it.
pub fn scrub(
    body: &[u8],
    schema: Schema,
    allow_server_tools: &[String],
    redactor: &mut Redactor,
) -> Result<Scrubbed, BodyError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let Value::Object(map) = &value else { return Err(BodyError::NotObject) };
    match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {
            if m.chars().count() > 256 || m.chars().any(char::is_control) {
                return Err(BodyError::BadModel(m.chars().count()));
            }
        }
        _ => return Err(BodyError::NoModel),
    }
    let stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let stripped = crate::server_tools::strip(&mut value, schema, allow_server_tools)?;
    let mut notes = Vec::new();
    let mut path = Vec::new();
    redact_tree(&mut value, &mut path, redactor, &mut notes, &|p, t| is_protocol_field(schema, p, t));
    let model = value.get("model").and_then(Value::as_str).unwrap_or_default().to_string();
    let body = serde_json::to_vec(&value).map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(Scrubbed { body, notes, model, stream, stripped })
}

/// One note per replacement made in the string at `field`.
fn note_all(notes: &mut Vec<RedactionNote>, field: &str, report: Vec<airlock_redact::Redaction>) {
    notes.extend(report.into_iter().map(|r| RedactionNote {
        rule: r.rule_id,
        field: field.to_string(),
        placeholder: r.placeholder,
        secret_sha256: r.secret_sha256,
    }));
}

/// A JSON pointer (RFC 6901) for `path`.
pub fn pointer(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        out.push('/');
        match step {
            Step::Index(i) => out.push_str(&i.to_string()),
            Step::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
        }
    }
    out
}

/// Redacts every string and key of `value` (at `path`), except the strings
/// `protocol` says are protocol fields (opaque values the API needs back
/// unchanged), noting each replacement.
pub(crate) fn redact_tree(
    value: &mut Value,
    path: &mut Vec<Step>,
    redactor: &mut Redactor,
    notes: &mut Vec<RedactionNote>,
    protocol: &dyn Fn(&[Step], &str) -> bool,
) {
    match value {
        Value::String(text) => {
            if protocol(path, text) {
                return;
            }
            let out = redactor.redact(text);
            if !out.report.is_empty() {
                note_all(notes, &pointer(path), out.report);
                *text = out.text;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                redact_tree(item, path, redactor, notes, protocol);
                path.pop();
            }
        }
        Value::Object(map) => {
            // Keys are strings that leave too: a secret used as a key (in a
            // tool's arguments, say) is replaced like any other.
            let renamed: Vec<(String, String)> = map
                .keys()
                .filter_map(|key| {
                    let out = redactor.redact(key);
                    if out.report.is_empty() {
                        return None;
                    }
                    path.push(Step::Key(out.text.clone()));
                    note_all(notes, &pointer(path), out.report);
                    path.pop();
                    Some((key.clone(), out.text))
                })
                .collect();
            for (old, new) in renamed {
                if let Some(item) = map.remove(&old) {
                    map.insert(new, item);
                }
            }
            for (key, item) in map.iter_mut() {
                path.push(Step::Key(key.clone()));
                redact_tree(item, path, redactor, notes, protocol);
                path.pop();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use airlock_redact::Scanner;

    use super::*;

    fn redactor() -> Redactor {
        Redactor::new(Arc::new(Scanner::builtin()))
    }

    const KEY: &str = "AKIAZ7Q3JXVB4HNW2KDE";

    #[test]
    fn every_place_a_secret_can_hide_is_redacted() {
        let body = serde_json::json!({
            "model": "claude-sonnet-4",
            "stream": true,
            "system": [{"type": "text", "text": format!("deploy key {KEY}")}],
            "messages": [
                {"role": "user", "content": format!("my key is {KEY}")},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                    "content": [{"type": "text", "text": format!("aws_access_key_id = {KEY}")}]}]},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "bash",
                    "input": {"command": format!("export AWS_ACCESS_KEY_ID={KEY}")}}]},
            ],
            "tools": [{"name": "bash", "description": format!("runs commands; uses {KEY}"),
                "input_schema": {"type": "object", "properties": {"k": {"default": KEY}}}}],
        });
        let out = scrub(&serde_json::to_vec(&body).unwrap(), Schema::AnthropicMessages, &[], &mut redactor()).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert_eq!(out.model, "claude-sonnet-4");
        assert!(out.stream);
        // In field order, whichever order the JSON map keeps (insertion order
        // when a dependency turns on serde_json's `preserve_order`).
        let mut fields: Vec<&str> = out.notes.iter().map(|n| n.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "/messages/0/content",
                "/messages/1/content/0/content/0/text",
                "/messages/2/content/0/input/command",
                "/system/0/text",
                "/tools/0/description",
                "/tools/0/input_schema/properties/k/default",
            ]
        );
        // One secret, one placeholder, everywhere.
        assert!(out.notes.iter().all(|n| n.placeholder == out.notes[0].placeholder));
        assert!(text.contains("\"role\":\"user\"") && text.contains("\"tool_use_id\":\"t1\""));
    }

    #[test]
    fn bodies_that_cannot_be_sent_say_why() {
        let mut r = redactor();
        let s = Schema::OpenaiChat;
        assert!(matches!(scrub(b"{nope", s, &[], &mut r), Err(BodyError::NotJson(_))));
        assert_eq!(scrub(b"[1]", s, &[], &mut r).unwrap_err(), BodyError::NotObject);
        assert_eq!(scrub(b"{\"messages\":[]}", s, &[], &mut r).unwrap_err(), BodyError::NoModel);
        let long = format!("{{\"model\":\"{}\"}}", "m".repeat(300));
        assert_eq!(scrub(long.as_bytes(), s, &[], &mut r).unwrap_err(), BodyError::BadModel(300));
    }

    /// The rule this replaced: a string under a protocol-named key was
    /// skipped at any depth, whatever it held.
    fn old_rule_skips(key: &str) -> bool {
        ["model", "role", "type", "id", "tool_call_id", "tool_use_id", "media_type", "object"].contains(&key)
    }

    #[test]
    fn protocol_names_off_their_positions_are_scanned() {
        // A tool's arguments with keys named like protocol fields.
        let body = serde_json::json!({
            "model": "claude-sonnet-4",
            "messages": [{"role": "user", "content": [
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "deploy",
                 "input": {"id": KEY, "type": KEY, "object": {"media_type": KEY}}},
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "ok"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            ]}],
        });
        // The old rule let every one of them through.
        assert!(["id", "type", "media_type"].iter().all(|k| old_rule_skips(k)));
        let out = scrub(&serde_json::to_vec(&body).unwrap(), Schema::AnthropicMessages, &[], &mut redactor()).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(!text.contains(KEY), "{text}");
        // In field order, whichever order the JSON map keeps (insertion order
        // when a dependency turns on serde_json's `preserve_order`).
        let mut fields: Vec<&str> = out.notes.iter().map(|n| n.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "/messages/0/content/0/input/id",
                "/messages/0/content/0/input/object/media_type",
                "/messages/0/content/0/input/type",
            ]
        );
        // The protocol fields at their places are untouched.
        for kept in ["\"id\":\"toolu_01A09q90qw90lq917835lq9\"", "\"media_type\":\"image/png\"", "\"role\":\"user\""] {
            assert!(text.contains(kept), "{kept} in {text}");
        }
    }

    #[test]
    fn protocol_fields_need_their_shape_at_their_place() {
        use Step::*;
        let p = |parts: &[&str]| -> Vec<Step> {
            parts.iter().map(|s| s.parse::<usize>().map(Index).unwrap_or_else(|_| Key(s.to_string()))).collect()
        };
        let a = Schema::AnthropicMessages;
        assert!(is_protocol_field(a, &p(&["messages", "0", "role"]), "assistant"));
        assert!(!is_protocol_field(a, &p(&["messages", "0", "role"]), KEY), "not a role");
        assert!(is_protocol_field(a, &p(&["tools", "1", "type"]), "web_search_20250305"));
        assert!(
            !is_protocol_field(a, &p(&["tools", "1", "type"]), "abcdef0123456789abcdef0123456789"),
            "hex is no enum"
        );
        assert!(!is_protocol_field(a, &p(&["messages", "0", "content", "0", "id"]), "toolu_ghp_x"), "one separator");
        assert!(!is_protocol_field(a, &p(&["messages", "0", "content", "0", "input", "id"]), "toolu_01"), "off place");
        assert!(!is_protocol_field(a, &p(&["model"]), "claude-sonnet-4"), "the model is scanned");
        let r = Schema::OpenaiResponses;
        assert!(is_protocol_field(r, &p(&["input", "3", "call_id"]), "call_AbC123"));
        assert!(is_protocol_field(r, &p(&["tools", "0", "type"]), "web_search_preview_2025_03_11"));
        assert!(!is_protocol_field(Schema::OpenaiChat, &p(&["input", "3", "call_id"]), "call_AbC123"), "other schema");
    }

    #[test]
    fn a_secret_used_as_a_key_is_redacted_and_noted() {
        let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "t", "input": {KEY: {"nested": true}}}]}]});
        let out = scrub(&serde_json::to_vec(&body).unwrap(), Schema::AnthropicMessages, &[], &mut redactor()).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("\"nested\":true"), "the value stays under the new key: {text}");
        assert_eq!(out.notes.len(), 1);
        assert!(out.notes[0].field.starts_with("/messages/0/content/0/input/"), "{:?}", out.notes);
    }

    #[test]
    fn a_secret_in_the_model_name_is_redacted_and_noted() {
        // The old rule left the model name alone, and recorded it as it was.
        assert!(old_rule_skips("model"));
        let body = serde_json::json!({"model": format!("gpt-4o-{KEY}"), "messages": []});
        let out = scrub(&serde_json::to_vec(&body).unwrap(), Schema::OpenaiChat, &[], &mut redactor()).unwrap();
        assert!(!out.model.contains(KEY), "{}", out.model);
        assert!(!String::from_utf8(out.body).unwrap().contains(KEY));
        assert_eq!(out.notes.len(), 1);
        assert_eq!(out.notes[0].field, "/model");
    }
}
