//! Principals from an OpenID Connect provider's ID tokens: a company's SSO
//! names the developer in each audit record.
//!
//! ```toml
//! [oidc]
//! issuer = "https://login.example.com"      # the tokens' `iss`, exactly
//! audience = "airlock-gateway"              # the client id the tokens must be for (`aud`)
//! jwks_url = "https://login.example.com/keys" # optional; default: the issuer's
//!                                           # /.well-known/openid-configuration `jwks_uri`
//! principal_claim = "email"                 # default; `sub` when absent (or email_verified = false)
//! role_claim = "groups"                     # default
//! roles = { "airlock-admins" = "admin", "developers" = "developer", "auditors" = "auditor" }
//! default_role = "developer"                # optional; absent: a token whose groups map to no role gets 403
//! ```
//!
//! A bearer token that is a JWT (three base64url parts) goes here when
//! `[oidc]` is configured, never to the key table. It must be signed (RS256,
//! RS384, RS512, PS256, PS384, PS512, ES256 or ES384; `none` and the HMAC
//! algorithms are refused, so the public key cannot serve as a shared
//! secret) by the key of the provider's JWKS that its `kid` names, with
//! `iss`, `aud` and `exp` present and right, and `exp`/`nbf` within
//! [`LEEWAY_SECS`] of now. The principal is `oidc:<claim value>`, a person,
//! with the role its groups map to (the first of admin, developer, ci,
//! auditor that any of them maps to) and that role's limits from
//! `[roles.*]`.
//!
//! The JWKS is fetched at start, again when it is an hour old, and when a
//! token names a key it does not hold, at most once per
//! [`MIN_REFRESH`] (so a flood of made-up `kid`s cannot make the gateway
//! hammer the provider). Fail closed: without a key set no token is
//! accepted. Fetches go only to the configured (or discovered) URL, over
//! https, or http to a loopback address; redirects are not followed. The
//! token itself is never logged nor recorded.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::jwt::{self, Alg, SetKey};
use serde::Deserialize;

use crate::access::{PrincipalKind, Role};
use crate::config::ConfigError;
use crate::keys::KeyPolicy;

/// How far `exp` and `nbf` may be off (clock skew between provider and gateway).
pub const LEEWAY_SECS: u64 = 60;
/// The least time between two fetches of the key set on demand.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);
/// The age at which the key set is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);
/// The age beyond which a key set that could not be refreshed is no longer trusted.
pub const MAX_STALE: Duration = Duration::from_secs(24 * 3600);
/// The largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// `[oidc]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    principal_claim: Option<String>,
    role_claim: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, Role>,
    default_role: Option<Role>,
}

/// `[oidc]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// The tokens' `iss`, compared exactly.
    pub issuer: String,
    /// The tokens' `aud` must hold this (the gateway's client id).
    pub audience: String,
    /// Where the key set is; `None`: from the issuer's discovery document.
    pub jwks_url: Option<reqwest::Url>,
    /// The claim that names the principal (`email` by default; `sub` when it is absent).
    pub principal_claim: String,
    /// The claim holding the groups (`groups` by default).
    pub role_claim: String,
    /// Group → role.
    pub roles: BTreeMap<String, Role>,
    /// The role of a token whose groups map to none; `None`: such a token is refused.
    pub default_role: Option<Role>,
}

impl OidcSection {
    /// Checks the section (`origin` names the file in errors).
    pub fn check(self, origin: &Path) -> Result<OidcConfig, ConfigError> {
        let bad = |what: String| ConfigError::Invalid(format!("{}: oidc.{what}", origin.display()));
        let issuer_url = reqwest::Url::parse(&self.issuer).map_err(|e| bad(format!("issuer: {e}")))?;
        fetchable(&issuer_url).map_err(|e| bad(format!("issuer: {e}")))?;
        if self.audience.trim().is_empty() {
            return Err(bad("audience: must name the client id the tokens are issued for".into()));
        }
        let jwks_url = match self.jwks_url {
            None => None,
            Some(u) => {
                let url = reqwest::Url::parse(&u).map_err(|e| bad(format!("jwks_url: {e}")))?;
                fetchable(&url).map_err(|e| bad(format!("jwks_url: {e}")))?;
                Some(url)
            }
        };
        let claim = |name: &str, v: Option<String>, default: &str| match v {
            Some(c) if c.trim().is_empty() => Err(bad(format!("{name}: must not be empty"))),
            Some(c) => Ok(c),
            None => Ok(default.to_string()),
        };
        if self.roles.keys().any(|g| g.is_empty()) {
            return Err(bad("roles: a group name is empty".into()));
        }
        Ok(OidcConfig {
            issuer: self.issuer,
            audience: self.audience,
            jwks_url,
            principal_claim: claim("principal_claim", self.principal_claim, "email")?,
            role_claim: claim("role_claim", self.role_claim, "groups")?,
            roles: self.roles,
            default_role: self.default_role,
        })
    }
}

