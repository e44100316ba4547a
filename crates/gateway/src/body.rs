//! What goes upstream: a request body parsed, every string in it redacted
//! (messages, system text, tool results, tool definitions, and fields no one
//! has invented yet), and written back.

use airlock_audit::event::RedactionNote;
use airlock_redact::Redactor;
use serde_json::Value;

/// Keys whose values are protocol, not content: never rewritten, so routing
/// and the wire format survive redaction.
const PROTOCOL_KEYS: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "tool_use_id",
    "media_type",
    "object",
    "encoding_format",
    "finish_reason",
    "stop_reason",
];

/// A request body ready to send.
#[derive(Debug)]
pub struct Scrubbed {
    /// The redacted JSON.
    pub body: Vec<u8>,
    /// What was replaced.
    pub notes: Vec<RedactionNote>,
    /// The model asked for.
    pub model: String,
    /// Whether the client asked for a stream.
    pub stream: bool,
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
}

/// Parses, redacts and re-serializes a request body.
pub fn scrub(body: &[u8], redactor: &mut Redactor) -> Result<Scrubbed, BodyError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let Value::Object(map) = &value else { return Err(BodyError::NotObject) };
    let model = match map.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(BodyError::NoModel),
    };
    let stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut notes = Vec::new();
    let mut pointer = String::new();
    walk(&mut value, &mut pointer, redactor, &mut notes);
    let body = serde_json::to_vec(&value).map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(Scrubbed { body, notes, model, stream })
}

fn walk(value: &mut Value, pointer: &mut String, redactor: &mut Redactor, notes: &mut Vec<RedactionNote>) {
    match value {
        Value::String(text) => {
            let out = redactor.redact(text);
            if !out.report.is_empty() {
                for r in out.report {
                    notes.push(RedactionNote {
                        rule: r.rule_id,
                        field: pointer.clone(),
                        placeholder: r.placeholder,
                        secret_sha256: r.secret_sha256,
                    });
                }
                *text = out.text;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(item, pointer, redactor, notes);
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if item.is_string() && PROTOCOL_KEYS.contains(&key.as_str()) {
                    continue;
                }
                let len = pointer.len();
                pointer.push('/');
                // RFC 6901 escaping.
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                walk(item, pointer, redactor, notes);
                pointer.truncate(len);
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
        let out = scrub(&serde_json::to_vec(&body).unwrap(), &mut redactor()).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert_eq!(out.model, "claude-sonnet-4");
        assert!(out.stream);
        let fields: Vec<&str> = out.notes.iter().map(|n| n.field.as_str()).collect();
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
        assert!(matches!(scrub(b"{nope", &mut r), Err(BodyError::NotJson(_))));
        assert_eq!(scrub(b"[1]", &mut r).unwrap_err(), BodyError::NotObject);
        assert_eq!(scrub(b"{\"messages\":[]}", &mut r).unwrap_err(), BodyError::NoModel);
    }
}
