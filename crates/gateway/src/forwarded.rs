//! What of a request besides its body goes upstream: the headers on an
//! allowlist, each with a value of a validated shape, and no query string
//! but the one constant Claude Code sends. Everything else stays here, and
//! what was dropped goes on the record (by name and digest, never the value).
//!
//! Query strings are refused rather than redacted: the model APIs take every
//! parameter in the body, so a query is only a side channel, and a scanner
//! only finds the secrets it knows. Refusing costs no client anything.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::config::ApiStyle;

/// A header, or one token of a list header, that was not forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The header's name.
    pub name: String,
    /// Why.
    pub why: String,
    /// What was dropped (for scanning and the digest; never recorded as is).
    pub value: String,
    /// The server-side tool family a dropped beta token turns on, if that is why.
    pub server_tool: Option<&'static str>,
}

impl Dropped {
    /// SHA-256 of the dropped value, hex.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.value.as_bytes()))
    }
}

/// The headers to send upstream, and what was held back.
#[derive(Debug, Default)]
pub struct HeaderPlan {
    /// Sent, with the value rebuilt from its validated parts.
    pub forward: Vec<(HeaderName, HeaderValue)>,
    /// Held back, and recorded.
    pub dropped: Vec<Dropped>,
}

/// Headers the gateway itself consumes or sets: neither forwarded nor worth a
/// record (framing, the caller's own credential, the content type it sets).
fn consumed(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-length"
            | "content-type"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "te"
            | "accept-encoding"
            | "expect"
            | "authorization"
            | "x-api-key"
    )
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// An Anthropic beta name: lowercase words joined by `-`, ending in a date
/// (`prompt-caching-2024-07-31`, `claude-code-20250219`).
pub fn is_beta_token(t: &str) -> bool {
    if t.len() > 64 || !t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return false;
    }
    // Short words only: a token's worth of characters does not fit in one.
    let words_then = |head: &str| !head.is_empty() && head.split('-').all(|w| (1..=16).contains(&w.len()));
    if t.len() > 11 && is_date(&t[t.len() - 10..]) && t.as_bytes()[t.len() - 11] == b'-' {
        return words_then(&t[..t.len() - 11]);
    }
    match t.rsplit_once('-') {
        Some((head, date)) => date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && words_then(head),
        None => false,
    }
}

/// An OpenAI beta switch: `responses=experimental`, `assistants=v2`.
fn is_openai_beta(t: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    t.split_once('=').is_some_and(|(k, v)| ok(k) && ok(v))
}

/// Decides, header by header, what goes upstream for a request to an `api`
/// upstream; `allow_server_tools` is the policy's list (a beta that turns on
/// a server-side tool it does not name is held back).
pub fn plan_headers(headers: &HeaderMap, api: ApiStyle, allow_server_tools: &[String]) -> HeaderPlan {
    let mut plan = HeaderPlan::default();
    for (name, value) in headers {
        let n = name.as_str();
        if consumed(n) {
            continue;
        }
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let drop = |why: &str| Dropped { name: n.into(), why: why.into(), value: text.clone(), server_tool: None };
        let forward: Option<String> = match (n, api) {
            ("anthropic-version", ApiStyle::Anthropic) if is_date(&text) => Some(text.clone()),
            ("anthropic-beta", ApiStyle::Anthropic) => {
                let mut kept = Vec::new();
                for token in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                    let dropped = |why: String, tool| Dropped {
                        name: n.into(),
                        why,
                        value: token.to_string(),
                        server_tool: tool,
                    };
                    if !is_beta_token(token) {
                        plan.dropped.push(dropped("not a beta name (words and a date)".into(), None));
                    } else if let Some(family) = crate::server_tools::beta_family(token)
                        .filter(|f| !crate::server_tools::allowed(f, allow_server_tools))
                    {
                        plan.dropped.push(dropped(
                            format!("turns on the server-side tool {family}, which the policy does not allow"),
                            Some(family),
                        ));
                    } else {
                        kept.push(token);
                    }
                }
                (!kept.is_empty()).then(|| kept.join(","))
            }
            ("openai-beta", ApiStyle::OpenAi) => {
                let tokens: Vec<&str> = text.split(',').map(str::trim).collect();
                if tokens.iter().all(|t| is_openai_beta(t)) {
                    Some(tokens.join(","))
                } else {
                    plan.dropped.push(drop("not a beta switch (name=value)"));
                    None
                }
            }
            ("accept", _) => {
                let media: Vec<&str> =
                    text.split(',').map(|part| part.split(';').next().unwrap_or_default().trim()).collect();
                if media.iter().all(|m| matches!(*m, "application/json" | "text/event-stream" | "*/*")) {
                    Some(media.join(", "))
                } else {
                    plan.dropped.push(drop("not an accepted media type (application/json, text/event-stream)"));
                    None
                }
            }
            ("anthropic-version", _) => {
                plan.dropped.push(drop("not a date, or not an Anthropic upstream"));
                None
            }
            ("anthropic-beta" | "openai-beta", _) => {
                plan.dropped.push(drop("not this upstream's API"));
                None
            }
            _ => {
                plan.dropped.push(drop("not on the gateway's header allowlist"));
                None
            }
        };
        // Rebuilt from validated parts, so it is always a valid value.
        if let Some(v) = forward.and_then(|v| HeaderValue::from_str(&v).ok()) {
            plan.forward.push((name.clone(), v));
        }
    }
    plan
}