/// Whether the gateway may fetch from `url`: https, or http to a loopback address.
pub fn fetchable(url: &reqwest::Url) -> Result<(), String> {
    let Some(host) = url.host_str() else {
        return Err(format!("{url} has no host"));
    };
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>();
    let loopback = host == "localhost" || ip.is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("{url} must be an https:// URL (http:// only to a loopback address)")),
    }
}

/// The bearer token of a request when it is a JWT (three non-empty base64url parts).
pub fn bearer_jwt(headers: &axum::http::HeaderMap) -> Option<&str> {
    let token = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?.trim();
    let parts: Vec<&str> = token.split('.').collect();
    let base64url = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (parts.len() == 3 && parts.iter().all(base64url)).then_some(token)
}

/// Why a token gives no principal.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OidcError {
    /// Not a JWT with a header this gateway reads (an `alg` of `none` lands here).
    #[error("the bearer token is not a well-formed signed JWT (alg \"none\" is refused)")]
    Malformed,
    /// An algorithm not accepted.
    #[error("the token is signed with {0}: only RS256/384/512, PS256/384/512, ES256 and ES384 are accepted")]
    Algorithm(String),
    /// No `kid` in the header.
    #[error("the token's header names no key (kid)")]
    NoKid,
    /// The key set holds no key by that id (after a refresh, or a refresh was too recent).
    #[error("the identity provider's key set has no key {0:?}")]
    UnknownKey(String),
    /// The key set could not be had.
    #[error("the gateway has no key set from the identity provider, so no token is accepted: {0}")]
    NoKeys(String),
    /// `exp` passed (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` not reached (beyond the leeway).
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was issued by another issuer than the gateway's oidc.issuer")]
    Issuer,
    /// `aud` does not hold the configured audience.
    #[error("the token is not for this gateway (aud is not oidc.audience)")]
    Audience,
    /// The signature does not verify (a tampered token lands here).
    #[error("the token's signature does not verify")]
    Signature,
    /// A required claim is missing or malformed.
    #[error("the token's claims are not acceptable: {0}")]
    Claims(String),
    /// The groups map to no role and there is no default role.
    #[error("the token's {0} claim maps to no role of this gateway (oidc.roles), and oidc.default_role is not set")]
    NoRole(String),
}

impl OidcError {
    /// The HTTP status: 403 when the token is good but gives no role, else 401.
    pub fn status(&self) -> u16 {
        match self {
            OidcError::NoRole(_) => 403,
            _ => 401,
        }
    }

    /// The refusal's reason, as telemetry counts it.
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::NoRole(_) => "role",
            _ => "unauthenticated",
        }
    }
}

/// The key set as last fetched.
struct KeySet {
    keys: HashMap<String, Arc<SetKey>>,
    fetched: Instant,
}

/// What the fetching side remembers.
#[derive(Default)]
struct Fetching {
    /// The last fetch on demand (not the one at start).
    last_attempt: Option<Instant>,
    /// The key set's URL, once discovered.
    jwks_url: Option<reqwest::Url>,
    /// Why the last fetch failed.
    last_error: Option<String>,
}

/// Whether to fetch the key set before looking a key up: there is none, it
/// is an hour old, or it lacks the key; and the last fetch on demand is at
/// least [`MIN_REFRESH`] ago.
pub fn fetch_due(set_age: Option<Duration>, has_key: bool, since_last_attempt: Option<Duration>) -> bool {
    let wanted = match set_age {
        None => true,
        Some(age) => age >= MAX_AGE || !has_key,
    };
    wanted && since_last_attempt.is_none_or(|d| d >= MIN_REFRESH)
}

