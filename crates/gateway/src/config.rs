//! The gateway's configuration: where it listens, its limits, and the named
//! upstreams it may send to (the only destinations there are), routed by
//! model name.
//!
//! ```toml
//! [gateway]
//! listen = "127.0.0.1:8484"          # or "unix:/run/airlock/broker.sock"
//! max_request_bytes = 33554432
//! upstream_timeout_secs = 600        # for the whole answer; first byte within connect + this
//! header_timeout_secs = 10           # a client's request head must arrive within this (slowloris)
//! body_timeout_secs = 120            # and its body within this
//! max_connections = 256              # open at once; when full, the oldest idle one is closed
//! max_requests_per_key = 16          # requests in flight per key (or per local user)
//! allow_server_tools = []            # vendor-side tools let through, e.g. ["web_search"]
//! drain_seconds = 5                  # on SIGTERM: /readyz 503 and still serving this long, then
//! drain_timeout_secs = 30            # stop accepting; requests in flight get this long to finish
//! log_format = "text"                # or "json": one object a line (also --log-format)
//!
//! [[upstream]]
//! name = "vllm"
//! api = "openai"                     # or "anthropic", or "gemini"
//! base_url = "http://10.0.0.5:8000"  # the path (/v1/...) is appended
//! models = ["qwen2.5-coder-*", "llama-3.1-8b-instruct"]
//! api_key_env = "VLLM_API_KEY"       # or api_key_file = "/etc/airlock/vllm.key"; or neither
//!
//! [egress]                           # optional: a forward proxy for commands granted network
//! listen = "127.0.0.1:3128"          # or "unix:/path"
//! allow_domains = ["crates.io", "*.crates.io", "pypi.org"]
//! allow_ports = [443]                # default [443, 80]
//! allow_private = false              # loopback, RFC 1918, link-local, ... (default false)
//!
//! [roles.developer]                  # optional, per role (admin, developer, ci, auditor): see crate::access
//! models = ["qwen2.5-coder-*"]       # patterns; absent: every configured model
//! upstreams = ["vllm"]               # absent: every upstream
//! requests_per_minute = 60           # and tokens_per_minute, daily_tokens (UTC day), max_request_bytes
//!
//! [[witness]]                        # optional, repeatable: a witness cosigns each checkpoint (crate::witnessing)
//! name = "w1"                        # what the log calls it (beside its cosignatures, in witness_refused records)
//! url = "http://10.0.0.9:7380"       # its submission prefix (/add-checkpoint is appended)
//! key = "witness.example/w1+1a2b3c4d+BB..."  # its cosignature verifier key, from `airlock witness key`
//!
//! [oidc]                             # optional: principals from an SSO's ID tokens (see crate::oidc)
//! issuer = "https://login.example.com"
//! audience = "airlock-gateway"
//! roles = { "developers" = "developer", "auditors" = "auditor" }
//!
//! [telemetry]                        # optional: OTLP export (see crate::telemetry)
//! otlp_endpoint = "http://127.0.0.1:4318"
//! service_name = "airlock-gateway"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Which wire API an upstream speaks (OpenAI: `/v1/chat/completions`,
/// `/v1/responses`, `/v1/embeddings`, `/v1/models`; Anthropic: `/v1/messages`,
/// `/v1/messages/count_tokens`; Gemini: `/v1beta/models/MODEL:generateContent`,
/// `:streamGenerateContent`, `:countTokens`, see [`crate::gemini`]).
pub use airlock_model::ApiStyle;

/// Where the gateway listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address (the team gateway; callers authenticate with API keys).
    Tcp(std::net::SocketAddr),
    /// A Unix socket (the local broker; the caller is the socket's peer).
    Unix(PathBuf),
}

impl std::str::FromStr for Listen {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Listen, ConfigError> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ConfigError::Invalid("listen: `unix:` needs a path".into()));
            }
            return Ok(Listen::Unix(PathBuf::from(path)));
        }
        s.parse().map(Listen::Tcp).map_err(|_| {
            ConfigError::Invalid(format!(
                "listen: {s:?} is neither an address (127.0.0.1:8484) nor a Unix socket (unix:/path)"
            ))
        })
    }
}