/// A query string that was not forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request has a query string ({bytes} bytes); the model APIs take their parameters in the body, so the gateway forwards none (only Anthropic's `beta=true`)"
)]
pub struct QueryRefused {
    /// Its length.
    pub bytes: usize,
    /// SHA-256 of it, hex.
    pub sha256: String,
}

/// The query to send upstream: none, or the constant `beta=true` on an
/// Anthropic route (Claude Code asks for `/v1/messages?beta=true`).
pub fn check_query(api: ApiStyle, query: Option<&str>) -> Result<Option<&'static str>, QueryRefused> {
    match (api, query) {
        (_, None) | (_, Some("")) => Ok(None),
        (ApiStyle::Anthropic, Some("beta=true")) => Ok(Some("beta=true")),
        (_, Some(q)) => Err(QueryRefused { bytes: q.len(), sha256: hex::encode(Sha256::digest(q.as_bytes())) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// What real agents send: Claude Code and Codex CLI keep what their APIs need.
    #[test]
    fn real_agents_keep_what_their_apis_need() {
        let claude = headers(&[
            ("anthropic-version", "2023-06-01"),
            (
                "anthropic-beta",
                "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
            ),
            ("accept", "application/json"),
            ("x-stainless-os", "Linux"),
            ("user-agent", "claude-cli/2.1.197 (external, cli)"),
            ("anthropic-dangerous-direct-browser-access", "true"),
            ("x-api-key", "placeholder"),
            ("content-type", "application/json"),
        ]);
        let plan = plan_headers(&claude, ApiStyle::Anthropic, &[]);
        let sent: Vec<(String, String)> =
            plan.forward.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string())).collect();
        assert_eq!(
            sent,
            [
                ("anthropic-version".to_string(), "2023-06-01".to_string()),
                (
                    "anthropic-beta".into(),
                    "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
                        .into()
                ),
                ("accept".into(), "application/json".into()),
            ]
        );
        let dropped: Vec<&str> = plan.dropped.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(dropped, ["x-stainless-os", "user-agent", "anthropic-dangerous-direct-browser-access"]);

        let codex = headers(&[
            ("openai-beta", "responses=experimental"),
            ("session_id", "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
            ("originator", "codex_exec"),
            ("accept", "text/event-stream"),
        ]);
        let plan = plan_headers(&codex, ApiStyle::OpenAi, &[]);
        assert_eq!(plan.forward.len(), 2);
        assert_eq!(plan.dropped.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["session_id", "originator"]);
    }

    /// The rule this replaced: these names passed with their values verbatim.
    fn old_rule_forwards(name: &str) -> bool {
        ["anthropic-version", "anthropic-beta", "accept", "openai-beta"].contains(&name)
    }

    /// The old rule passed `accept` and `*-beta` verbatim: a secret rode along.
    #[test]
    fn a_secret_in_accept_or_a_beta_header_is_held_back() {
        let canary = "AKIAZ7Q3JXVB4HNW2KDE";
        assert!(["accept", "anthropic-beta", "anthropic-version", "openai-beta"].iter().all(|n| old_rule_forwards(n)));
        let h = headers(&[
            ("accept", &format!("application/json, text/{canary}")),
            ("anthropic-beta", &format!("prompt-caching-2024-07-31,{canary}")),
            ("anthropic-version", canary),
            ("openai-beta", canary),
        ]);
        let plan = plan_headers(&h, ApiStyle::Anthropic, &[]);
        for (_, v) in &plan.forward {
            assert!(!v.to_str().unwrap().contains(canary), "{v:?}");
        }
        assert_eq!(plan.forward.len(), 1, "{:?}", plan.forward);
        assert_eq!(plan.dropped.len(), 4);
    }

    #[test]
    fn betas_for_server_tools_are_held_back_unless_allowed() {
        let h = headers(&[("anthropic-beta", "web-fetch-2025-09-10,mcp-client-2025-04-04,prompt-caching-2024-07-31")]);
        let plan = plan_headers(&h, ApiStyle::Anthropic, &[]);
        assert_eq!(plan.forward[0].1, "prompt-caching-2024-07-31");
        assert_eq!(plan.dropped.iter().filter_map(|d| d.server_tool).collect::<Vec<_>>(), ["web_fetch", "mcp_servers"]);
        let plan = plan_headers(&h, ApiStyle::Anthropic, &["web_fetch".into()]);
        assert_eq!(plan.forward[0].1, "web-fetch-2025-09-10,prompt-caching-2024-07-31");
    }

    #[test]
    fn beta_names_have_a_shape() {
        assert!(is_beta_token("prompt-caching-2024-07-31"));
        assert!(is_beta_token("claude-code-20250219"));
        assert!(is_beta_token("context-1m-2025-08-07"));
        assert!(!is_beta_token("AKIAZ7Q3JXVB4HNW2KDE"));
        assert!(!is_beta_token("ghp-0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_beta_token("2024-07-31"));
    }

    #[test]
    fn query_strings_are_refused_but_claude_codes_constant() {
        assert_eq!(check_query(ApiStyle::Anthropic, Some("beta=true")), Ok(Some("beta=true")));
        assert_eq!(check_query(ApiStyle::OpenAi, None), Ok(None));
        let err = check_query(ApiStyle::OpenAi, Some("key=AKIAZ7Q3JXVB4HNW2KDE")).unwrap_err();
        assert_eq!(err.bytes, 24);
        assert!(!err.to_string().contains("AKIA"));
        assert!(check_query(ApiStyle::Anthropic, Some("beta=true&x=1")).is_err());
    }
}