/// Verifies ID tokens against the provider's key set.
pub struct Verifier {
    config: OidcConfig,
    client: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    fetching: tokio::sync::Mutex<Fetching>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `config`; with a Tokio runtime at hand, the key set is fetched now, in the background.
    pub fn start(config: OidcConfig) -> Result<Arc<Verifier>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        let verifier = Arc::new(Verifier {
            config,
            client,
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(Fetching::default()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let warm = Arc::clone(&verifier);
            runtime.spawn(async move {
                let mut fetching = warm.fetching.lock().await;
                if warm.current().is_none() {
                    warm.fetch(&mut fetching).await;
                }
            });
        }
        Ok(verifier)
    }

    /// Its configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The key set, unless there is none or it is too stale to trust.
    fn current(&self) -> Option<Arc<KeySet>> {
        let keys = match self.keys.read() {
            Ok(k) => k,
            Err(poisoned) => poisoned.into_inner(),
        };
        keys.as_ref().filter(|s| s.fetched.elapsed() < MAX_STALE).cloned()
    }

    /// The key named `kid`, fetching the set when due.
    async fn key(&self, kid: &str) -> Result<Arc<SetKey>, OidcError> {
        let lookup = |set: &Option<Arc<KeySet>>| set.as_ref().and_then(|s| s.keys.get(kid).cloned());
        let set = self.current();
        if let (Some(s), Some(k)) = (&set, lookup(&set))
            && s.fetched.elapsed() < MAX_AGE
        {
            return Ok(k);
        }
        let mut fetching = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let set = self.current();
        let found = lookup(&set);
        let age = set.as_ref().map(|s| s.fetched.elapsed());
        if fetch_due(age, found.is_some(), fetching.last_attempt.map(|t| t.elapsed())) {
            fetching.last_attempt = Some(Instant::now());
            self.fetch(&mut fetching).await;
        }
        let set = self.current();
        match (&set, lookup(&set)) {
            (_, Some(k)) => Ok(k),
            (Some(_), None) => Err(OidcError::UnknownKey(kid.chars().take(64).collect())),
            (None, None) => Err(OidcError::NoKeys(
                fetching.last_error.clone().unwrap_or_else(|| "it has not been fetched yet".into()),
            )),
        }
    }

    /// Fetches the key set (discovering its URL first if need be); on
    /// failure the previous set stays, and the reason is logged and kept.
    async fn fetch(&self, fetching: &mut Fetching) {
        match self.fetch_set(fetching).await {
            Ok(set) => {
                tracing::info!(keys = set.keys.len(), "fetched the identity provider's key set");
                fetching.last_error = None;
                let mut keys = match self.keys.write() {
                    Ok(k) => k,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *keys = Some(Arc::new(set));
            }
            Err(e) => {
                tracing::error!("cannot fetch the identity provider's key set: {e}");
                fetching.last_error = Some(e);
            }
        }
    }

    async fn fetch_set(&self, fetching: &mut Fetching) -> Result<KeySet, String> {
        let url = match (&self.config.jwks_url, &fetching.jwks_url) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let discovery =
                    format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let url = reqwest::Url::parse(&discovery).map_err(|e| format!("{discovery}: {e}"))?;
                let doc = self.get_json(&url).await?;
                if doc["issuer"].as_str() != Some(self.config.issuer.as_str()) {
                    return Err(format!("{url} names another issuer than oidc.issuer"));
                }
                let jwks = doc["jwks_uri"].as_str().ok_or_else(|| format!("{url} has no jwks_uri"))?;
                let jwks = reqwest::Url::parse(jwks).map_err(|e| format!("{url}: jwks_uri: {e}"))?;
                fetchable(&jwks)?;
                fetching.jwks_url = Some(jwks.clone());
                jwks
            }
        };
        let doc = self.get_json(&url).await?;
        let listed = doc["keys"].as_array().ok_or_else(|| format!("{url} is not a key set (no \"keys\")"))?;
        let mut keys = HashMap::new();
        for value in listed {
            // A key this gateway cannot use (another type, another use, no id) is passed over.
            let Some(key) = SetKey::from_jwk(value) else { continue };
            keys.insert(key.kid.clone(), Arc::new(key));
        }
        if keys.is_empty() {
            return Err(format!("{url} holds no RSA or EC signing key with a kid"));
        }
        Ok(KeySet { keys, fetched: Instant::now() })
    }

