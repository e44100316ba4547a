//! Google's Gemini API (what Gemini CLI speaks), the third wire API the
//! gateway carries: `POST /v1beta/models/MODEL:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:countTokens`.
//!
//! It differs from the other two where the gateway looks: the model is named
//! in the path, not the body, so the path is parsed and checked here (and
//! rebuilt for the upstream from the checked name); the key may come as
//! `?key=` (consumed, never forwarded) and streaming is asked for with
//! `?alt=sse` (the one query parameter that leaves); server-side tools are
//! `tools[]` entries keyed by their kind (`googleSearch`, `codeExecution`,
//! `urlContext`, …) next to the client's `functionDeclarations`.
//!
//! ```
//! use airlock_gateway::gemini::{GeminiMethod, parse_path};
//!
//! let (model, method) = parse_path("/v1beta/models/gemini-2.5-pro:streamGenerateContent").unwrap().unwrap();
//! assert_eq!((model.as_str(), method), ("gemini-2.5-pro", GeminiMethod::StreamGenerateContent));
//! assert!(parse_path("/v1/messages").is_none());
//! ```

use airlock_redact::Redactor;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::body::{BodyError, Scrubbed, Step, redact_tree};
use crate::server_tools::Stripped;

/// Where the Gemini API's model routes live.
pub const MODELS_PREFIX: &str = "/v1beta/models/";

/// What a Gemini model route asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeminiMethod {
    /// `:generateContent`: one JSON answer.
    GenerateContent,
    /// `:streamGenerateContent`: an SSE stream with `?alt=sse` (a JSON array of chunks without).
    StreamGenerateContent,
    /// `:countTokens`: no answer from the model, a count.
    CountTokens,
}

impl GeminiMethod {
    /// The method as the path spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            GeminiMethod::GenerateContent => "generateContent",
            GeminiMethod::StreamGenerateContent => "streamGenerateContent",
            GeminiMethod::CountTokens => "countTokens",
        }
    }
}

/// A path under [`MODELS_PREFIX`] that is not a model route the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The method after `:` is not one the gateway serves.
    #[error("the gateway serves the Gemini API's :generateContent, :streamGenerateContent and :countTokens, not {0:?}")]
    Method(String),
    /// The model name could not be one (it goes into the upstream's path).
    #[error(
        "the model name in the path ({0} characters) is not a model name: 1 to 256 letters, digits, '.', '-' or '_'"
    )]
    Model(usize),
}

/// The model and method of a Gemini model route; `None` for a path that is
/// not under [`MODELS_PREFIX`] or has no `:method` (another API, or a
/// listing), an error for one that is but cannot be served.
pub fn parse_path(path: &str) -> Option<Result<(String, GeminiMethod), PathError>> {
    let rest = path.strip_prefix(MODELS_PREFIX)?;
    let (model, method) = rest.rsplit_once(':')?;
    let method = match method {
        "generateContent" => GeminiMethod::GenerateContent,
        "streamGenerateContent" => GeminiMethod::StreamGenerateContent,
        "countTokens" => GeminiMethod::CountTokens,
        other => return Some(Err(PathError::Method(other.chars().take(64).collect()))),
    };
    // Only characters that need no escaping and cannot change the path: no
    // `/`, `%`, `..` tricks reach the upstream's URL.
    let ok = (1..=256).contains(&model.len())
        && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !model.starts_with('.');
    if !ok {
        return Some(Err(PathError::Model(model.chars().count())));
    }
    Some(Ok((model.to_string(), method)))
}

/// A Gemini request's query, read: the key it presents (if any, consumed
/// here), and whether it asks for an SSE stream (the one parameter that is
/// forwarded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `key=`: the caller's key (the placeholder of a wrapped agent).
    pub key: Option<String>,
    /// `alt=sse`.
    pub sse: bool,
}

/// A Gemini query with more than the key and `alt=sse`: not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request's query string ({bytes} bytes) holds more than key= and alt=sse, the only parameters the gateway reads on the Gemini API; nothing else is forwarded"
)]
pub struct QueryRefused {
    /// Its length.
    pub bytes: usize,
    /// SHA-256 of it, hex.
    pub sha256: String,
}