/// One upstream, as configured.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its name, for logs and the audit log.
    pub name: String,
    /// Its wire API.
    pub api: ApiStyle,
    /// Base URL without the `/v1/...` path.
    pub base_url: String,
    /// Model name patterns (`*` matches any run of characters).
    pub models: Vec<String>,
    /// The credential the gateway sends (clients never supply it).
    pub api_key: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen.
    pub listen: Listen,
    /// Largest request body accepted.
    pub max_request_bytes: usize,
    /// Longest an upstream may take to answer in full.
    pub upstream_timeout: Duration,
    /// How long to wait for an upstream connection.
    pub connect_timeout: Duration,
    /// The upstreams, in order: the first whose patterns match a model serves it.
    pub upstreams: Vec<Upstream>,
    /// The egress proxy, when configured.
    pub egress: Option<EgressSettings>,
    /// Server-side tools (run by the vendor, outside the egress allowlist) that
    /// may stay in a request, by type or family (`web_search`, `mcp`); the rest
    /// are taken out and recorded. See [`crate::server_tools`].
    pub allow_server_tools: Vec<String>,
    /// How long a client has to send a request head (also how long an idle
    /// connection is kept); `None` only in tests that show what it guards against.
    pub header_timeout: Option<Duration>,
    /// How long a client has to send a request body.
    pub body_timeout: Option<Duration>,
    /// Connections open at once. When full, the connection that has waited
    /// longest without a request in progress is closed to make room; when
    /// every one has a request in progress, the newcomer gets 503.
    pub max_connections: usize,
    /// Requests in flight at once per key (or per local user); beyond, 429.
    pub max_requests_per_key: usize,
    /// What each role may use, and its limits ([`crate::access`]).
    pub roles: crate::access::Roles,
    /// On SIGTERM, how long `/readyz` says 503 while requests are still
    /// served (for a load balancer's health check to take the replica out).
    pub drain: Duration,
    /// Then, how long requests in flight (streams included) get to finish.
    pub drain_timeout: Duration,
    /// How logs are written.
    pub log_format: crate::ops::LogFormat,
    /// OTLP export, when configured.
    pub telemetry: Option<crate::telemetry::TelemetryConfig>,
    /// The witnesses each new checkpoint is sent to ([`crate::witnessing`]).
    pub witnesses: Vec<crate::witnessing::WitnessSettings>,
    /// `[store] url`: the PostgreSQL database the audit log lives in, shared
    /// by every replica (`${VAR}` expanded); `None`: SQLite in the data folder.
    pub store_url: Option<String>,
    /// `[oidc]`: bearer JWTs verified against an identity provider ([`crate::oidc`]).
    pub oidc: Option<crate::oidc::OidcConfig>,
}

/// The egress proxy's settings.
#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// Where it listens.
    pub listen: Listen,
    /// What it allows (the rest of [`crate::egress::EgressConfig`] at its defaults).
    pub config: crate::egress::EgressConfig,
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value makes no sense.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    gateway: GatewaySection,
    #[serde(default)]
    upstream: Vec<UpstreamSection>,
    egress: Option<EgressSection>,
    #[serde(default)]
    roles: crate::access::Roles,
    telemetry: Option<crate::telemetry::TelemetrySection>,
    #[serde(default)]
    witness: Vec<crate::witnessing::WitnessSection>,
    store: Option<StoreSection>,
    oidc: Option<crate::oidc::OidcSection>,
}

/// `[store]`: where the audit log lives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    /// `postgresql://user:${AIRLOCK_DB_PASSWORD}@db/airlock?sslmode=verify-full`.
    url: String,
}