    async fn get_json(&self, url: &reqwest::Url) -> Result<serde_json::Value, String> {
        let mut response = self.client.get(url.clone()).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url} sent more than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
    }

    /// The principal an ID token names, or why it names none.
    pub async fn principal(&self, token: &str) -> Result<KeyPolicy, OidcError> {
        let parts = jwt::parts(token).ok_or(OidcError::Malformed)?;
        if parts.alg == "none" {
            return Err(OidcError::Malformed);
        }
        let alg = Alg::parse(&parts.alg).ok_or_else(|| OidcError::Algorithm(parts.alg.clone()))?;
        let kid = parts.kid.clone().ok_or(OidcError::NoKid)?;
        let key = self.key(&kid).await?;
        if key.alg.is_some_and(|a| a != alg) || !key.key.fits(alg) {
            return Err(OidcError::Algorithm(format!("{alg:?}, not the algorithm its key is for")));
        }
        if !key.key.verify(alg, parts.signed, &parts.signature) {
            return Err(OidcError::Signature);
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        check_claims(&parts.claims, &self.config, now)?;
        policy(&self.config, &parts.claims)
    }
}

/// Checks the registered claims of a token whose signature verified:
/// `exp` (required) and `nbf` within [`LEEWAY_SECS`] of `now`, `iss` the
/// configured issuer, `aud` (a string or a list) holding the audience.
pub fn check_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    config: &OidcConfig,
    now: u64,
) -> Result<(), OidcError> {
    let time = |name: &str| -> Result<Option<u64>, OidcError> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or_else(|| OidcError::Claims(format!("{name} is malformed"))),
        }
    };
    let exp = time("exp")?.ok_or_else(|| OidcError::Claims("no exp claim".into()))?;
    if exp.saturating_add(LEEWAY_SECS) <= now {
        return Err(OidcError::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS)) {
        return Err(OidcError::NotYetValid);
    }
    match claims.get("iss") {
        None => return Err(OidcError::Claims("no iss claim".into())),
        Some(iss) if iss.as_str() != Some(config.issuer.as_str()) => return Err(OidcError::Issuer),
        Some(_) => {}
    }
    let audience = config.audience.as_str();
    match claims.get("aud") {
        None => Err(OidcError::Claims("no aud claim".into())),
        Some(serde_json::Value::String(a)) if a == audience => Ok(()),
        Some(serde_json::Value::Array(list)) if list.iter().any(|a| a.as_str() == Some(audience)) => Ok(()),
        Some(_) => Err(OidcError::Audience),
    }
}