/// Reads a Gemini route's query: `key` and `alt=sse` are understood, anything
/// else is refused (as on the other APIs, a query may carry anything).
pub fn read_query(query: Option<&str>) -> Result<Query, QueryRefused> {
    let mut out = Query::default();
    let Some(query) = query.filter(|q| !q.is_empty()) else { return Ok(out) };
    let refused = || QueryRefused { bytes: query.len(), sha256: hex::encode(Sha256::digest(query.as_bytes())) };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("alt", "sse")) if !out.sse => out.sse = true,
            Some(("key", value)) if out.key.is_none() && !value.is_empty() => {
                // Keys are URL-safe; anything escaped is not one.
                if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
                    return Err(refused());
                }
                out.key = Some(value.to_string());
            }
            _ => return Err(refused()),
        }
    }
    Ok(out)
}

/// The `key=` of a query, for authentication only (whether the rest of the
/// query may pass is [`read_query`]'s to say).
pub fn query_key(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("key=")).filter(|k| !k.is_empty())
}

/// Whether a `tools[]` entry's key names a tool the agent runs (the others
/// are run by Google: search, code execution, URL fetching, maps, …).
fn client_tool(kind: &str) -> bool {
    matches!(kind, "functionDeclarations")
}

/// A Gemini tool kind in the policy's spelling: `googleSearch` is `google_search`.
pub fn tool_family(kind: &str) -> String {
    let mut out = String::new();
    for c in kind.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Takes the server-side tools the policy does not allow out of `tools[]`
/// (an entry that holds only such tools goes; one that also declares
/// functions keeps those).
fn strip_server_tools(value: &mut Value, allow: &[String]) -> Vec<Stripped> {
    let mut out = Vec::new();
    let Some(Value::Array(tools)) = value.get_mut("tools") else { return out };
    for (i, tool) in tools.iter_mut().enumerate() {
        let Value::Object(map) = tool else { continue };
        let kinds: Vec<String> = map.keys().filter(|k| !client_tool(k)).cloned().collect();
        for kind in kinds {
            let family = tool_family(&kind);
            if crate::server_tools::allowed(&family, allow) {
                continue;
            }
            if let Some(removed) = map.remove(&kind) {
                let json = removed.to_string();
                out.push(Stripped {
                    tool: family,
                    field: format!("/tools/{i}/{kind}"),
                    sha256: hex::encode(Sha256::digest(json.as_bytes())),
                    bytes: json.len() as u64,
                });
            }
        }
    }
    tools.retain(|t| !t.as_object().is_some_and(serde_json::Map::is_empty));
    if tools.is_empty()
        && let Value::Object(map) = value
    {
        map.remove("tools");
    }
    out
}

/// Whether the string at `path` is a protocol field left unscanned: a
/// thought signature (an opaque base64 blob the model issued and wants back
/// unchanged; rewriting it breaks the conversation) with its shape. Every
/// other string, roles and ids included, is scanned.
fn is_protocol_field(path: &[Step], value: &str) -> bool {
    let signature = matches!(
        path,
        [Step::Key(c), Step::Index(_), Step::Key(p), Step::Index(_), Step::Key(s)]
            if c == "contents" && p == "parts" && s == "thoughtSignature"
    );
    signature && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b))
}