/// Replaces each `${NAME}` in `text` by the variable's value: an unset or
/// empty variable, or an unclosed `${`, is an error naming it (never the
/// text, which may hold a secret once expanded).
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| "an unclosed ${ (write ${NAME})".to_string())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{name}}} is not a variable name (letters, digits, _)"));
        }
        let value = env(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("${{{name}}} is not set\nhint: export {name}=... before starting the gateway"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressSection {
    listen: String,
    allow_domains: Vec<String>,
    allow_ports: Option<Vec<u16>>,
    #[serde(default)]
    allow_private: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct GatewaySection {
    listen: Option<String>,
    max_request_bytes: Option<usize>,
    upstream_timeout_secs: Option<u64>,
    connect_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_requests_per_key: Option<usize>,
    allow_server_tools: Option<Vec<String>>,
    drain_seconds: Option<u64>,
    drain_timeout_secs: Option<u64>,
    log_format: Option<crate::ops::LogFormat>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamSection {
    name: String,
    api: ApiStyle,
    base_url: String,
    models: Vec<String>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
}

/// The default listening address of the team gateway.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8484";

impl GatewayConfig {
    /// Reads and checks a configuration file. `env` looks up variables (for
    /// `api_key_env`), so tests need not touch the process environment.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        GatewayConfig::parse(&text, path, env)
    }

    /// Parses configuration text (`origin` names it in errors).
    pub fn parse(
        text: &str,
        origin: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GatewayConfig, ConfigError> {
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.into(), message: e.to_string() })?;
        let listen = file.gateway.listen.as_deref().unwrap_or(DEFAULT_LISTEN).parse()?;
        let mut upstreams = Vec::new();
        for u in file.upstream {
            let bad =
                |what: String| ConfigError::Invalid(format!("{}: upstream {:?}: {what}", origin.display(), u.name));
            if u.name.is_empty() || u.name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("the name must be non-empty, without spaces".into()));
            }
            if upstreams.iter().any(|x: &Upstream| x.name == u.name) {
                return Err(bad("the name is used twice".into()));
            }
            let url = reqwest::Url::parse(&u.base_url).map_err(|e| bad(format!("base_url: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(bad("base_url must be an http:// or https:// URL with a host".into()));
            }
            for version in ["/v1", "/v1beta"] {
                if url.path().trim_end_matches('/').ends_with(version) {
                    return Err(bad(format!(
                        "base_url {} ends in {version}; the gateway appends the whole {version}/... path\nhint: write {}",
                        u.base_url,
                        u.base_url.trim_end_matches('/').trim_end_matches(version)
                    )));
                }
            }
            if u.models.is_empty() || u.models.iter().any(String::is_empty) {
                return Err(bad("models must list at least one non-empty name or pattern".into()));
            }
            let api_key = match (&u.api_key_env, &u.api_key_file) {
                (Some(_), Some(_)) => return Err(bad("give api_key_env or api_key_file, not both".into())),
                (Some(var), None) => Some(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    bad(format!("api_key_env: ${var} is not set\nhint: export {var}=... before starting the gateway"))
                })?),
                (None, Some(file)) => Some(
                    std::fs::read_to_string(file)
                        .map_err(|e| bad(format!("api_key_file {}: {e}", file.display())))?
                        .trim()
                        .to_string(),
                ),
                (None, None) => None,
            };
            upstreams.push(Upstream {
                name: u.name,
                api: u.api,
                base_url: u.base_url.trim_end_matches('/').to_string(),
                models: u.models,
                api_key,
            });
        }
        let egress = match file.egress {
            None => None,
            Some(e) => {
                let mut config = crate::egress::EgressConfig::default();
                for domain in &e.allow_domains {
                    let pattern = domain.strip_prefix("*.").unwrap_or(domain);
                    crate::egress::check_host(
                        pattern,
                        &crate::egress::EgressConfig { allow_domains: vec![pattern.to_string()], ..Default::default() },
                    )
                    .map_err(|err| {
                        ConfigError::Invalid(format!("{}: egress.allow_domains: {domain:?}: {err}", origin.display()))
                    })?;
                }
                config.allow_domains = e.allow_domains;
                if let Some(ports) = e.allow_ports {
                    config.allow_ports = ports;
                }
                config.allow_private = e.allow_private;
                Some(EgressSettings { listen: e.listen.parse()?, config })
            }
        };
        let secs = |v: Option<u64>, default: u64| Duration::from_secs(v.unwrap_or(default));
        let g = &file.gateway;
        for (name, value) in [
            ("header_timeout_secs", g.header_timeout_secs),
            ("body_timeout_secs", g.body_timeout_secs),
            ("max_connections", g.max_connections.map(|n| n as u64)),
            ("max_requests_per_key", g.max_requests_per_key.map(|n| n as u64)),
        ] {
            if value == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "{}: gateway.{name} must be at least 1: 0 would refuse everything or wait forever",
                    origin.display()
                )));
            }
        }
        let names: Vec<&str> = upstreams.iter().map(|u| u.name.as_str()).collect();
        file.roles.check(&names).map_err(|e| ConfigError::Invalid(format!("{}: {e}", origin.display())))?;
        Ok(GatewayConfig {
            roles: file.roles.clone(),
            listen,
            max_request_bytes: file.gateway.max_request_bytes.unwrap_or(32 << 20),
            upstream_timeout: secs(file.gateway.upstream_timeout_secs, 600),
            connect_timeout: secs(file.gateway.connect_timeout_secs, 10),
            upstreams,
            egress,
            allow_server_tools: g.allow_server_tools.clone().unwrap_or_default(),
            header_timeout: Some(secs(g.header_timeout_secs, 10)),
            body_timeout: Some(secs(g.body_timeout_secs, 120)),
            max_connections: g.max_connections.unwrap_or(256),
            max_requests_per_key: g.max_requests_per_key.unwrap_or(16),
            drain: secs(g.drain_seconds, 5),
            drain_timeout: secs(g.drain_timeout_secs, 30),
            log_format: g.log_format.unwrap_or_default(),
            telemetry: file.telemetry.map(|t| t.check(origin)).transpose()?,
            witnesses: crate::witnessing::check_witnesses(file.witness, origin)?,
            oidc: file.oidc.map(|o| o.check(origin)).transpose()?,
            store_url: match file.store {
                None => None,
                Some(store) => {
                    let bad = |what: String| ConfigError::Invalid(format!("{}: store.url: {what}", origin.display()));
                    // Checked once expanded: the whole URL may come from the environment.
                    let url = expand_env(&store.url, env).map_err(bad)?;
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        return Err(bad("must be a postgresql:// URL".into()));
                    }
                    Some(url)
                }
            },
        })
    }

    /// The upstream that serves `model`: the first whose patterns match.
    pub fn route(&self, model: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.models.iter().any(|p| glob_match(p, model)))
    }
}