/// The principal verified claims name: `oidc:<principal claim>` (or
/// `oidc:<sub>`), a person, with the role its groups map to.
pub fn policy(
    config: &OidcConfig,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<KeyPolicy, OidcError> {
    let usable = |claim: &str| {
        let value = claims.get(claim)?.as_str()?;
        // An address the provider has not verified does not name anyone.
        if claim == "email" && claims.get("email_verified").and_then(|v| v.as_bool()) == Some(false) {
            return None;
        }
        (!value.is_empty() && value.len() <= 256 && !value.chars().any(char::is_control)).then_some(value)
    };
    let name = usable(&config.principal_claim)
        .or_else(|| usable("sub"))
        .ok_or_else(|| OidcError::Claims(format!("neither {} nor sub names the principal", config.principal_claim)))?;
    let groups: Vec<&str> = match claims.get(&config.role_claim) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|g| g.as_str()).collect(),
        Some(serde_json::Value::String(g)) => vec![g.as_str()],
        _ => Vec::new(),
    };
    let mapped: Vec<Role> = groups.iter().filter_map(|g| config.roles.get(*g).copied()).collect();
    let role = Role::ALL
        .into_iter()
        .find(|r| mapped.contains(r))
        .or(config.default_role)
        .ok_or_else(|| OidcError::NoRole(config.role_claim.clone()))?;
    Ok(KeyPolicy { kind: PrincipalKind::Person, ..KeyPolicy::new(format!("oidc:{name}"), role) })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> OidcConfig {
        let section: OidcSection = toml::from_str(
            r#"issuer = "https://login.example.com"
               audience = "airlock-gateway"
               roles = { "airlock-admins" = "admin", "developers" = "developer", "auditors" = "auditor" }"#,
        )
        .unwrap();
        section.check(Path::new("gateway.toml")).unwrap()
    }

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_are_email_and_groups() {
        let c = config();
        assert_eq!((c.principal_claim.as_str(), c.role_claim.as_str(), c.jwks_url), ("email", "groups", None));
    }

    #[test]
    fn fetches_only_over_https_or_to_loopback() {
        let ok = |u: &str| fetchable(&reqwest::Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://login.example.com/keys"));
        assert!(ok("http://127.0.0.1:8080/keys") && ok("http://[::1]/keys") && ok("http://localhost/keys"));
        assert!(!ok("http://login.example.com/keys") && !ok("ftp://127.0.0.1/keys"));
        let section: OidcSection = toml::from_str("issuer = \"http://login.example.com\"\naudience = \"a\"").unwrap();
        let e = section.check(Path::new("g.toml")).unwrap_err().to_string();
        assert!(e.contains("oidc.issuer") && e.contains("https://"), "{e}");
    }

    #[test]
    fn unknown_fields_and_roles_are_refused() {
        assert!(
            toml::from_str::<OidcSection>("issuer = \"https://x\"\naudience = \"a\"\nclient_secret = \"s\"").is_err()
        );
        assert!(
            toml::from_str::<OidcSection>("issuer = \"https://x\"\naudience = \"a\"\nroles = { g = \"root\" }")
                .is_err()
        );
    }

    #[test]
    fn the_first_role_in_order_wins_and_unmapped_groups_are_refused() {
        let c = config();
        let p = policy(&c, &claims(serde_json::json!({"email": "a@x", "groups": ["auditors", "developers"]}))).unwrap();
        assert_eq!((p.name.as_str(), p.role, p.kind), ("oidc:a@x", Role::Developer, PrincipalKind::Person));
        let none = policy(&c, &claims(serde_json::json!({"email": "a@x", "groups": ["sales"]})));
        assert_eq!(none.unwrap_err(), OidcError::NoRole("groups".into()));
        let c = OidcConfig { default_role: Some(Role::Ci), ..c };
        assert_eq!(policy(&c, &claims(serde_json::json!({"sub": "s1"}))).unwrap().role, Role::Ci);
    }

    #[test]
    fn an_unverified_email_falls_back_to_sub() {
        let c = OidcConfig { default_role: Some(Role::Developer), ..config() };
        let p = policy(&c, &claims(serde_json::json!({"email": "boss@x", "email_verified": false, "sub": "u-17"})));
        assert_eq!(p.unwrap().name, "oidc:u-17");
        let neither = policy(&c, &claims(serde_json::json!({"email": "a\nb"})));
        assert!(matches!(neither, Err(OidcError::Claims(_))));
    }

    #[test]
    fn the_key_set_is_fetched_when_missing_old_or_lacking_the_key_at_most_every_30s() {
        let s = Duration::from_secs;
        assert!(fetch_due(None, false, None));
        assert!(!fetch_due(None, false, Some(s(5))), "a provider that is down is not hammered");
        assert!(!fetch_due(Some(s(10)), true, None));
        assert!(fetch_due(Some(s(10)), false, None));
        assert!(!fetch_due(Some(s(10)), false, Some(s(29))));
        assert!(fetch_due(Some(s(10)), false, Some(s(30))));
        assert!(fetch_due(Some(s(3600)), true, Some(s(31))));
    }

    #[test]
    fn only_three_part_base64url_bearers_are_jwts() {
        let mut h = axum::http::HeaderMap::new();
        let jwt = |h: &mut axum::http::HeaderMap, v: &str| {
            h.insert("authorization", v.parse().unwrap());
            bearer_jwt(h).is_some()
        };
        assert!(jwt(&mut h, "Bearer eyJh.eyJz.c2ln"));
        assert!(!jwt(&mut h, "Bearer alk_0123"));
        assert!(!jwt(&mut h, "Bearer a.b"));
        assert!(!jwt(&mut h, "Bearer a..c"));
        assert!(!jwt(&mut h, "Bearer a.b.c+"));
    }
}
