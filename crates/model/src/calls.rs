//! Tool calls assembled from stream fragments, shared by both wire formats.

use serde_json::{Map, Value};

use crate::repair::repair_json;
use crate::types::{InvalidToolCall, StopReason, ToolCall};

/// One tool call being streamed.
#[derive(Debug, Default)]
pub(crate) struct PartialCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Tool calls of one response, in order; a call's position is its [`crate::StreamEvent`] index.
#[derive(Debug, Default)]
pub(crate) struct PartialCalls {
    pub calls: Vec<PartialCall>,
}

impl PartialCalls {
    /// An id for call `index`: the server's when it sent a usable one, otherwise `call_<index>`; never one already
    /// used in this response, since tool results are matched to calls by id.
    pub fn unique_id(&self, index: usize, from_server: Option<&str>) -> String {
        let taken = |id: &str| self.calls.iter().any(|c| c.id == id);
        if let Some(id) = from_server.map(str::trim).filter(|id| !id.is_empty() && !taken(id)) {
            return id.to_owned();
        }
        let mut n = index;
        loop {
            let id = format!("call_{n}");
            if !taken(&id) {
                return id;
            }
            n += 1;
        }
    }

    /// Parses every call's arguments. `stop` decides whether unparseable arguments were cut off (never repaired:
    /// closing a truncated string would hand the tool a truncated value as if it were complete).
    pub fn finish(self, stop: &StopReason) -> (Vec<ToolCall>, Vec<InvalidToolCall>) {
        let truncated = *stop == StopReason::MaxTokens;
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for call in self.calls {
            let parsed = if call.name.trim().is_empty() {
                Err("the call names no tool".to_owned())
            } else {
                parse_arguments(&call.arguments, truncated)
            };
            match parsed {
                Ok(arguments) => {
                    valid.push(ToolCall { id: call.id, name: call.name, arguments, raw_arguments: call.arguments })
                }
                Err(error) => {
                    tracing::debug!(id = %call.id, name = %call.name, %error, "invalid tool call arguments");
                    invalid.push(InvalidToolCall { id: call.id, name: call.name, raw: call.arguments, error })
                }
            }
        }
        (valid, invalid)
    }
}

/// The arguments object of a call, from the raw text the model produced.
pub(crate) fn parse_arguments(raw: &str, truncated: bool) -> Result<Value, String> {
    if raw.trim().is_empty() {
        // Tools without parameters: many servers send no arguments at all.
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(value) => into_object(value),
        Err(error) if truncated => Err(format!("they were cut off by the max_tokens limit ({error})")),
        Err(error) => match repair_json(raw) {
            Some(value) => {
                tracing::debug!(raw, "repaired tool call arguments");
                into_object(value)
            }
            None => Err(format!("they are not valid JSON: {error}")),
        },
    }
}

fn into_object(value: Value) -> Result<Value, String> {
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(Map::new())),
        // Some models encode the object twice: "{\"path\": \"a\"}".
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(inner @ Value::Object(_)) => Ok(inner),
            _ => Err("they are a JSON string, not an object".to_owned()),
        },
        Value::Array(_) => Err("they are a JSON array, not an object".to_owned()),
        Value::Bool(_) | Value::Number(_) => Err("they are a single JSON value, not an object".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::{PartialCall, PartialCalls, parse_arguments};
    use crate::types::StopReason;
    use serde_json::json;

    #[test]
    fn arguments_parse_or_explain() {
        assert_eq!(parse_arguments("", false), Ok(json!({})));
        assert_eq!(parse_arguments("null", false), Ok(json!({})));
        assert_eq!(parse_arguments(r#"{"a":1,}"#, false), Ok(json!({"a": 1})));
        assert_eq!(parse_arguments(r#""{\"a\":1}""#, false), Ok(json!({"a": 1})));
        assert!(parse_arguments("[1]", false).is_err());
        assert!(parse_arguments("garbage", false).is_err());
    }

    #[test]
    fn truncated_arguments_are_not_repaired() {
        assert!(parse_arguments(r#"{"content": "fn main() {"#, true).is_err());
        assert_eq!(parse_arguments(r#"{"content": "x"}"#, true), Ok(json!({"content": "x"})));
    }

    #[test]
    fn ids_are_unique() {
        let mut calls = PartialCalls::default();
        calls.calls.push(PartialCall { id: "call_1".into(), ..Default::default() });
        assert_eq!(calls.unique_id(1, Some("call_1")), "call_2");
        assert_eq!(calls.unique_id(1, Some("")), "call_2");
        assert_eq!(calls.unique_id(0, None), "call_0");
        assert_eq!(calls.unique_id(0, Some("abc")), "abc");
    }

    #[test]
    fn nameless_calls_are_invalid() {
        let mut calls = PartialCalls::default();
        calls.calls.push(PartialCall { id: "x".into(), name: String::new(), arguments: "{}".into() });
        let (valid, invalid) = calls.finish(&StopReason::ToolUse);
        assert!(valid.is_empty());
        assert_eq!(invalid.len(), 1);
    }
}