/// `*` matches any run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
        GatewayConfig::parse(text, Path::new("gateway.toml"), &|v| (v == "KEY").then(|| "sk-upstream".to_string()))
    }

    #[test]
    fn the_store_url_expands_variables_and_names_a_missing_one() {
        let upstream =
            "[[upstream]]\nname = \"l\"\napi = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\nmodels = [\"*\"]\n";
        assert_eq!(parse(upstream).unwrap().store_url, None);
        let c = parse(&format!("[store]\nurl = \"postgresql://gw:${{KEY}}@db/airlock\"\n{upstream}")).unwrap();
        assert_eq!(c.store_url.as_deref(), Some("postgresql://gw:sk-upstream@db/airlock"));
        let e = parse(&format!("[store]\nurl = \"postgresql://gw:${{NOPE}}@db/airlock\"\n{upstream}")).unwrap_err();
        assert!(e.to_string().contains("store.url: ${NOPE} is not set"), "{e}");
        let e = parse(&format!("[store]\nurl = \"mysql://db\"\n{upstream}")).unwrap_err();
        assert!(e.to_string().contains("postgresql://"), "{e}");
        let env = |_: &str| Some("v".to_string());
        assert_eq!(expand_env("a${X}b${Y_2}", &env).unwrap(), "avbv");
        assert!(expand_env("a${X", &env).unwrap_err().contains("unclosed"));
        assert!(expand_env("${a-b}", &env).unwrap_err().contains("not a variable name"));
    }

    #[test]
    fn models_route_to_the_first_matching_upstream() {
        let c = parse(
            r#"
            [[upstream]]
            name = "local"
            api = "openai"
            base_url = "http://127.0.0.1:8000/"
            models = ["qwen*", "llama-3.1-8b"]
            [[upstream]]
            name = "claude"
            api = "anthropic"
            base_url = "https://api.anthropic.com"
            models = ["claude-*"]
            api_key_env = "KEY"
            [[upstream]]
            name = "google"
            api = "gemini"
            base_url = "https://generativelanguage.googleapis.com"
            models = ["gemini-*"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listen, Listen::Tcp("127.0.0.1:8484".parse().unwrap()));
        assert_eq!(c.route("qwen2.5-coder").unwrap().name, "local");
        assert_eq!(c.route("claude-sonnet-4").unwrap().api_key.as_deref(), Some("sk-upstream"));
        assert_eq!(c.upstreams[0].base_url, "http://127.0.0.1:8000");
        assert_eq!(c.route("gemini-2.5-pro").unwrap().api, ApiStyle::Gemini);
        assert!(c.route("gpt-4o").is_none());
        assert!(c.route("llama-3.1-8b-x").is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let base = "[[upstream]]\nname = \"u\"\napi = \"openai\"\nmodels = [\"m\"]\n";
        let err = |extra: &str| parse(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(err("base_url = \"http://h/v1\"").contains("ends in /v1"));
        assert!(err("base_url = \"http://h/v1beta/\"").contains("ends in /v1beta"));
        assert!(err("base_url = \"ftp://h\"").contains("http:// or https://"));
        assert!(err("base_url = \"http://h\"\napi_key_env = \"NOPE\"").contains("$NOPE is not set"));
        assert!(err("base_url = \"http://h\"\ncolour = 1").contains("unknown field"));
        assert!(parse("[gateway]\nlisten = \"nowhere\"").unwrap_err().to_string().contains("neither an address"));
        assert_eq!(
            parse("[gateway]\nlisten = \"unix:/run/a.sock\"").unwrap().listen,
            Listen::Unix("/run/a.sock".into())
        );
    }

    #[test]
    fn the_egress_proxy_is_configured_with_checked_domains() {
        let c =
            parse("[egress]\nlisten = \"127.0.0.1:3128\"\nallow_domains = [\"crates.io\", \"*.pypi.org\"]\n").unwrap();
        let e = c.egress.unwrap();
        assert_eq!(e.listen, Listen::Tcp("127.0.0.1:3128".parse().unwrap()));
        assert_eq!(e.config.allow_ports, [443, 80]);
        assert!(!e.config.allow_private);
        let err = parse("[egress]\nlisten = \"127.0.0.1:3128\"\nallow_domains = [\"bad host\"]\n").unwrap_err();
        assert!(err.to_string().contains("egress.allow_domains"), "{err}");
        assert!(parse("").unwrap().egress.is_none());
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_match("gpt-*", "gpt-4o"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
        assert!(!glob_match("gpt-*", "xgpt-4"));
        assert!(glob_match("exact", "exact") && !glob_match("exact", "exactly"));
    }
}