/// Parses a Gemini request body for `model` (from its path), takes out the
/// server-side tools the policy does not allow, redacts every string but
/// the protocol fields [`is_protocol_field`] names, and re-serializes it.
/// The model name is scanned too: a name that held a secret is refused,
/// since it goes into the upstream's path.
pub fn scrub(
    body: &[u8],
    model: &str,
    stream: bool,
    allow_server_tools: &[String],
    redactor: &mut Redactor,
) -> Result<Scrubbed, BodyError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(BodyError::NotObject);
    }
    if !redactor.redact(model).report.is_empty() {
        return Err(BodyError::BadModel(model.chars().count()));
    }
    let stripped = strip_server_tools(&mut value, allow_server_tools);
    let mut notes = Vec::new();
    redact_tree(&mut value, &mut Vec::new(), redactor, &mut notes, &is_protocol_field);
    let body = serde_json::to_vec(&value).map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(Scrubbed { body, notes, model: model.to_string(), stream, stripped })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use airlock_redact::Scanner;
    use serde_json::json;

    use super::*;

    const KEY: &str = "AKIAZ7Q3JXVB4HNW2KDE";

    #[test]
    fn model_routes_are_parsed_and_odd_names_refused() {
        let ok = |p: &str| parse_path(p).unwrap().unwrap();
        assert_eq!(ok("/v1beta/models/gemini-2.5-pro:generateContent").1, GeminiMethod::GenerateContent);
        assert_eq!(ok("/v1beta/models/gemini-3.5-flash-lite:countTokens").0, "gemini-3.5-flash-lite");
        assert!(parse_path("/v1beta/models").is_none());
        assert!(parse_path("/v1beta/models/gemini-2.5-pro").is_none());
        assert!(matches!(parse_path("/v1beta/models/m:embedContent"), Some(Err(PathError::Method(_)))));
        for bad in ["/v1beta/models/../x:generateContent", "/v1beta/models/a%2Fb:generateContent"] {
            assert!(matches!(parse_path(bad), Some(Err(PathError::Model(_)))), "{bad}");
        }
        assert!(matches!(parse_path("/v1beta/models/:generateContent"), Some(Err(PathError::Model(0)))));
    }

    #[test]
    fn the_query_gives_the_key_and_sse_and_nothing_else_passes() {
        assert_eq!(read_query(None), Ok(Query::default()));
        assert_eq!(
            read_query(Some("alt=sse&key=sk-airlock-1")),
            Ok(Query { key: Some("sk-airlock-1".into()), sse: true })
        );
        assert!(read_query(Some("alt=sse&x=1")).is_err());
        assert!(read_query(Some("key=a&key=b")).is_err());
        assert!(read_query(Some("key=a%20b")).is_err());
    }

    #[test]
    fn secrets_are_redacted_and_server_tools_removed() {
        let body = json!({
            "contents": [
                {"role": "user", "parts": [{"text": format!("my key is {KEY}")}]},
                {"role": "model", "parts": [{"functionCall": {"name": "run_shell_command",
                    "args": {"command": format!("echo {KEY}")}}, "thoughtSignature": "c2lnbmF0dXJl+/=="}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command",
                    "response": {"output": format!("AWS_ACCESS_KEY_ID={KEY}")}}}]},
            ],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}, {"googleSearch": {}}],
        });
        let mut redactor = Redactor::new(Arc::new(Scanner::builtin()));
        let out = scrub(&serde_json::to_vec(&body).unwrap(), "gemini-2.5-pro", true, &[], &mut redactor).unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert!(!text.contains(KEY), "{text}");
        assert!(text.contains("c2lnbmF0dXJl+/=="), "the thought signature is left as it is");
        assert_eq!(out.notes.len(), 3);
        assert_eq!(out.notes[0].field, "/contents/0/parts/0/text");
        assert_eq!(out.stripped.len(), 1);
        assert_eq!(
            (out.stripped[0].tool.as_str(), out.stripped[0].field.as_str()),
            ("google_search", "/tools/1/googleSearch")
        );
        let sent: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(sent["tools"], json!([{"functionDeclarations": [{"name": "run_shell_command"}]}]));
        assert!(out.stream);

        // Allowed by the policy, it stays; a search-only request loses its `tools`.
        let search = json!({"contents": [], "tools": [{"googleSearch": {}}]});
        let bytes = serde_json::to_vec(&search).unwrap();
        let kept = scrub(&bytes, "m", false, &["google_search".into()], &mut redactor).unwrap();
        assert!(kept.stripped.is_empty());
        let gone = scrub(&bytes, "m", false, &[], &mut redactor).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&gone.body).unwrap(), json!({"contents": []}));
        assert_eq!(scrub(b"[1]", "m", false, &[], &mut redactor).unwrap_err(), BodyError::NotObject);
    }
}
